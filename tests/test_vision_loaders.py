"""SVHN (format 2 .mat), GTSRB and CUB-200-2011 loaders on small fixtures written in the real formats."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from attn_cli import run
from attn_cli.errors import AttnError
from data_prep.svhn import read_mat5
from tests.conftest import run_cli


def _el(mtype: int, payload: bytes) -> bytes:
    return struct.pack("<II", mtype, len(payload)) + payload + b"\0" * ((-len(payload)) % 8)


def _matrix(name: str, arr: np.ndarray) -> bytes:
    mtype, cls = {np.uint8: (2, 9), np.float64: (9, 6)}[arr.dtype.type]
    body = _el(6, struct.pack("<II", cls, 0))
    body += _el(5, np.asarray(arr.shape, "<i4").tobytes())
    body += _el(1, name.encode())
    body += _el(mtype, arr.astype(arr.dtype.newbyteorder("<")).tobytes(order="F"))
    return _el(14, body)


def write_mat5(path: Path, arrays: dict[str, np.ndarray], compress: bool) -> None:
    """A MATLAB v5 file as MATLAB writes it (header, then one miMATRIX, optionally inside miCOMPRESSED)."""
    head = (
        b"MATLAB 5.0 MAT-file, written by the attn tests".ljust(116, b" ")
        + b"\0" * 8
        + struct.pack("<H", 0x0100)
        + b"IM"
    )
    body = b""
    for name, arr in arrays.items():
        m = _matrix(name, arr)
        body += struct.pack("<II", 15, len(zlib.compress(m))) + zlib.compress(m) if compress else m
    path.write_bytes(head + body)


def _svhn(root: Path, n: int, compress: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    x = rng.integers(0, 256, (32, 32, 3, n)).astype(np.uint8)
    y = rng.integers(1, 11, (n, 1)).astype(np.float64)
    write_mat5(root, {"X": x, "y": y}, compress)
    return x, y


@pytest.mark.parametrize("compress", [True, False])
def test_mat5_reader_round_trips(tmp_path: Path, compress: bool) -> None:
    x, y = _svhn(tmp_path / "a.mat", 7, compress)
    mat = read_mat5(tmp_path / "a.mat")
    assert np.array_equal(mat["X"], x) and np.array_equal(mat["y"], y)


def test_svhn_prepares(tmp_path: Path) -> None:
    src = tmp_path / "svhn"
    src.mkdir()
    x, y = _svhn(src / "train_32x32.mat", 13, True)
    _svhn(src / "test_32x32.mat", 5, False)
    out = run.prepare("svhn", source=src, data_dir=tmp_path / "d", overrides=["n_val=3"])
    tx, ty = np.load(out / "train_x.npy"), np.load(out / "train_y.npy")
    assert tx.shape == (10, 3, 32, 32) and np.array_equal(tx[0], x[..., 0].transpose(2, 0, 1))
    assert np.array_equal(ty, y[:10, 0].astype(int) % 10) and len(np.load(out / "test_y.npy")) == 5


def test_svhn_rejects_format_1_and_garbage(tmp_path: Path) -> None:
    (tmp_path / "d.mat").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 200)
    with pytest.raises(AttnError, match="v7.3"):
        read_mat5(tmp_path / "d.mat")
    (tmp_path / "e.mat").write_bytes(b"x" * 200)
    with pytest.raises(AttnError, match="not a MATLAB v5"):
        read_mat5(tmp_path / "e.mat")


def _digit_struct(path: Path, entries: list[tuple[str, list[tuple[int, int, int, int, int]]]]) -> None:
    """A digitStruct.mat laid out as MATLAB v7.3 writes SVHN's: /digitStruct/{name,bbox} (N, 1) object
    references; a name is a uint16 char column; a bbox field is a 1×1 value for one digit and an
    (n, 1) column of references to 1×1 values for several (the real file has both shapes)."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        group = f.create_group("digitStruct")
        names = group.create_dataset("name", (len(entries), 1), dtype=h5py.ref_dtype)
        boxes = group.create_dataset("bbox", (len(entries), 1), dtype=h5py.ref_dtype)
        for i, (name, digits) in enumerate(entries):
            names[i, 0] = refs.create_dataset(f"n{i}", data=np.array([[ord(c)] for c in name], np.uint16)).ref
            box = refs.create_group(f"b{i}")
            for k, key in enumerate(("label", "left", "top", "width", "height")):
                vals = [float(d[k]) for d in digits]
                if len(vals) == 1:
                    box.create_dataset(key, data=np.array([[vals[0]]]))
                else:
                    cells = [refs.create_dataset(f"v{i}{key}{j}", data=np.array([[v]])).ref for j, v in enumerate(vals)]
                    box.create_dataset(key, data=np.array(cells, dtype=h5py.ref_dtype).reshape(-1, 1))
            boxes[i, 0] = box.ref


def _svhn_format1(root: Path) -> None:
    for split in ("train", "test"):
        d = root / split
        d.mkdir(parents=True)
        for i in range(1, 5):
            _img(d / f"{i}.png", i, size=(40, 30))
    # label 10 is the digit 0; 1.png holds "1 0", 2.png one digit, 3.png six digits (dropped)
    train = [
        ("1.png", [(1, 5, 4, 8, 12), (10, 14, 6, 8, 12)]),
        ("2.png", [(7, 10, 8, 9, 14)]),
        ("3.png", [(d, 2 + 5 * d, 3, 4, 10) for d in range(1, 7)]),
        ("4.png", [(3, 0, 0, 10, 10), (4, 12, 2, 10, 10), (5, 25, 1, 10, 10)]),
    ]
    _digit_struct(root / "train" / "digitStruct.mat", train)
    _digit_struct(root / "test" / "digitStruct.mat", train[:2])


def test_svhn_format1_prepares_digit_sequences(tmp_path: Path) -> None:
    src = tmp_path / "svhn1"
    _svhn_format1(src)
    out = run.prepare("svhn-multi", source=src, data_dir=tmp_path / "d", overrides=["n_val=1", "size=16"])
    x, y = np.load(out / "train_x.npy"), np.load(out / "train_y.npy")
    assert x.shape == (2, 3, 16, 16) and x.dtype == np.uint8
    assert y.tolist() == [[1, 0, 10, 10, 10], [7, 10, 10, 10, 10]]  # 3.png (six digits) dropped
    assert np.load(out / "val_y.npy").tolist() == [[3, 4, 5, 10, 10]]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["too_long_skipped"] == 1 and manifest["classes"] == 11 and manifest["counts"]["test"] == 2
    # the crop is the digits' union box grown by 30%: 2.png's (10, 8)-(19, 22) -> (8.65, 5.9)-(20.35, 24.1)
    from PIL import Image

    with Image.open(src / "train" / "2.png") as im:
        want = np.asarray(im.convert("RGB").resize((16, 16), Image.BILINEAR, box=(8.65, 5.9, 20.35, 24.1)))
    assert np.array_equal(x[1], want.transpose(2, 0, 1))


def test_svhn_format1_config_errors(tmp_path: Path) -> None:
    src = tmp_path / "svhn1"
    _svhn_format1(src)
    with pytest.raises(AttnError, match=r"n_val=3 must be below the 3 usable training images"):
        run.prepare("svhn-multi", source=src, data_dir=tmp_path / "d", overrides=["n_val=3"])
    with pytest.raises(AttnError, match=r"no usable image \(too long: 4, undecodable: 0\)"):
        run.prepare("svhn-multi", source=src, data_dir=tmp_path / "e", overrides=["max_digits=0"])


def test_dram_trains_on_svhn_sequences(tmp_path: Path) -> None:
    src = tmp_path / "svhn1"
    _svhn_format1(src)
    run.prepare("svhn-multi", source=src, data_dir=tmp_path / "d", overrides=["n_val=1"])
    summary = run.train(
        "vision", "dram-svhn", runs_dir=tmp_path / "r", data_dir=tmp_path / "d", progress=False,
        overrides=["train.max_steps=2", "train.batch_size=2", "train.val_every_steps=1", "train.limit_val_batches=1.0", "train.threads=1"],
    )  # fmt: skip
    assert summary["steps"] == 2 and summary["best_score"] is not None


def test_svhn_format1_bad_inputs(tmp_path: Path) -> None:
    src = tmp_path / "svhn1"
    _svhn_format1(src)
    (src / "train" / "2.png").write_bytes(b"not a png")  # skipped and counted
    out = run.prepare("svhn-multi", source=src, data_dir=tmp_path / "d", overrides=["n_val=1"])
    assert json.loads((out / "manifest.json").read_text())["undecodable_skipped"] == 1
    (src / "train" / "4.png").unlink()
    with pytest.raises(AttnError, match=r"4\.png is missing; digitStruct.mat names it"):
        run.prepare("svhn-multi", source=src, data_dir=tmp_path / "e")
    (src / "test" / "digitStruct.mat").write_bytes(b"garbage" * 40)
    with pytest.raises(AttnError, match="is not an SVHN format-1 digitStruct.mat"):
        from data_prep.svhn import read_digit_struct

        read_digit_struct(src / "test" / "digitStruct.mat")
    code, _, err = run_cli("--data-dir", str(tmp_path / "f"), "prepare", "vision", "--dataset", "svhn-multi",
                           "--source", str(tmp_path / "nowhere"))  # fmt: skip
    assert code == 2 and "--source" in err and err.count("\n") == 1


def _img(path: Path, seed: int, size: tuple[int, int] = (17, 13)) -> None:
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3)).astype(np.uint8)
    Image.fromarray(arr).save(path)


def test_gtsrb_prepares_from_the_official_layout(tmp_path: Path) -> None:
    root = tmp_path / "GTSRB"
    for cls in (0, 2):
        d = root / "Final_Training" / "Images" / f"{cls:05d}"
        d.mkdir(parents=True)
        lines = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
        for k in range(5):
            _img(d / f"00000_{k:05d}.ppm", cls * 10 + k)
            lines.append(f"00000_{k:05d}.ppm;17;13;1;1;15;11;{cls}")
        (d / f"GT-{cls:05d}.csv").write_text("\n".join(lines) + "\n")
    t = root / "Final_Test" / "Images"
    t.mkdir(parents=True)
    _img(t / "00000.ppm", 99)
    (t / "GT-final_test.csv").write_text(
        "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\n00000.ppm;17;13;0;0;16;12;2\n"
    )
    out = run.prepare("gtsrb", source=root, data_dir=tmp_path / "d", overrides=["size=11", "val_fraction=0.2"])
    assert np.load(out / "train_x.npy").shape == (8, 3, 11, 11)
    assert sorted(np.load(out / "val_y.npy")) == [0, 2] and list(np.load(out / "test_y.npy")) == [2]
    (t / "GT-final_test.csv").write_text("Filename;ClassId\nmissing.ppm;2\n")
    with pytest.raises(AttnError, match="cannot read image"):
        run.prepare("gtsrb", source=root, data_dir=tmp_path / "d", force=True)


def test_cub_prepares_from_the_official_layout(tmp_path: Path) -> None:
    root = tmp_path / "CUB_200_2011"
    (root / "images" / "001.Bird").mkdir(parents=True)
    ids = range(1, 8)
    for i in ids:
        _img(root / "images" / "001.Bird" / f"b{i}.jpg", i)
    (root / "images.txt").write_text("".join(f"{i} 001.Bird/b{i}.jpg\n" for i in ids))
    (root / "image_class_labels.txt").write_text("".join(f"{i} {1 + i % 3}\n" for i in ids))
    (root / "train_test_split.txt").write_text("".join(f"{i} {int(i <= 5)}\n" for i in ids))
    (root / "bounding_boxes.txt").write_text("".join(f"{i} 1.0 2.0 9.0 7.0\n" for i in ids))
    out = run.prepare("cub", source=root, data_dir=tmp_path / "d", overrides=["size=5", "val_every=5", "bbox=true"])
    assert np.load(out / "train_x.npy").shape == (4, 3, 5, 5) and len(np.load(out / "val_y.npy")) == 1
    assert list(np.load(out / "test_y.npy")) == [0, 1]
    (root / "train_test_split.txt").write_text("1 1\n")
    with pytest.raises(AttnError, match="different ids"):
        run.prepare("cub", source=root, data_dir=tmp_path / "d", force=True)


def _amat(path: Path, images: np.ndarray) -> None:
    path.write_text("".join(" ".join(str(int(v)) for v in im.reshape(-1)) + "\n" for im in images))


def test_binarized_mnist_prepares_from_the_amat_files(tmp_path: Path) -> None:
    from data_prep.binarized_mnist import AMAT, read_amat

    rng = np.random.default_rng(2)
    sizes = {"train": 7, "val": 3, "test": 5}
    src = tmp_path / "src"
    src.mkdir()
    for split, name in AMAT.items():
        _amat(src / name, rng.integers(0, 2, (sizes[split], 28, 28)))
    out = run.prepare("binarized-mnist", source=src, data_dir=tmp_path / "d")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == sizes and manifest["labelled"] is False
    x = np.load(out / "test_x.npy")
    assert x.shape == (5, 1, 28, 28) and set(np.unique(x)) <= {0, 255}
    # the fast path (official layout) and the line parser agree
    crlf = tmp_path / "crlf.amat"
    crlf.write_bytes((src / AMAT["test"]).read_bytes().replace(b"\n", b"\r\n"))
    assert np.array_equal(read_amat(crlf), x[:, 0])
    # DRAW generation trains on it; a classifier is refused
    summary = run.train(
        "vision", "tiny/draw", runs_dir=tmp_path / "r", data_dir=tmp_path / "d", progress=False,
        overrides=["data.dataset=binarized-mnist"],
    )  # fmt: skip
    assert summary["run_dir"]
    with pytest.raises(AttnError, match="has no labels"):
        run.train(
            "vision", "tiny/fc", runs_dir=tmp_path / "r", data_dir=tmp_path / "d", progress=False,
            overrides=["data.dataset=binarized-mnist"],
        )  # fmt: skip


def test_binarized_mnist_bad_files(tmp_path: Path) -> None:
    from data_prep.binarized_mnist import AMAT, read_amat

    bad = tmp_path / "bad.amat"
    bad.write_text("0 1 " * 300 + "\n")
    with pytest.raises(AttnError, match="line 1: expected 784 values 0/1, got 600"):
        read_amat(bad)
    bad.write_text(" ".join(["0"] * 783 + ["7"]) + "\n")
    with pytest.raises(AttnError, match="non-binary"):
        read_amat(bad)
    bad.write_text("\n\n")
    with pytest.raises(AttnError, match="holds no images"):
        read_amat(bad)
    src = tmp_path / "src"
    src.mkdir()
    _amat(src / AMAT["train"], np.zeros((2, 28, 28)))
    code, _, err = run_cli("--data-dir", str(tmp_path / "d"), "prepare", "vision", "--dataset", "binarized-mnist",
                           "--source", str(src))  # fmt: skip
    assert code == 2 and "binarized_mnist_valid.amat is missing" in err and "Traceback" not in err
