"""MNIST reading (bad inputs), derived datasets (deterministic bytes), the vision datamodule."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from attn_cli import run
from attn_cli.errors import AttnError
from data_prep.idx import MNIST_FILES, load_mnist, read_idx
from tests.conftest import run_cli


def _idx(path: Path, magic: int, array: np.ndarray, truncate: int = 0) -> None:
    data = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    blob = gzip.compress(data, mtime=0)
    path.write_bytes(blob[: len(blob) - truncate] if truncate else blob)


def fake_mnist(root: Path, n_train: int = 53, n_test: int = 13, labels_train: int | None = None) -> Path:
    """Four official-format idx .gz files with random digits (sizes: distinct primes)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    _idx(root / MNIST_FILES["train_images"], 2051, rng.integers(0, 256, (n_train, 28, 28)))
    _idx(root / MNIST_FILES["train_labels"], 2049, rng.integers(0, 10, labels_train or n_train))
    _idx(root / MNIST_FILES["test_images"], 2051, rng.integers(0, 256, (n_test, 28, 28)))
    _idx(root / MNIST_FILES["test_labels"], 2049, rng.integers(0, 10, n_test))
    return root


def test_wrong_magic_number_is_a_clear_error(tmp_path: Path) -> None:
    _idx(tmp_path / "x.gz", 2049, np.zeros((3, 5, 7)))
    with pytest.raises(AttnError, match="magic number 2049, expected 2051"):
        read_idx(tmp_path / "x.gz", 2051)


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    _idx(tmp_path / "x.gz", 2051, np.zeros((3, 5, 7)), truncate=11)
    with pytest.raises(AttnError, match="truncated or corrupt gzip"):
        read_idx(tmp_path / "x.gz", 2051)


def test_label_image_count_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    src = fake_mnist(tmp_path / "m", labels_train=47)
    with pytest.raises(AttnError, match="53 images but 47 labels"):
        load_mnist(src)


def test_cli_prepare_bad_source_exits_2(tmp_path: Path, dirs: dict[str, Path]) -> None:
    src = fake_mnist(tmp_path / "m", labels_train=47)
    code, _, err = run_cli("prepare", "mnist", "--source", str(src))
    assert code == 2 and "labels" in err


def test_prepare_mnist_and_a_derived_set_from_official_files(tmp_path: Path) -> None:
    src = fake_mnist(tmp_path / "m")
    out = run.prepare("mnist", source=src, data_dir=tmp_path / "d", overrides=["n_val=7"])
    assert np.load(out / "train_x.npy").shape == (46, 1, 28, 28) and len(np.load(out / "val_y.npy")) == 7
    out = run.prepare("mnist-cluttered-60", source=src, data_dir=tmp_path / "d", overrides=["val_from_train=7"])
    assert np.load(out / "test_x.npy").shape == (13, 1, 60, 60)


def _bytes(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.glob("*.npy"))}


@pytest.mark.parametrize("kind", ["translated-60", "cluttered-100", "r", "rts", "p", "e", "addition", "multi"])
def test_derived_datasets_are_deterministic(kind: str, tmp_path: Path) -> None:
    opts = ["train=23", "val=5", "test=7"]
    a = run.prepare(f"glyphs-{kind}", data_dir=tmp_path / "a", overrides=opts)
    b = run.prepare(f"glyphs-{kind}", data_dir=tmp_path / "b", overrides=opts)
    c = run.prepare(f"glyphs-{kind}", data_dir=tmp_path / "c", overrides=[*opts, "seed=2"])
    assert _bytes(a) == _bytes(b)
    assert _bytes(a)["train_x.npy"] != _bytes(c)["train_x.npy"]


def test_derived_mnist_is_deterministic(tmp_path: Path) -> None:
    src = fake_mnist(tmp_path / "m")
    a = run.prepare("mnist-rts", source=src, data_dir=tmp_path / "a", overrides=["val_from_train=7"])
    b = run.prepare("mnist-rts", source=src, data_dir=tmp_path / "b", overrides=["val_from_train=7"])
    assert _bytes(a) == _bytes(b)


def test_derived_labels() -> None:
    from attn_cli.data.distort import KINDS

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (7, 28, 28)).astype(np.uint8)
    y = np.arange(7) % 10
    xa, ya = KINDS["addition"][1](x, y, np.random.default_rng(1))
    assert xa.shape == (7, 2, 42, 42) and ya.max() <= 18
    xm, ym = KINDS["multi"][1](x, y, np.random.default_rng(1))
    assert xm.shape == (7, 64, 64) and ym.shape == (7, 2) and (ym[:, 0] == y).all()
    xr, _ = KINDS["translated-60"][1](x, y, np.random.default_rng(1))
    assert xr.shape == (7, 60, 60) and (xr.reshape(7, -1).sum(1) == x.reshape(7, -1).astype(int).sum(1)).all()


def test_unprepared_dataset_names_the_command(tmp_path: Path) -> None:
    from attn_cli.data.vision import VisionDataConfig, VisionDataModule

    with pytest.raises(AttnError, match="attn prepare mnist-rts --source"):
        VisionDataModule(VisionDataConfig(dataset="mnist-rts"), tmp_path, 5, 0, 0)


@pytest.mark.data
def test_real_mnist_reads(shared_data: Path) -> None:
    raw = load_mnist(shared_data / "mnist")
    assert raw["train_images"].shape == (60000, 28, 28) and raw["test_labels"].shape == (10000,)


@pytest.mark.parametrize("kind", ["rts", "addition", "translated-60", "cluttered-60"])
def test_resample_draws_fresh_distortions_per_epoch_and_the_same_after_a_resume(kind: str, tmp_path: Path) -> None:
    from attn_cli.data.vision import VisionDataConfig, VisionDataModule

    run.prepare(f"glyphs-{kind}", data_dir=tmp_path, overrides=["train=23", "val=5", "test=7"])
    cfg = VisionDataConfig(dataset=f"glyphs-{kind}", resample=True)

    def first_batch(epoch: int) -> dict:
        loader = VisionDataModule(cfg, tmp_path, 8, 3, 0).train_dataloader()
        loader.batch_sampler.set_epoch(epoch)
        return next(iter(loader))

    a, again, later = first_batch(0), first_batch(0), first_batch(1)
    fixed = VisionDataModule(VisionDataConfig(dataset=f"glyphs-{kind}"), tmp_path, 8, 3, 0)
    assert a["x"].shape[1:] == next(iter(fixed.train_dataloader()))["x"].shape[1:]
    assert torch.equal(a["x"], again["x"]) and torch.equal(a["y"], again["y"])
    assert not torch.equal(a["x"], later["x"])
    assert int(a["ids"].max()) < 23 and int(later["ids"].max()) < 23  # ids index the split, whatever the epoch
    if kind != "addition":  # a distortion, a translation or clutter keeps the digit's label
        digits_y = np.load(tmp_path / f"glyphs-{kind}" / "train_digits_y.npy")
        assert (a["y"].numpy() == digits_y[a["ids"].numpy()]).all()


def test_ram_recipes_on_generated_sets_train_on_fresh_draws_with_the_tuned_policy_std() -> None:
    """Mnih et al. generate translated and cluttered MNIST on the fly; fixed sets overfit (docs/vision.md)."""
    from attn_cli.config import available_recipes, load_recipe

    names = [n for n in available_recipes("vision") if n.startswith("ram-")]
    # 28×28 with 2-7 glimpses, with the paper's SGD and with a re-implementation's 200 epochs, 60×60 translated and
    # cluttered with 4, 6, 8, 100×100, two GPU
    assert len(names) == 18
    for name in names:
        recipe = load_recipe("vision", name)
        assert recipe.data.resample == (recipe.data.dataset != "mnist"), name
        assert 0.17 <= recipe.model.std <= 0.22, name


def test_resample_errors_name_the_fix(tmp_path: Path) -> None:
    from attn_cli.data.vision import VisionDataConfig, VisionDataModule

    run.prepare("glyphs", data_dir=tmp_path, overrides=["train=23", "val=5", "test=7"])
    with pytest.raises(AttnError, match="needs a derived dataset"):
        VisionDataModule(VisionDataConfig(dataset="glyphs", resample=True), tmp_path, 8, 3, 0).train_dataloader()
    out = run.prepare("glyphs-rts", data_dir=tmp_path, overrides=["train=23", "val=5", "test=7"])
    (out / "train_digits_x.npy").unlink()  # as prepared by an older attn
    with pytest.raises(AttnError, match="--force"):
        VisionDataModule(VisionDataConfig(dataset="glyphs-rts", resample=True), tmp_path, 8, 3, 0).train_dataloader()


def test_a_setting_lightning_refuses_is_a_one_line_error(tmp_path: Path) -> None:
    run.prepare("glyphs-rts", data_dir=tmp_path / "d", overrides=["train=23", "val=5", "test=7"])
    code, _, err = run_cli(
        "--data-dir", str(tmp_path / "d"), "--runs-dir", str(tmp_path / "r"),
        "train", "vision", "--recipe", "cnn-rts", "--set", "data.dataset=glyphs-rts",
        "--set", "train.limit_val_batches=0.4", "--set", "train.threads=1",
    )  # fmt: skip
    assert code == 2 and "limit_val_batches" in err and "Traceback" not in err and err.count("\n") == 1


def test_fixed_binarisation_is_one_draw_per_split_whatever_the_run() -> None:
    from attn_cli.data.vision import binarize_split

    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (300, 28, 28)).astype(np.uint8)
    b = binarize_split(x, "train", chunk=64)
    assert set(np.unique(b)) <= {0, 255}
    assert np.array_equal(b, binarize_split(x, "train", chunk=7))  # the chunking does not change the draw
    assert np.array_equal(b[:50], binarize_split(x[:50], "train"))  # data.n_train keeps the first images' draw
    assert not np.array_equal(b, binarize_split(x, "test"))  # each split its own draw
    assert (b[x == 0] == 0).all() and (b[x == 255] == 255).all()
    # stochastic, not a threshold: pixels at intensity ~0.3 are on about 30% of the time
    mid = (x >= 70) & (x <= 83)
    assert 0.25 < (b[mid] == 255).mean() < 0.35


@pytest.mark.parametrize("mode", ["fixed", "dynamic", "threshold", "true"])
def test_binarize_modes_in_the_datamodule(mode: str, tmp_path: Path) -> None:
    from attn_cli.config import build
    from attn_cli.data.vision import VisionDataConfig, VisionDataModule

    run.prepare("glyphs", data_dir=tmp_path, overrides=["train=23", "val=5", "test=7"])
    cfg = build(VisionDataConfig, {"dataset": "glyphs", "binarize": mode})
    grey = VisionDataModule(VisionDataConfig(dataset="glyphs"), tmp_path, 8, 3, 0)

    def batches(seed: int, epoch: int) -> tuple[dict, dict]:
        dm = VisionDataModule(cfg, tmp_path, 8, seed, 0)
        loader = dm.train_dataloader()
        loader.batch_sampler.set_epoch(epoch)
        return next(iter(loader)), next(iter(dm.split_loader("test")))

    (a, ta), (again, _), (later, _), (_, tb) = batches(3, 0), batches(3, 0), batches(3, 1), batches(4, 0)
    for batch in (a, ta, later):
        assert set(batch["x"].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a["x"], again["x"])  # a resumed run draws the same bytes
    assert torch.equal(ta["x"], tb["x"])  # every run is scored on the same test images
    grey_x = next(iter(grey.split_loader("test")))["x"]
    if mode in ("threshold", "true"):
        assert torch.equal(ta["x"], (grey_x > 0.5).float())
    else:  # a Bernoulli draw: some pixels below 0.5 on or some above off
        assert not torch.equal(ta["x"], (grey_x > 0.5).float())
    by_id = {int(i): x for i, x in zip(later["ids"], later["x"], strict=True)}
    same = [torch.equal(by_id[int(i)], x) for i, x in zip(a["ids"], a["x"], strict=True) if int(i) in by_id]
    if mode == "dynamic":  # a fresh draw of the same image in another epoch
        assert same and not all(same)
    else:
        assert all(same)


def test_binarize_errors(tmp_path: Path) -> None:
    from attn_cli.config import build
    from attn_cli.data.vision import VisionDataConfig, VisionDataModule

    with pytest.raises(AttnError, match="valid: dynamic, fixed, threshold"):
        build(VisionDataConfig, {"binarize": "stochastic"})
    run.prepare("glyphs-rts", data_dir=tmp_path, overrides=["train=23", "val=5", "test=7"])
    cfg = VisionDataConfig(dataset="glyphs-rts", resample=True, binarize="fixed")
    with pytest.raises(AttnError, match="use data.binarize: dynamic"):
        VisionDataModule(cfg, tmp_path, 8, 3, 0).train_dataloader()
    dyn = VisionDataModule(VisionDataConfig(dataset="glyphs-rts", resample=True, binarize="dynamic"), tmp_path, 8, 3, 0)
    assert set(next(iter(dyn.train_dataloader()))["x"].unique().tolist()) <= {0.0, 1.0}
