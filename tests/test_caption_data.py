"""Caption data: the digit-caption and moving-digit generators, caption preprocessing, real-dataset loaders."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from attn_cli import run
from attn_cli.data.vocab import MOVES, NAMES
from attn_cli.errors import AttnError
from attn_cli.io import read_json, read_jsonl
from data_prep.captions import build_vocab, ptb_tokenize
from data_prep.mnist_captions import CELL, JITTER, PLACES
from data_prep.moving_mnist import SEG
from tests.conftest import run_cli

PLACE_OF = {phrase: cell for cell, phrase in PLACES.items()}


def _parse_first(ref: str) -> list[tuple[str, tuple[int, int]]]:
    """'the digit three is at the top left and the digit seven is ...' -> [("three", (0, 0)), ...]."""
    out = []
    for part in ref.split(" and "):
        words = part.split()
        assert words[:2] == ["the", "digit"] and words[3] == "is", part
        out.append((words[2], PLACE_OF[" ".join(words[4:])]))
    return out


def check_digit_captions(root: Path, split: str) -> None:
    x = np.load(root / f"{split}_x.npy")
    items = read_jsonl(root / f"{split}.jsonl")
    assert len(x) == len(items) and x.shape[1:] == (1, 60, 60)
    for img, item in zip(x, items):
        named = _parse_first(item["refs"][0])
        assert [NAMES[b[0]] for b in item["boxes"]] == [w for w, _ in named]
        assert [tuple(c) for c in item["cells"]] == [c for _, c in named]
        mask = np.zeros((60, 60), bool)
        for (_digit, x0, y0, x1, y1), (row, col) in zip(item["boxes"], item["cells"]):
            # the box lies inside its cell, widened by the jitter
            assert col * CELL - JITTER <= x0 < x1 <= (col + 1) * CELL + JITTER
            assert row * CELL - JITTER <= y0 < y1 <= (row + 1) * CELL + JITTER
            assert img[0, y0:y1, x0:x1].sum() > 0
            mask[y0:y1, x0:x1] = True
        assert img[0][~mask].sum() == 0  # no ink outside the boxes
        for ref in item["refs"][1:]:  # every wording names the same digits and places
            for word, cell in named:
                assert f" {word} " in f" {ref} " and PLACES[cell] in ref
        assert len(item["refs"]) == 5 and len(set(item["refs"])) == 5


def test_glyph_digit_captions_agree_with_the_stored_boxes(tmp_path: Path) -> None:
    out = run.prepare("glyphs-captions", data_dir=tmp_path, overrides=["train=30", "val=5", "test=5"])
    for split in ("train", "val", "test"):
        check_digit_captions(out, split)
    manifest = read_json(out / "manifest.json")
    assert manifest["kind"] == "image" and manifest["counts"] == {"train": 30, "val": 5, "test": 5}
    itos = read_json(out / "vocab.json")["itos"]
    assert itos[:4] == ["<pad>", "<unk>", "<s>", "</s>"] and "digit" in itos


@pytest.mark.data
def test_mnist_digit_captions_agree_with_the_stored_boxes(shared_data: Path, tmp_path: Path) -> None:
    out = run.prepare(
        "mnist-captions", source=shared_data / "mnist", data_dir=tmp_path, overrides=["train=40", "val=5", "test=5"]
    )
    for split in ("train", "test"):
        check_digit_captions(out, split)


def test_moving_digits_move_as_their_captions_say(tmp_path: Path) -> None:
    out = run.prepare("glyphs-moving-captions", data_dir=tmp_path, overrides=["train=20", "val=3", "test=3"])
    x = np.load(out / "train_x.npy")
    assert x.shape[1:] == (12, 1, 48, 48)
    for item in read_jsonl(out / "train.jsonl"):
        boxes = np.array(item["frame_boxes"])  # (T, K, 4)
        words = item["refs"][0].split()
        # "the digit D1 moves M1 and then the digit D2 moves M2"
        assert words[2] == NAMES[item["digits"][item["events"][0][0]]]
        assert words[9] == NAMES[item["digits"][item["events"][1][0]]]
        for s, (mover, direction) in enumerate(item["events"]):
            assert direction in (words[4], words[11])[s : s + 1]
            t0, t1 = (0, SEG) if s == 0 else (SEG, 11)
            dx, dy = MOVES[direction]
            delta = boxes[t1, mover, :2] - boxes[t0, mover, :2]
            assert np.sign(delta).tolist() == [dx, dy]
        assert (boxes >= 0).all() and (boxes <= 48).all()


def test_ptb_tokenize_and_vocabulary() -> None:
    assert ptb_tokenize("A man's hat, isn't it?\n") == ["a", "man", "'s", "hat", "is", "n't", "it"]
    assert ptb_tokenize("Two dogs -- running.") == ["two", "dogs", "running"]
    itos = build_vocab([["b", "a", "b"], ["c", "b", "a"], ["d"]], min_freq=2)
    assert itos == ["<pad>", "<unk>", "<s>", "</s>", "b", "a"]


# -- real datasets on fixtures shaped like the real files -------------------------------------------


def _images(folder: Path, names: list[str]) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(folder / n)


def _karpathy(root: Path, name: str = "flickr8k", missing: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    images = []
    for i, split in enumerate(["train", "train", "restval", "val", "test"]):
        sents = [{"raw": f"A dog number {i}, running.", "tokens": []}, {"raw": "Two DOGS play.", "tokens": []}]
        images.append({"filename": f"{i}.jpg", "split": split, "sentences": sents, "imgid": i})
    (root / f"dataset_{name}.json").write_text(json.dumps({"images": images, "dataset": name}), encoding="utf-8")
    _images(root / "Flicker8k_Dataset", [f"{i}.jpg" for i in range(5) if f"{i}.jpg" != missing])
    return root


def test_flickr8k_karpathy_split_from_source(tmp_path: Path) -> None:
    src = _karpathy(tmp_path / "src")
    out = run.prepare("flickr8k", source=src, data_dir=tmp_path / "data", overrides=["encoder=none", "min_freq=1"])
    manifest = read_json(out / "manifest.json")
    assert manifest["counts"] == {"train": 3, "val": 1, "test": 1} and manifest["kind"] == "captions_only"
    test = read_jsonl(out / "test.jsonl")
    assert test[0]["refs"] == ["A dog number 4, running.", "Two DOGS play."]  # references untouched
    itos = read_json(out / "vocab.json")["itos"]
    assert "dogs" in itos and "DOGS" not in itos and "," not in itos


def test_photo_features_need_torchvision_or_say_how_to_get_it(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    try:
        import torchvision  # noqa: F401

        pytest.skip("torchvision is installed")
    except ImportError:
        pass
    src = _karpathy(tmp_path / "src")
    with pytest.raises(AttnError, match=r"pip install torch==2\.14\.1 torchvision==0\.29\.1"):
        run.prepare("flickr8k", source=src, data_dir=tmp_path / "data", overrides=["min_freq=1"])


def test_missing_image_for_a_caption_is_a_clear_error(tmp_path: Path) -> None:
    src = _karpathy(tmp_path / "src", missing="3.jpg")
    with pytest.raises(AttnError, match=r"image .*3\.jpg of a caption is missing"):
        run.prepare("flickr8k", source=src, data_dir=tmp_path / "data", overrides=["min_freq=1"])


def test_malformed_json_is_a_clear_error_with_exit_code_2(tmp_path: Path, dirs: dict[str, Path]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "dataset_flickr30k.json").write_text('{"images": [', encoding="utf-8")
    code, out, err = run_cli(
        "prepare", "caption", "--dataset", "flickr30k", "--source", str(src), "--set", "encoder=none"
    )
    assert code == 2
    message = (out + err).strip()
    assert "is not valid JSON" in message and len(message.splitlines()) == 1


def test_unknown_split_in_a_karpathy_file_is_an_error(tmp_path: Path) -> None:
    src = _karpathy(tmp_path / "src")
    data = json.loads((src / "dataset_flickr8k.json").read_text())
    data["images"][0]["split"] = "holdout"
    (src / "dataset_flickr8k.json").write_text(json.dumps(data))
    with pytest.raises(AttnError, match="unknown split 'holdout'"):
        run.prepare("flickr8k", source=src, data_dir=tmp_path / "data", overrides=["encoder=none"])


def test_coco_official_caption_json(tmp_path: Path) -> None:
    src = tmp_path / "coco"
    (src / "annotations").mkdir(parents=True)
    for split, ids in (("train", [1, 2, 3]), ("val", [10, 11, 12, 13])):
        doc = {
            "images": [{"id": i, "file_name": f"COCO_{split}2014_{i:012d}.jpg"} for i in ids],
            "annotations": [{"image_id": i, "id": 100 + k, "caption": f"A cat {k}."} for i in ids for k in range(5)],
        }
        (src / "annotations" / f"captions_{split}2014.json").write_text(json.dumps(doc))
    out = run.prepare(
        "coco-captions",
        source=src,
        data_dir=tmp_path / "data",
        overrides=["encoder=none", "min_freq=1", "val=2", "test=2"],
    )
    assert read_json(out / "manifest.json")["counts"] == {"train": 3, "val": 2, "test": 2}
    test = read_jsonl(out / "test.jsonl")
    assert [r["coco_id"] for r in test] == [12, 13] and len(test[0]["refs"]) == 5
    doc["annotations"].append({"image_id": 99, "id": 1, "caption": "x"})
    (src / "annotations" / "captions_val2014.json").write_text(json.dumps(doc))
    with pytest.raises(AttnError, match="image id 99"):
        run.prepare("coco-captions", source=src, data_dir=tmp_path / "d2", overrides=["encoder=none"])


# -- images that do not decode: skipped and counted (pillow only; the encoder is faked) --------------


def _break(folder: Path, name: str, how: str) -> None:
    """Overwrite image ``name`` with a truncated JPEG (``how="truncated"``) or with bytes that are no image."""
    from PIL import Image

    path = folder / name
    if how == "truncated":
        noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(noise).save(path, format="JPEG")
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(b"this is not an image " * 8)


@pytest.fixture
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Stands in for the torchvision trunk (absent from the default venv); the images it encoded, in order."""
    from attn_cli import pretrained

    seen: list[Path] = []

    def extract(paths: list[Path], name: str, *, out: Path | None = None, **_: object) -> np.ndarray:
        seen.extend(paths)
        feats = np.full((len(paths), 4, 5), 0.5, np.float16)
        if out is not None:
            np.save(out, feats)
        return feats

    monkeypatch.setattr(pretrained, "torchvision_backbone", lambda name, weights=None: object())
    monkeypatch.setattr(pretrained, "extract_features", extract)
    return seen


def test_undecodable_images_are_skipped_and_counted_flickr8k(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _karpathy(tmp_path / "src")
    _break(src / "Flicker8k_Dataset", "1.jpg", "truncated")
    _break(src / "Flicker8k_Dataset", "2.jpg", "garbage")
    out = run.prepare("flickr8k", source=src, data_dir=tmp_path / "data", overrides=["encoder=none", "min_freq=1"])
    manifest = read_json(out / "manifest.json")
    assert manifest["counts"] == {"train": 1, "val": 1, "test": 1}  # 0.jpg; 1.jpg, 2.jpg (train, restval) dropped
    assert manifest["images_checked"] == 5 and manifest["undecodable_skipped"] == 2
    assert [Path(f).name for f in manifest["undecodable_files"]] == ["1.jpg", "2.jpg"]
    train = read_jsonl(out / "train.jsonl")
    assert [(r["id"], Path(r["file"]).name) for r in train] == [(0, "0.jpg")]
    warning = capsys.readouterr().err.strip()
    assert warning.startswith("warning: 2 of 5 images do not decode") and "1.jpg, 2.jpg" in warning
    assert len(warning.splitlines()) == 1


def test_undecodable_images_are_not_encoded(tmp_path: Path, fake_encoder: list[Path]) -> None:
    src = _karpathy(tmp_path / "src")
    _break(src / "Flicker8k_Dataset", "3.jpg", "truncated")  # the only val image
    out = run.prepare("flickr8k", source=src, data_dir=tmp_path / "data", overrides=["encoder=resnet18", "min_freq=1"])
    assert out.name == "flickr8k-resnet18"
    manifest = read_json(out / "manifest.json")
    assert manifest["kind"] == "features" and manifest["counts"] == {"train": 3, "val": 0, "test": 1}
    assert [p.name for p in fake_encoder] == ["0.jpg", "1.jpg", "2.jpg", "4.jpg"]
    assert np.load(out / "train_feats.npy").shape == (3, 4, 5) and np.load(out / "val_feats.npy").shape == (0, 4, 5)


def test_missing_images_are_optional_without_an_encoder(tmp_path: Path) -> None:
    src = _karpathy(tmp_path / "src", missing="3.jpg")
    _break(src / "Flicker8k_Dataset", "4.jpg", "garbage")
    out = run.prepare("flickr8k", source=src, data_dir=tmp_path / "data", overrides=["encoder=none", "min_freq=1"])
    manifest = read_json(out / "manifest.json")
    assert manifest["counts"] == {"train": 3, "val": 1, "test": 0}  # the missing 3.jpg is kept, 4.jpg dropped
    assert manifest["images_checked"] == 4 and manifest["undecodable_skipped"] == 1


def test_without_an_image_folder_nothing_is_checked(tmp_path: Path) -> None:
    src = _karpathy(tmp_path / "src")
    (src / "Flicker8k_Dataset").rename(src / "elsewhere")
    out = run.prepare("flickr8k", source=src, data_dir=tmp_path / "data", overrides=["encoder=none", "min_freq=1"])
    manifest = read_json(out / "manifest.json")
    assert manifest["images_checked"] == 0 and manifest["counts"]["train"] == 3
    assert read_jsonl(out / "train.jsonl")[0]["file"] == "0.jpg"


def test_unknown_encoder_is_named_before_images_are_read(tmp_path: Path) -> None:
    src = _karpathy(tmp_path / "src")
    with pytest.raises(AttnError, match=r"unknown image encoder 'resnet34' \(did you mean 'resnet50'\?\)") as err:
        run.prepare("flickr8k", source=src, data_dir=tmp_path / "data", overrides=["encoder=resnet34"])
    assert "\n" not in str(err.value)


def _coco(root: Path, broken: dict[str, str]) -> Path:
    """Official caption JSONs and the train2014/ val2014 folders; ``broken``: file name -> how it is broken."""
    (root / "annotations").mkdir(parents=True)
    for split, ids in (("train", [1, 2, 3]), ("val", [10, 11, 12, 13])):
        names = {i: f"COCO_{split}2014_{i:012d}.jpg" for i in ids}
        doc = {
            "images": [{"id": i, "file_name": n} for i, n in names.items()],
            "annotations": [{"image_id": i, "id": 100 + k, "caption": f"A cat {k}."} for i in ids for k in range(5)],
        }
        (root / "annotations" / f"captions_{split}2014.json").write_text(json.dumps(doc))
        _images(root / f"{split}2014", list(names.values()))
        for name in names.values():
            if name in broken:
                _break(root / f"{split}2014", name, broken[name])
    return root


@pytest.mark.parametrize("encoder", ["none", "resnet18"])
def test_undecodable_images_are_skipped_and_counted_coco(
    encoder: str, tmp_path: Path, capsys: pytest.CaptureFixture, fake_encoder: list[Path]
) -> None:
    broken = {"COCO_train2014_000000000002.jpg": "garbage", "COCO_val2014_000000000011.jpg": "truncated"}
    src = _coco(tmp_path / "coco", broken)
    out = run.prepare(
        "coco-captions",
        source=src,
        data_dir=tmp_path / "data",
        overrides=[f"encoder={encoder}", "min_freq=1", "val=2", "test=2"],
    )
    manifest = read_json(out / "manifest.json")
    # val/test are cut from val2014 before the check: val keeps 10 (11 dropped), test 12 and 13
    assert manifest["counts"] == {"train": 2, "val": 1, "test": 2}
    assert manifest["undecodable_skipped"] == 2 and manifest["images_checked"] == 7
    assert [Path(f).name for f in manifest["undecodable_files"]] == sorted(broken)
    assert [r["coco_id"] for r in read_jsonl(out / "val.jsonl")] == [10]
    assert [r["coco_id"] for r in read_jsonl(out / "train.jsonl")] == [1, 3]
    assert "warning: 2 of 7 images do not decode" in capsys.readouterr().err
    assert len(fake_encoder) == (5 if encoder == "resnet18" else 0)


def test_coco_without_image_folders_checks_nothing(tmp_path: Path) -> None:
    src = _coco(tmp_path / "coco", {"COCO_val2014_000000000011.jpg": "garbage"})
    for folder in ("train2014", "val2014"):
        for f in (src / folder).iterdir():
            f.unlink()
        (src / folder).rmdir()
    out = run.prepare(
        "coco-captions", source=src, data_dir=tmp_path / "data", overrides=["encoder=none", "min_freq=1", "val=2"]
    )
    manifest = read_json(out / "manifest.json")
    assert manifest["images_checked"] == 0 and manifest["counts"]["val"] == 2
    with pytest.raises(AttnError, match=r"train: image .*COCO_train2014_000000000001\.jpg of a caption is missing"):
        run.prepare("coco-captions", source=src, data_dir=tmp_path / "d2", overrides=["encoder=resnet18"])


def _multi30k(root: Path, n: dict[str, int]) -> Path:
    (root / "raw").mkdir(parents=True)
    (root / "image_splits").mkdir()
    for stem, count in n.items():
        (root / "image_splits" / f"{stem}_images.txt").write_text("".join(f"{stem}{i}.jpg\n" for i in range(count)))
        for k in range(1, 6):
            with gzip.open(root / "raw" / f"{stem}.{k}.en.gz", "wt", encoding="utf-8") as fh:
                fh.write("".join(f"A person {k} walks.\n" for _ in range(count)))
    return root


def test_multi30k_description_task_fixture(tmp_path: Path) -> None:
    src = _multi30k(tmp_path / "task2", {"train": 4, "val": 2, "test_2016": 3})
    out = run.prepare(
        "multi30k-captions", source=src, data_dir=tmp_path / "data", overrides=["encoder=none", "min_freq=1"]
    )
    assert read_json(out / "manifest.json")["counts"] == {"train": 4, "val": 2, "test": 3}
    assert len(read_jsonl(out / "test.jsonl")[0]["refs"]) == 5
    with pytest.raises(AttnError, match="needs the Flickr30k images"):
        run.prepare("multi30k-captions", source=src, data_dir=tmp_path / "d2")


def test_multi30k_images_are_checked_when_given(tmp_path: Path, fake_encoder: list[Path]) -> None:
    src = _multi30k(tmp_path / "task2", {"train": 3, "val": 2, "test_2016": 2})
    images = tmp_path / "flickr30k-images"
    _images(images, [f"{stem}{i}.jpg" for stem, n in (("train", 3), ("val", 2), ("test_2016", 2)) for i in range(n)])
    _break(images, "val1.jpg", "truncated")
    out = run.prepare(
        "multi30k-captions",
        source=src,
        data_dir=tmp_path / "data",
        overrides=["encoder=resnet18", f"images={images}", "min_freq=1"],
    )
    manifest = read_json(out / "manifest.json")
    assert manifest["counts"] == {"train": 3, "val": 1, "test": 2} and manifest["undecodable_skipped"] == 1
    assert "val1.jpg" not in [p.name for p in fake_encoder] and len(fake_encoder) == 6


@pytest.mark.slow
@pytest.mark.data
def test_multi30k_description_task_real_captions(shared_data: Path, tmp_path: Path) -> None:
    out = run.prepare(
        "multi30k-captions", source=shared_data / "multi30k" / "task2", data_dir=tmp_path, overrides=["encoder=none"]
    )
    manifest = read_json(out / "manifest.json")
    assert manifest["counts"] == {"train": 29000, "val": 1014, "test": 1000}
    assert manifest["captions"]["test"] == 5000


def _msvd(root: Path) -> Path:
    (root / "features").mkdir(parents=True)
    with (root / "MSR Video Description Corpus.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["VideoID", "Start", "End", "WorkerID", "Source", "AnnotationTime", "Language", "Description"])
        for v in range(3):
            w.writerow([f"v{v}", 1, 5, 7, "clean", 30, "English", f"a man is cooking {v}"])
            w.writerow([f"v{v}", 1, 5, 8, "clean", 30, "German", "ein Mann kocht"])
            np.save(root / "features" / f"v{v}_1_5.npy", np.random.default_rng(v).random((7 + v, 5)))
    return root


def test_msvd_caption_file_and_frame_features(tmp_path: Path) -> None:
    src = _msvd(tmp_path / "msvd")
    out = run.prepare("msvd", source=src, data_dir=tmp_path / "data", overrides=["frames=4"])
    feats = np.load(out / "train_feats.npy")
    assert feats.shape == (3, 4, 5)  # all three clips fall in the first 1200: train
    assert read_jsonl(out / "train.jsonl")[0]["refs"] == ["a man is cooking 0"]  # English only
    np.save(src / "features" / "v1_1_5.npy", np.zeros((7, 6)))
    with pytest.raises(AttnError, match=r"frame vectors of different widths \[5, 6\]"):
        run.prepare("msvd", source=src, data_dir=tmp_path / "d3")
    (src / "features" / "v1_1_5.npy").unlink()
    with pytest.raises(AttnError, match="clip v1_1_5 has captions but neither"):
        run.prepare("msvd", source=src, data_dir=tmp_path / "d2")


def test_msvd_frames_that_do_not_decode_are_resampled_or_the_clip_skipped(
    tmp_path: Path, fake_encoder: list[Path], capsys: pytest.CaptureFixture
) -> None:
    from data_prep.msvd import decodable_frames

    src = _msvd(tmp_path / "msvd")
    for v in (1, 2):  # v1 and v2 come as frame folders instead of features
        (src / "features" / f"v{v}_1_5.npy").unlink()
        _images(src / "frames" / f"v{v}_1_5", [f"{t:03d}.png" for t in range(6)])
    frames = src / "frames" / "v1_1_5"
    _break(frames, "000.png", "garbage")
    _break(frames, "005.png", "garbage")
    picked, bad, decoded = decodable_frames(sorted(frames.iterdir()), 3)
    assert [p.name for p in picked] == ["001.png", "003.png", "004.png"]  # sampled again from the 4 good ones
    assert [p.name for p in bad] == ["000.png", "005.png"] and decoded == 6
    for t in range(6):
        _break(src / "frames" / "v2_1_5", f"{t:03d}.png", "truncated")
    out = run.prepare("msvd", source=src, data_dir=tmp_path / "data", overrides=["frames=3"])
    manifest = read_json(out / "manifest.json")
    assert manifest["counts"]["train"] == 2 and manifest["clips_without_frames"] == ["v2_1_5"]
    assert manifest["undecodable_skipped"] == 8 and manifest["images_checked"] == 12  # 2 of v1's 6, all of v2's
    assert [r["file"] for r in read_jsonl(out / "train.jsonl")] == ["v0_1_5", "v1_1_5"]
    assert np.load(out / "train_feats.npy").shape == (2, 3, 5)
    assert [p.name for p in fake_encoder] == ["001.png", "003.png", "004.png"]
    warning = capsys.readouterr().err.strip()
    assert "clips with no decodable frame, skipped: 1 (v2_1_5)" in warning and len(warning.splitlines()) == 1


def test_unknown_split_on_eval_is_exit_code_2(dirs: dict[str, Path]) -> None:
    assert run_cli("prepare", "glyphs-captions", "--set", "train=16", "--set", "val=4", "--set", "test=4")[0] == 0
    code, _, _ = run_cli("train", "caption", "--recipe", "tiny/show-tell", "--set", "train.threads=1")
    assert code == 0
    run_dir = next((dirs["runs"] / "caption" / "tiny" / "show-tell").iterdir())
    code, out, err = run_cli("eval", "caption", "--run", str(run_dir), "--split", "dev")
    assert code == 2
    message = (out + err).strip()
    assert "unknown split 'dev'" in message and len(message.splitlines()) == 1


@pytest.mark.parametrize("dataset", ["flickr8k", "coco-captions", "mnist-captions", "msvd"])
def test_offline_without_source_names_source(dataset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTN_OFFLINE", "1")
    with pytest.raises(AttnError, match="--source") as err:
        run.prepare("caption", dataset=dataset, data_dir=tmp_path)
    assert "\n" not in str(err.value)
