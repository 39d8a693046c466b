"""MSVD / Youtube2Text (Chen & Dolan 2011; Guadarrama et al. 2013), as Yao et al. (2015) use it.

``--source`` holds the standard caption file ``MSR Video Description Corpus.csv`` (columns
VideoID, Start, End, WorkerID, Source, AnnotationTime, Language, Description; a clip is named
``<VideoID>_<Start>_<End>``; English descriptions only) and, per clip, either precomputed frame
features ``features/<clip>.npy`` (T_i, D) or a frame folder ``frames/<clip>/*.jpg|png``. The split is
the standard one (Yao et al. §4.1, after Venugopalan et al. 2015): with ``youtube_mapping.txt``
(``<clip> vid<N>`` lines) vid1-1200 train, vid1201-1300 val, vid1301-1970 test; without it the
clips in sorted order are cut the same way. Each clip is reduced to ``frames`` (26 in Yao et al.)
equally spaced frames; frame folders are encoded by a frozen torchvision CNN (grid-averaged,
``--set encoder=...``, torchvision needed; the trunk is built once per preparation). A sampled frame
that does not decode is dropped and the clip's frames are sampled again from the rest; a clip with no
decodable frame is skipped (manifest: ``undecodable_skipped``, ``undecodable_files``,
``clips_without_frames``; one warning line). The result is ``{split}_feats.npy`` (N, frames, D),
float16, read by the ``video`` model with ``input_kind: video_features``.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.errors import AttnError
from data_prep.base import DATASETS, DatasetSpec
from data_prep.captions import write_caption_splits

CAPTIONS = "MSR Video Description Corpus.csv"
CUTS = {"train": (0, 1200), "val": (1200, 1300), "test": (1300, 1970)}


@dataclass(frozen=True)
class MsvdConfig:
    frames: int = 26  # frames kept per clip, equally spaced (Yao et al. §4.1)
    encoder: str = "resnet50"  # for frame folders only
    encoder_weights: str = ""
    min_freq: int = 1
    max_len: int = 0


def read_captions(path: Path) -> dict[str, list[str]]:
    if not path.is_file():
        raise AttnError(f"{path} is missing; --source must hold the MSVD caption file {CAPTIONS!r}")
    caps: dict[str, list[str]] = defaultdict(list)
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        need = {"VideoID", "Start", "End", "Language", "Description"}
        if not reader.fieldnames or not need <= set(reader.fieldnames):
            raise AttnError(f"{path} lacks the columns {sorted(need)}; is it the MSVD caption file?")
        for row in reader:
            if row["Language"] == "English" and (row["Description"] or "").strip():
                caps[f"{row['VideoID']}_{row['Start']}_{row['End']}"].append(row["Description"].strip())
    if not caps:
        raise AttnError(f"{path} has no English descriptions")
    return caps


def clip_order(source: Path, clips: list[str]) -> list[str]:
    mapping = source / "youtube_mapping.txt"
    if not mapping.is_file():
        return sorted(clips)
    order: dict[str, int] = {}
    for n, line in enumerate(mapping.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[1].startswith("vid") or not parts[1][3:].isdigit():
            raise AttnError(f"{mapping}:{n} must be '<clip> vid<N>'")
        order[parts[0]] = int(parts[1][3:])
    return sorted((c for c in clips if c in order), key=order.__getitem__)


def sample_frames(n_total: int, n: int) -> np.ndarray:
    return np.linspace(0, n_total - 1, n).round().astype(int) if n_total else np.zeros(0, int)


def decodable_frames(files: list[Path], n: int) -> tuple[list[Path], list[Path], int]:
    """``n`` equally spaced frames among those that decode: (picked, undecodable frames met, frames decoded).

    Only the sampled frames are decoded (a clip folder may hold hundreds): a broken one is dropped
    from the clip and the frames are sampled again from the rest. ``picked`` is empty when no frame decodes.
    """
    from data_prep.caption_photos import decodable

    good: set[Path] = set()
    bad: list[Path] = []
    while files:
        picked = [files[i] for i in sample_frames(len(files), n)]
        unchecked = sorted(set(picked) - good)
        broken = {p for p, ok in zip(unchecked, decodable(unchecked)) if not ok}
        good.update(set(unchecked) - broken)
        if not broken:
            return picked, bad, len(good) + len(bad)
        bad.extend(sorted(broken))
        files = [f for f in files if f not in broken]
    return [], bad, len(good) + len(bad)


class ClipFeatures:
    """Per-clip frame vectors (frames, D): from ``features/<clip>.npy``, else from ``frames/<clip>/``.

    Frame folders go through one frozen torchvision trunk (built at the first such clip) and are
    averaged over its grid; frames that do not decode are skipped and collected in ``bad``.
    """

    def __init__(self, source: Path, cfg: MsvdConfig) -> None:
        self.source, self.cfg = source, cfg
        self.net: Any = None
        self.bad: list[Path] = []
        self.frames_checked = 0

    def __call__(self, clip: str) -> np.ndarray | None:
        """The clip's (frames, D) float16 vectors; None when its frame folder has no decodable frame."""
        feat = self.source / "features" / f"{clip}.npy"
        if feat.is_file():
            arr = np.load(feat)
            if arr.ndim != 2 or not len(arr):
                raise AttnError(f"{feat} must be a (frames, D) array, got shape {arr.shape}")
            return arr[sample_frames(len(arr), self.cfg.frames)].astype(np.float16)
        folder = self.source / "frames" / clip
        files = (
            sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
            if folder.is_dir()
            else []
        )
        if not files:
            raise AttnError(
                f"clip {clip} has captions but neither features/{clip}.npy nor frames/{clip}/ under {self.source}"
            )
        from attn_cli.pretrained import extract_features, torchvision_backbone

        if self.net is None:  # errors about the encoder come before any frame is decoded
            self.net = torchvision_backbone(self.cfg.encoder, self.cfg.encoder_weights or None)
        picked, bad, decoded = decodable_frames(files, self.cfg.frames)
        self.bad += bad
        self.frames_checked += decoded
        if not picked:
            return None
        grid = extract_features(picked, self.cfg.encoder, weights=None, net=self.net)  # (F, L, D)
        return grid.astype(np.float32).mean(1).astype(np.float16)  # (F, D)


def build(cfg: MsvdConfig, source: Path | None, out: Path) -> dict[str, Any]:
    from data_prep.caption_photos import report_undecodable

    assert source is not None
    caps = read_captions(source / CAPTIONS)
    order = clip_order(source, list(caps))
    features = ClipFeatures(source, cfg)
    splits, feats = {}, {}
    dropped: list[str] = []
    for split, (lo, hi) in CUTS.items():
        clips, arrs = [], []
        for clip in order[lo:hi]:  # the split is cut before clips are dropped: the standard split stays
            arr = features(clip)
            if arr is None:
                dropped.append(clip)
            else:
                clips.append(clip)
                arrs.append(arr)
        splits[split] = [{"id": i, "refs": caps[c], "file": c} for i, c in enumerate(clips)]
        feats[split] = arrs
    if not splits["train"]:
        raise AttnError(f"{source}: no training clips; is the caption file complete?")
    widths = sorted({arr.shape[1] for arrs in feats.values() for arr in arrs})
    if len(widths) > 1:
        raise AttnError(
            f"{source}: frame vectors of different widths {widths}; features/*.npy and the encoder "
            "of the frames/ folders must give the same D"
        )
    also = f"; clips with no decodable frame, skipped: {len(dropped)} ({', '.join(dropped[:3])})" if dropped else ""
    checked = report_undecodable([str(p) for p in features.bad], features.frames_checked, "frames", also)
    facts = write_caption_splits(out, splits, min_freq=cfg.min_freq, max_len=cfg.max_len)
    for split, arrs in feats.items():
        if arrs:
            np.save(out / f"{split}_feats.npy", np.stack(arrs))
        else:
            dim = feats["train"][0].shape[1]
            np.save(out / f"{split}_feats.npy", np.zeros((0, cfg.frames, dim), np.float16))
    return {
        **facts,
        **checked,
        "clips_without_frames": dropped,
        "kind": "video_features",
        "note": "MSVD / Youtube2Text, standard split",
    }


DATASETS.add(
    "msvd",
    DatasetSpec(
        name="msvd",
        task="caption",
        summary="MSVD / Youtube2Text: caption CSV + per-clip frame features or frame folders (--source)",
        Config=MsvdConfig,
        build=build,
        default_name=lambda cfg: "msvd",
    ),
)
