"""Real photo-caption datasets: MS-COCO, Flickr8k, Flickr30k (Karpathy splits) and Multi30k's description task.

=================  ==========================================================================
dataset            ``--source`` holds
=================  ==========================================================================
coco               ``annotations/captions_{train,val}2014.json`` (official caption JSON) and the
                   ``train2014/``, ``val2014/`` image folders. Splits as Xu et al. §5.1: train2014
                   for training, the first ``val`` / next ``test`` images of val2014 (5000 each).
                   Or Karpathy's ``dataset_coco.json`` (its own split field) with the two folders.
flickr8k           Karpathy's ``dataset_flickr8k.json`` and the image folder (``Flicker8k_Dataset/``,
                   ``Flickr8k_Dataset/``, ``images/`` or ``--set images=DIR``): 6000/1000/1000.
flickr30k          ``dataset_flickr30k.json`` and ``flickr30k-images/`` (or ``images=DIR``): 29000/1014/1000
                   in Karpathy's split (Xu et al. use 1000/1000 for val/test).
multi30k-captions  Multi30k task 2 (``raw/{train,val,test_2016}.{1..5}.en.gz`` + ``image_splits/``,
                   e.g. ``../shared/data/multi30k/task2``): 5 independent English captions per
                   Flickr30k image; the images are the user's own (``--set images=DIR``).
=================  ==========================================================================

Captions get the papers' preprocessing (:mod:`data_prep.captions`); every reference is kept.
Images become annotation vectors once, here, with a frozen ImageNet CNN (Xu et al. do not
fine-tune theirs): ``--set encoder=resnet50`` (default, 7×7×2048), ``resnet18``/``resnet101``,
``vgg16`` (14×14×512 conv5_3) or ``vgg19`` (Xu et al.'s 14×14×512 conv5_4 grid); weights from
``--set encoder_weights=FILE`` (a torchvision state dict) or torchvision's cache or download. The
features (``{split}_feats.npy``, float16) are the on-disk cache every run reads.
Every image is decoded (PIL) before the captions are written: one that does not decode (truncated,
not an image) is dropped with its captions, counted in the manifest (``undecodable_skipped``, the
first few in ``undecodable_files``) and reported in one warning line; a missing file is an error.
``--set encoder=none`` prepares the captions only (e.g. to inspect the vocabulary): the images are
then optional, but those present in the image folder are still checked and undecodable ones dropped,
so that the captions match a preparation with features. Downloads:
the Karpathy split JSONs (``caption_datasets.zip``) and the COCO annotation archive from their
official addresses, verified against the sha256 that TensorFlow Datasets records for them
(``url_checksums/coco_captions.txt``; we could not hash them ourselves offline); images must come
from ``--source``/``images`` (licence terms of Flickr and COCO).
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attn_cli.errors import AttnError
from attn_cli.io import read_text_lines
from data_prep.base import DATASETS, DatasetSpec, RawFile
from data_prep.captions import write_caption_splits

# sha256 of the two archives as TensorFlow Datasets records them (url_checksums/coco_captions.txt:
# 36,745,453 and 252,872,794 bytes); no network here to hash them ourselves.
KARPATHY_ZIP = RawFile(
    "caption_datasets.zip",
    "https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip",
    "4cfd70132527b80933105e5829dc9034eaab9573482e2e680abbab6130244817",
)
COCO_ZIP = RawFile(
    "annotations_trainval2014.zip",
    "http://images.cocodataset.org/annotations/annotations_trainval2014.zip",
    "031296bbc80c45a1d1f76bf9a90ead27e94e99ec629208449507a4917a3bf009",
)
UNDECODABLE_LISTED = 10  # the manifest names this many of the images skipped because they do not decode


@dataclass(frozen=True)
class PhotoCaptionConfig:
    images: str = ""  # image folder (default: looked up inside --source)
    encoder: str = "resnet50"  # resnet18/50/101, vgg16/19, or none (captions only)
    encoder_weights: str = ""  # a local torchvision state dict; empty: torchvision's ImageNet download
    image_size: int = 224
    min_freq: int = 5  # Karpathy/Xu: words seen at least 5 times in training
    max_len: int = 0  # drop training captions longer than this (0: keep all)
    val: int = 5000  # coco (official JSON only): val2014 images used for validation ...
    test: int = 5000  # ... and for testing
    limit: int = 0  # keep the first n images of each split (0: all) — for quick trials


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise AttnError(f"{path} does not exist; --source must hold it") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AttnError(f"{path} is not valid JSON ({err}); download it again") from err


def _extract_zips(source: Path, out: Path) -> Path:
    """A downloaded archive is unpacked beside the prepared data (``--source`` may be read-only)."""
    zips = sorted(source.glob("*.zip")) if source.is_dir() else []
    if not zips:
        return source
    dest = out.parent / "raw-extracted" / source.name
    for z in zips:
        try:
            with zipfile.ZipFile(z) as fh:
                fh.extractall(dest)
        except zipfile.BadZipFile as err:
            raise AttnError(f"{z} is not a valid zip archive; download it again") from err
    return dest


def _find(root: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        hits = sorted(root.rglob(name))
        if hits:
            return hits[0]
    return None


def _image_dir(cfg: PhotoCaptionConfig, root: Path, candidates: tuple[str, ...]) -> Path | None:
    if cfg.images:
        path = Path(cfg.images)
        if not path.is_dir():
            raise AttnError(f"--set images={cfg.images} is not a folder; point it at the image folder")
        return path
    for name in candidates:
        hits = [p for p in root.rglob(name) if p.is_dir()]
        if hits:
            return hits[0]
    return None


def image_decodes(path: Path) -> bool:
    """Whether PIL can open and fully decode the image (a truncated JPEG fails in ``load``)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.convert("RGB")
    except Exception:  # PIL's decoders raise OSError, SyntaxError, ValueError, EOFError, ... by format
        return False
    return True


def decodable(paths: list[Path]) -> list[bool]:
    """:func:`image_decodes` for each path, in order (threads: PIL releases the GIL while decoding)."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(image_decodes, paths))


def report_undecodable(bad: list[str], checked: int, what: str = "images", also: str = "") -> dict[str, Any]:
    """Manifest facts about the skipped images, and one warning line on stderr when there are any."""
    if bad:
        first = ", ".join(Path(b).name for b in bad[:3]) + (", ..." if len(bad) > 3 else "")
        print(
            f"warning: {len(bad)} of {checked} {what} do not decode and were skipped ({first}){also}; "
            "see undecodable_files in manifest.json",
            file=sys.stderr,
        )
    return {"images_checked": checked, "undecodable_skipped": len(bad), "undecodable_files": bad[:UNDECODABLE_LISTED]}


def require_images(splits: dict[str, list[dict[str, Any]]]) -> None:
    """Every caption's image file exists (features are computed from it); a missing one is an error."""
    for split, items in splits.items():
        for item in items:
            if not Path(item["file"]).is_file():
                raise AttnError(
                    f"{split}: image {item['file']} of a caption is missing; pass the image folder with --set images=DIR"
                )


def check_images(
    splits: dict[str, list[dict[str, Any]]], *, located: bool = True
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Drop the items whose image does not decode; returns the kept items and the manifest facts.

    Files that are absent are left alone (:func:`require_images` says whether they may be).
    ``located=False``: the item files are bare names with no image folder, and nothing is checked.
    """
    present = [
        (s, i) for s, items in splits.items() for i, it in enumerate(items) if located and Path(it["file"]).is_file()
    ]
    ok = decodable([Path(splits[s][i]["file"]) for s, i in present])
    broken = {key for key, good in zip(present, ok) if not good}
    kept = {s: [it for i, it in enumerate(items) if (s, i) not in broken] for s, items in splits.items()}
    bad = [splits[s][i]["file"] for s, i in present if (s, i) in broken]
    return kept, report_undecodable(bad, len(present))


def finish(
    cfg: PhotoCaptionConfig, splits: dict[str, list[dict[str, Any]]], out: Path, note: str, *, located: bool = True
) -> dict[str, Any]:
    """Check the images, write the captions, then the features of every split.

    In the order that reports a problem soonest: missing image files (a stat each), then the encoder
    (its name, torchvision, the weights), then a decode of every image (undecodable ones dropped).
    With ``encoder=none`` the images are optional and only those present are checked; ``located``:
    see :func:`check_images`.
    """
    if cfg.limit:
        splits = {s: items[: cfg.limit] for s, items in splits.items()}
    encode = cfg.encoder != "none"
    if encode:
        from attn_cli.pretrained import extract_features, torchvision_backbone

        require_images(splits)
        net = torchvision_backbone(cfg.encoder, cfg.encoder_weights or None)
    splits, checked = check_images(splits, located=located)
    for items in splits.values():
        for i, item in enumerate(items):
            item["id"] = i
    facts = write_caption_splits(out, splits, min_freq=cfg.min_freq, max_len=cfg.max_len)
    if encode:
        for split, items in splits.items():
            extract_features(
                [Path(it["file"]) for it in items],
                cfg.encoder,
                weights=None,
                size=cfg.image_size,
                out=out / f"{split}_feats.npy",
                net=net,
            )
    kind = "features" if encode else "captions_only"
    return {**facts, **checked, "kind": kind, "encoder": cfg.encoder, "note": note}


# -- Karpathy split files (Flickr8k, Flickr30k, COCO) ---------------------------------------------


def karpathy_splits(path: Path, image_dir: Path | None) -> dict[str, list[dict[str, Any]]]:
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise AttnError(f"{path} is not a Karpathy split file (no 'images' list)")
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "val": [], "test": []}
    for n, img in enumerate(data["images"]):
        try:
            split = {"restval": "train"}.get(img["split"], img["split"])
            refs = [s["raw"] for s in img["sentences"]]
            name = img["filename"]
        except (KeyError, TypeError) as err:
            raise AttnError(f"{path}: image #{n} lacks {err} (needs split, filename, sentences[].raw)") from err
        if split not in splits:
            raise AttnError(f"{path}: image {name} has unknown split {split!r}; valid: train, restval, val, test")
        folder = image_dir / img["filepath"] if image_dir and img.get("filepath") else image_dir
        splits[split].append({"refs": refs, "file": str(folder / name) if folder else name})
    return splits


def _karpathy(name: str, folders: tuple[str, ...]) -> Any:
    def build(cfg: PhotoCaptionConfig, source: Path | None, out: Path) -> dict[str, Any]:
        assert source is not None
        root = _extract_zips(source, out)
        js = root if root.is_file() else _find(root, (f"dataset_{name}.json",))
        if js is None:
            raise AttnError(f"no dataset_{name}.json under {source}; --source needs Karpathy's split file")
        images = _image_dir(cfg, source if source.is_dir() else source.parent, folders)
        if images is None and cfg.encoder != "none":
            raise AttnError(f"no image folder found under {source}; pass --set images=DIR (or encoder=none)")
        note = f"{name}, Karpathy split ({js.name})"
        return finish(cfg, karpathy_splits(js, images), out, note, located=images is not None)

    return build


# -- COCO official caption JSON -------------------------------------------------------------------


def coco_items(path: Path, image_dir: Path | None) -> list[dict[str, Any]]:
    data = load_json(path)
    try:
        files = {int(img["id"]): img["file_name"] for img in data["images"]}
        caps: dict[int, list[str]] = defaultdict(list)
        for ann in data["annotations"]:
            caps[int(ann["image_id"])].append(ann["caption"])
    except (KeyError, TypeError) as err:
        raise AttnError(
            f"{path} is not a COCO caption file (needs images[].id/file_name, annotations[]): {err}"
        ) from err
    unknown = sorted(set(caps) - set(files))
    if unknown:
        raise AttnError(f"{path}: a caption refers to image id {unknown[0]}, which the file does not list")
    return [
        {"refs": caps[i], "file": str(image_dir / files[i]) if image_dir else files[i], "coco_id": i}
        for i in sorted(files)
        if caps.get(i)
    ]


def build_coco(cfg: PhotoCaptionConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None
    root = _extract_zips(source, out)
    karpathy = _find(root, ("dataset_coco.json",))
    if karpathy is not None:
        return finish(
            cfg, karpathy_splits(karpathy, Path(cfg.images) if cfg.images else source), out, "COCO, Karpathy split"
        )
    train_js = _find(root, ("captions_train2014.json",))
    val_js = _find(root, ("captions_val2014.json",))
    if train_js is None or val_js is None:
        raise AttnError(f"{source} needs annotations/captions_train2014.json and captions_val2014.json")
    base = Path(cfg.images) if cfg.images else source
    # encoder=none needs no images, but checks them where the two folders are there
    located = cfg.encoder != "none" or ((base / "train2014").is_dir() and (base / "val2014").is_dir())
    train = coco_items(train_js, base / "train2014" if located else None)
    val_all = coco_items(val_js, base / "val2014" if located else None)
    splits = {"train": train, "val": val_all[: cfg.val], "test": val_all[cfg.val : cfg.val + cfg.test]}
    return finish(cfg, splits, out, "COCO 2014 official captions; val/test from val2014", located=located)


# -- Multi30k description task ---------------------------------------------------------------------

M30K_SPLITS = {"train": "train", "val": "val", "test": "test_2016"}


def build_multi30k(cfg: PhotoCaptionConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None
    encode = cfg.encoder != "none"
    if encode and not cfg.images:
        raise AttnError("multi30k-captions needs the Flickr30k images: pass --set images=DIR (or encoder=none)")
    splits = {}
    for split, stem in M30K_SPLITS.items():
        names_path = source / "image_splits" / f"{stem}_images.txt"
        if not names_path.is_file():
            raise AttnError(f"{names_path} is missing; --source must be Multi30k's task2 folder")
        names = [n.strip() for n in read_text_lines(names_path) if n.strip()]
        columns = []
        for k in range(1, 6):
            path = source / "raw" / f"{stem}.{k}.en.gz"
            if not path.is_file():
                raise AttnError(f"{path} is missing; --source must hold raw/{stem}.1-5.en.gz")
            columns.append(read_text_lines(path))
        if any(len(c) != len(names) for c in columns):
            raise AttnError(f"{source}: {stem} caption files and image list have different lengths; files do not match")
        folder = Path(cfg.images) if cfg.images else None
        splits[split] = [
            {"refs": [c[i] for c in columns if c[i].strip()], "file": str(folder / n) if folder else n}
            for i, n in enumerate(names)
        ]
    return finish(
        cfg, splits, out, "Multi30k task 2 (5 English captions per Flickr30k image)", located=bool(cfg.images)
    )


def _add(name: str, summary: str, build: Any, raw: list[RawFile]) -> None:
    DATASETS.add(
        name,
        DatasetSpec(
            name=name,
            task="caption",
            summary=summary,
            Config=PhotoCaptionConfig,
            build=build,
            default_name=lambda cfg, n=name: n if cfg.encoder in ("resnet50", "none") else f"{n}-{cfg.encoder}",
            raw_files=raw,
        ),
    )


_add("coco-captions", "MS-COCO 2014 captions + images (--source), CNN features cached", build_coco, [COCO_ZIP])
_add(
    "flickr8k",
    "Flickr8k, Karpathy split JSON + images (--source), CNN features cached",
    _karpathy("flickr8k", ("Flicker8k_Dataset", "Flickr8k_Dataset", "Images", "images")),
    [KARPATHY_ZIP],
)
_add(
    "flickr30k",
    "Flickr30k, Karpathy split JSON + images (--source), CNN features cached",
    _karpathy("flickr30k", ("flickr30k-images", "flickr30k_images", "images")),
    [KARPATHY_ZIP],
)
_add("multi30k-captions", "Multi30k task 2 captions (--source task2) + your Flickr30k images", build_multi30k, [])
