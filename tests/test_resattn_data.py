"""CIFAR-10/100, Fashion-MNIST and the small-object zoom set: both CIFAR layouts on fixtures laid out as the
real files, their error paths, determinism of the generated set, and the real files when ../shared/data is there."""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from attn_cli import run
from attn_cli.errors import AttnError
from data_prep.cifar import CIFAR10_CLASSES
from tests.conftest import run_cli
from tests.test_vision_data import fake_mnist


def _jpeg(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def jpeg_cifar(path: Path, per_class: dict[str, int], size: int = 32) -> Path:
    """``train/<class>/NNNN.jpg`` and ``test/<class>/NNNN.jpg`` in a .tar.gz: flat colours, red = class index."""
    files = {"README.md": b"fixture"}
    for split, n in per_class.items():
        for c, name in enumerate(CIFAR10_CLASSES[:3]):
            for i in range(n):
                rgb = np.full((size, size, 3), (40 * c + 20, 128, 7 * i), np.uint8)
                files[f"{split}/{name}/{i:04d}.jpg"] = _jpeg(rgb)
    return _tar(path, files)


def python_cifar(path: Path, folder: str, batches: dict[str, int], label_key: bytes) -> Path:
    """The official archive's layout: pickled dicts with b'data' (N, 3072) and labels."""
    rng = np.random.default_rng(5)
    files = {}
    for name, n in batches.items():
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        files[f"{folder}/{name}"] = pickle.dumps({b"data": data, label_key: list(rng.integers(0, 10, n))})
    return _tar(path, files)


def test_cifar10_from_jpeg_class_folders(tmp_path: Path) -> None:
    src = jpeg_cifar(tmp_path / "cifar10-jpg.tar.gz", {"train": 7, "test": 3})
    out = run.prepare("cifar10", source=src, data_dir=tmp_path / "d", overrides=["val_every=5"])
    x, y = np.load(out / "train_x.npy"), np.load(out / "train_y.npy")
    assert x.shape == (17, 3, 32, 32) and len(np.load(out / "val_y.npy")) == 4  # 21 images, every 5th held out
    assert np.load(out / "test_x.npy").shape == (9, 3, 32, 32)
    assert sorted(set(y.tolist())) == [0, 1, 2]  # airplane, automobile, bird: the official label order
    assert np.all(np.abs(x[y == 2][:, 0].astype(int) - 100) <= 3)  # channel 0 is red (JPEG keeps flat colours)
    assert "JPEG" in __import__("json").loads((out / "manifest.json").read_text())["layout"]


def test_cifar10_from_the_official_python_batches(tmp_path: Path) -> None:
    batches = {f"data_batch_{i}": 3 for i in range(1, 6)} | {"test_batch": 5}
    src = python_cifar(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py", batches, b"labels")
    out = run.prepare("cifar10", source=tmp_path, data_dir=tmp_path / "d")  # the folder holding the archive
    x = np.load(out / "train_x.npy")
    assert x.shape == (14, 3, 32, 32) and len(np.load(out / "val_x.npy")) == 1 and len(np.load(out / "test_y.npy")) == 5
    with tarfile.open(src) as tar:
        first = pickle.loads(tar.extractfile("cifar-10-batches-py/data_batch_1").read())  # type: ignore[union-attr]
    # row-major R, G, B planes of 1024 values each; the splits are stored shuffled, so look for the image
    assert any(np.array_equal(img, np.asarray(first[b"data"][0]).reshape(3, 32, 32)) for img in x)


def first_classes(out: Path, split: str, fraction: float) -> set[int]:
    """The classes in the first ``fraction`` of a prepared split: what ``limit_val_batches`` validates on."""
    y = np.load(out / f"{split}_y.npy")
    return set(y[: int(fraction * len(y))].tolist())


def test_cifar10_splits_are_not_stored_in_class_order(tmp_path: Path) -> None:
    """The JPEG folders are per class: stored in that order, the first 40% of val (the CPU recipes'
    ``limit_val_batches: 0.4``) held 4 classes of 10 and chose checkpoints on them (dataset version 1)."""
    files = {
        f"{split}/{name}/{i:04d}.jpg": _jpeg(np.full((32, 32, 3), 20 * c, np.uint8))
        for split, n in (("train", 20), ("test", 5))
        for c, name in enumerate(CIFAR10_CLASSES)
        for i in range(n)
    }
    src = _tar(tmp_path / "cifar10-jpg.tar.gz", files)
    out = run.prepare("cifar10", source=src, data_dir=tmp_path / "d", overrides=["val_every=4"])
    assert np.bincount(np.load(out / "val_y.npy")).tolist() == [5] * 10  # every 4th of 20 per class
    assert len(first_classes(out, "val", 0.4)) >= 8  # the old order: {0, 1, 2, 3}
    assert len(first_classes(out, "test", 0.4)) >= 8 and len(first_classes(out, "train", 0.4)) == 10
    again = run.prepare("cifar10", source=src, data_dir=tmp_path / "e", overrides=["val_every=4"])
    other = run.prepare("cifar10", source=src, data_dir=tmp_path / "f", overrides=["val_every=4", "seed=1"])
    assert _bytes(out) == _bytes(again) and _bytes(out)["val_y.npy"] != _bytes(other)["val_y.npy"]
    manifest = __import__("json").loads((out / "manifest.json").read_text())
    assert manifest["dataset_version"] == 2 and manifest["config"]["seed"] == 0


def test_training_refuses_cifar10_prepared_in_class_order(tmp_path: Path) -> None:
    """Data written by an older preparer version (here CIFAR-10 in class order, version 1) is refused by
    training with the command that rebuilds it; evaluation and a fresh preparation are unaffected."""
    import json

    src = jpeg_cifar(tmp_path / "cifar10-jpg.tar.gz", {"train": 7, "test": 3})
    out = run.prepare("cifar10", source=src, data_dir=tmp_path / "d", overrides=["val_every=5"])
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["dataset_version"] = 1
    (out / "manifest.json").write_text(json.dumps(manifest))
    args = ("--data-dir", str(tmp_path / "d"), "train", "vision", "--recipe", "tiny/resattn")
    code, _, err = run_cli(*args, "--set", "data.dataset=cifar10", "--run-dir", str(tmp_path / "run"))
    assert code == 2 and err.count("\n") <= 1, err
    assert "dataset version 1" in err and f"attn prepare cifar10 --source {src} --force" in err
    assert not (tmp_path / "run").exists()
    del manifest["dataset_version"]  # manifests written before versions existed count as version 1
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert run_cli(*args, "--set", "data.dataset=cifar10", "--run-dir", str(tmp_path / "run"))[0] == 2
    run.prepare("cifar10", source=src, data_dir=tmp_path / "d", overrides=["val_every=5"])  # rebuilds it
    assert json.loads((out / "manifest.json").read_text())["dataset_version"] == 2


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    src = python_cifar(tmp_path / "c100.tar.gz", "cifar-100-python", {"train": 11, "test": 7}, b"fine_labels")
    out = run.prepare("cifar100", source=src, data_dir=tmp_path / "d")
    assert np.load(out / "train_x.npy").shape == (10, 3, 32, 32) and len(np.load(out / "test_y.npy")) == 7


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"train/unicorn/0000.jpg": b"x"}, "unknown CIFAR-10 class folder 'unicorn'"),
        ({"train/bird/0000.jpg": b"not a jpeg"}, "cannot decode train/bird/0000.jpg"),
        ({"notes.txt": b"nothing here"}, "no train/<class>/\\*.jpg images found"),
        (
            {
                "cifar-10-batches-py/data_batch_1": pickle.dumps(
                    {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}
                )
            },
            "'data_batch_2' is missing",
        ),
        ({"cifar-10-batches-py/data_batch_1": b"garbage"}, "not a CIFAR python batch"),
    ],
)
def test_cifar_source_errors(tmp_path: Path, files: dict[str, bytes], message: str) -> None:
    src = _tar(tmp_path / "bad.tar.gz", files)
    with pytest.raises(AttnError, match=message):
        run.prepare("cifar10", source=src, data_dir=tmp_path / "d")
    assert not (tmp_path / "d" / "cifar10").exists()  # nothing half-written


def test_cifar_image_of_the_wrong_size_is_an_error(tmp_path: Path) -> None:
    src = jpeg_cifar(tmp_path / "big.tar.gz", {"train": 1, "test": 1}, size=40)
    with pytest.raises(AttnError, match="40×40, CIFAR images are 32×32"):
        run.prepare("cifar10", source=src, data_dir=tmp_path / "d")


def test_cli_offline_without_source_names_source(dirs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTN_OFFLINE", "1")
    for dataset in ("cifar10", "cifar100", "fashion-mnist"):
        code, _, err = run_cli("prepare", dataset)
        assert code == 2 and "--source" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_bad_archive_exits_2(tmp_path: Path, dirs: dict[str, Path]) -> None:
    (tmp_path / "broken.tar.gz").write_bytes(b"\x1f\x8b not really")
    code, _, err = run_cli("prepare", "cifar10", "--source", str(tmp_path / "broken.tar.gz"))
    assert code == 2 and err.startswith("error:") and "download it again" in err


def test_fashion_mnist_and_its_zoom_set_from_idx_files(tmp_path: Path) -> None:
    src = fake_mnist(tmp_path / "f")
    out = run.prepare("fashion-mnist", source=src, data_dir=tmp_path / "d", overrides=["n_val=7"])
    assert np.load(out / "train_x.npy").shape == (46, 1, 28, 28)
    opts = ["n_val=7", "canvas=40", "min_side=11", "max_side=13"]
    zoom = run.prepare("fashion-zoom", source=src, data_dir=tmp_path / "d", overrides=opts)
    x, boxes = np.load(zoom / "test_x.npy"), np.load(zoom / "test_box.npy")
    assert x.shape == (13, 1, 40, 40) and boxes.shape == (13, 3)
    assert np.all((boxes[:, 2] >= 11) & (boxes[:, 2] <= 13)) and np.all(boxes[:, :2] + boxes[:, 2:] <= 40)


def _bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("*.npy"))}


def test_the_zoom_set_is_deterministic_and_its_objects_are_small(tmp_path: Path) -> None:
    opts = ["train=23", "val=5", "test=7"]
    a = run.prepare("glyphs-zoom", data_dir=tmp_path / "a", overrides=opts)
    b = run.prepare("glyphs-zoom", data_dir=tmp_path / "b", overrides=opts)
    c = run.prepare("glyphs-zoom", data_dir=tmp_path / "c", overrides=[*opts, "seed=2"])
    assert _bytes(a) == _bytes(b) and _bytes(a)["train_x.npy"] != _bytes(c)["train_x.npy"]
    x, boxes = np.load(a / "train_x.npy")[:, 0], np.load(a / "train_box.npy")
    for img, (bx, by, side) in zip(x, boxes):
        inside = img[by : by + side, bx : bx + side]
        assert inside.max() > 0 and side <= 16  # the object is there, and at most 16 of 40 pixels wide


def test_zoom_sides_must_fit_the_canvas(tmp_path: Path) -> None:
    with pytest.raises(AttnError, match="max_side <= canvas"):
        run.prepare("glyphs-zoom", data_dir=tmp_path / "d", overrides=["canvas=12", "max_side=16"])


@pytest.mark.data
def test_real_fashion_mnist(shared_data: Path, tmp_path: Path) -> None:
    out = run.prepare("fashion-mnist", source=shared_data / "fashion-mnist", data_dir=tmp_path)
    assert [len(np.load(out / f"{s}_y.npy")) for s in ("train", "val", "test")] == [55000, 5000, 10000]
    assert sorted(set(np.load(out / "test_y.npy").tolist())) == list(range(10))


@pytest.mark.data
@pytest.mark.slow
def test_real_cifar10_jpegs(shared_data: Path, tmp_path: Path) -> None:
    out = run.prepare("cifar10", source=shared_data / "cifar10" / "cifar10-jpg.tar.gz", data_dir=tmp_path)
    assert [len(np.load(out / f"{s}_y.npy")) for s in ("train", "val", "test")] == [45000, 5000, 10000]
    assert np.bincount(np.load(out / "test_y.npy")).tolist() == [1000] * 10
