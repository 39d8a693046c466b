"""Stanford Dogs, Stanford Cars and CUB from its archive, on fixtures laid out as the official files: the MATLAB
v5 lists and annotations (written here byte by byte, as MATLAB writes them), the archives, the error paths."""

from __future__ import annotations

import hashlib
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from attn_cli import run
from attn_cli.errors import AttnError
from data_prep.base import RawFile, _matches
from data_prep.matlab import read_mat5_any

MI_INT8, MI_INT32, MI_UINT32, MI_UINT16, MI_DOUBLE, MI_MATRIX, MI_COMPRESSED = 1, 5, 6, 4, 9, 14, 15


def _el(mtype: int, payload: bytes) -> bytes:
    return struct.pack("<II", mtype, len(payload)) + payload + b"\0" * ((-len(payload)) % 8)


def _matrix(name: str, cls: int, dims: tuple[int, ...], *body: bytes) -> bytes:
    head = _el(MI_UINT32, struct.pack("<II", cls, 0)) + _el(MI_INT32, struct.pack(f"<{len(dims)}i", *dims))
    return _el(MI_MATRIX, head + _el(MI_INT8, name.encode()) + b"".join(body))


def m_double(values: list[float], name: str = "") -> bytes:
    return _matrix(name, 6, (len(values), 1), _el(MI_DOUBLE, struct.pack(f"<{len(values)}d", *values)))


def m_char(text: str, name: str = "") -> bytes:
    return _matrix(name, 4, (1, len(text)), _el(MI_UINT16, struct.pack(f"<{len(text)}H", *map(ord, text))))


def m_cell(items: list[bytes], name: str) -> bytes:
    return _matrix(name, 1, (len(items), 1), *items)


def m_struct(rows: list[dict[str, bytes]], name: str) -> bytes:
    fields = list(rows[0])
    width = 32
    names = b"".join(f.encode().ljust(width, b"\0") for f in fields)
    body = [_el(MI_INT32, struct.pack("<i", width)), _el(MI_INT8, names)]
    body += [row[f] for row in rows for f in fields]
    return _matrix(name, 2, (1, len(rows)), *body)


def mat_file(path: Path, *variables: bytes, compress: bool = False) -> Path:
    header = b"MATLAB 5.0 MAT-file, written by a test".ljust(116, b" ") + b"\0" * 8 + struct.pack("<H", 0x0100) + b"IM"
    body = b"".join(_el(MI_COMPRESSED, zlib.compress(v))[: 8 + len(zlib.compress(v))] for v in variables)
    path.write_bytes(header + (body if compress else b"".join(variables)))
    return path


def _jpeg(path: Path, size: tuple[int, int], value: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)


@pytest.mark.parametrize("compress", [False, True])
def test_matlab_reader_reads_cells_structs_strings_and_numbers(tmp_path: Path, compress: bool) -> None:
    path = mat_file(
        tmp_path / "x.mat",
        m_cell([m_char("a/b.jpg"), m_char("c/dé.jpg")], "file_list"),
        m_double([3.0, 5.0], "labels"),
        m_struct([{"fname": m_char("00001.jpg"), "class": m_double([7.0])}], "annotations"),
        compress=compress,
    )
    mat = read_mat5_any(path)
    assert mat["file_list"] == ["a/b.jpg", "c/dé.jpg"]
    assert mat["labels"].reshape(-1).tolist() == [3.0, 5.0]
    assert mat["annotations"][0]["fname"] == "00001.jpg" and float(mat["annotations"][0]["class"][0, 0]) == 7.0


def test_matlab_reader_errors(tmp_path: Path) -> None:
    (tmp_path / "short.mat").write_bytes(b"nope")
    with pytest.raises(AttnError, match="not a MATLAB v5"):
        read_mat5_any(tmp_path / "short.mat")
    good = mat_file(tmp_path / "t.mat", m_double([1.0, 2.0], "labels"))
    (tmp_path / "cut.mat").write_bytes(good.read_bytes()[:150])
    with pytest.raises(AttnError, match="damaged MATLAB file"):
        read_mat5_any(tmp_path / "cut.mat")


def dogs(root: Path) -> Path:
    breeds = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel", "n02085936-Maltese_dog"]
    train, test = [], []
    for b, breed in enumerate(breeds):
        for i in range(4):
            _jpeg(root / "Images" / breed / f"{i}.jpg", (23 + i, 17), 60 * b)
            (train if i < 3 else test).append((f"{breed}/{i}.jpg", b + 1))
    for name, rows in (("train", train), ("test", test)):
        files = m_cell([m_cell([m_char(f)], "") for f, _ in rows], "file_list")  # cells of 1×1 cells, as the real lists
        mat_file(root / f"{name}_list.mat", files, m_double([float(y) for _, y in rows], "labels"), compress=True)
    return root


def test_stanford_dogs_from_the_unpacked_folder(tmp_path: Path) -> None:
    out = run.prepare(
        "stanford-dogs", source=dogs(tmp_path / "dogs"), data_dir=tmp_path / "d", overrides=["size=5", "val_every=3"]
    )
    assert np.load(out / "train_x.npy").shape == (6, 3, 5, 5) and len(np.load(out / "val_y.npy")) == 3
    y = np.load(out / "test_y.npy")
    assert sorted(y.tolist()) == [0, 1, 2] and np.load(out / "test_x.npy")[y == 2].mean() == pytest.approx(120, abs=3)


def test_stanford_dogs_from_the_official_archives(tmp_path: Path) -> None:
    folder = dogs(tmp_path / "unpacked")
    src = tmp_path / "archives"
    src.mkdir()
    with tarfile.open(src / "images.tar", "w") as tar:
        tar.add(folder / "Images", arcname="Images")
    with tarfile.open(src / "lists.tar", "w") as tar:
        for name in ("train_list.mat", "test_list.mat"):
            tar.add(folder / name, arcname=name)
    out = run.prepare("stanford-dogs", source=src, data_dir=tmp_path / "d", overrides=["size=5"])
    assert len(np.load(out / "train_y.npy")) + len(np.load(out / "val_y.npy")) == 9


def cars(root: Path) -> Path:
    devkit = root / "devkit"
    devkit.mkdir(parents=True)
    for split, n in (("train", 4), ("test", 3)):
        rows = []
        for i in range(n):
            fname = f"{i + 1:05d}.jpg"
            _jpeg(root / f"cars_{split}" / fname, (31, 19), 40 * i)
            box = {
                k: m_double([v]) for k, v in zip(("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"), (2.0, 3.0, 13.0, 11.0))
            }
            rows.append({**box, "class": m_double([float(i % 2 + 1)]), "fname": m_char(fname)})
        target = devkit / "cars_train_annos.mat" if split == "train" else root / "cars_test_annos_withlabels.mat"
        mat_file(target, m_struct(rows, "annotations"))
    return root


def test_stanford_cars_with_and_without_boxes(tmp_path: Path) -> None:
    src = cars(tmp_path / "cars")
    out = run.prepare(
        "stanford-cars", source=src, data_dir=tmp_path / "d", overrides=["size=7", "bbox=true", "val_every=2"]
    )
    assert np.load(out / "train_x.npy").shape == (2, 3, 7, 7)
    assert sorted(np.load(out / "test_y.npy").tolist()) == [0, 0, 1]
    assert "cropped" in (out / "manifest.json").read_text()


def test_fine_grained_errors(tmp_path: Path) -> None:
    (tmp_path / "dogs" / "Images").mkdir(parents=True)
    with pytest.raises(AttnError, match="train_list.mat not found"):
        run.prepare("stanford-dogs", source=tmp_path / "dogs", data_dir=tmp_path / "d")
    root = cars(tmp_path / "cars")
    mat_file(root / "cars_test_annos_withlabels.mat", m_double([1.0], "annotations"))
    with pytest.raises(AttnError, match="no annotations struct"):
        run.prepare("stanford-cars", source=root, data_dir=tmp_path / "d")
    (tmp_path / "bad.tgz").write_bytes(b"not a tar")
    with pytest.raises(AttnError, match="not a readable tar archive"):
        run.prepare("stanford-cars", source=tmp_path / "bad.tgz", data_dir=tmp_path / "d")


def test_cub_from_its_official_archive(tmp_path: Path) -> None:
    cub = tmp_path / "CUB_200_2011"
    lines = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": []}
    for i in range(1, 6):
        _jpeg(cub / "images" / "001.Bird" / f"{i}.jpg", (13, 11), 30 * i)
        lines["images.txt"].append(f"{i} 001.Bird/{i}.jpg")
        lines["image_class_labels.txt"].append(f"{i} {1 + i % 2}")
        lines["train_test_split.txt"].append(f"{i} {int(i < 4)}")
    for name, rows in lines.items():
        (cub / name).write_text("\n".join(rows) + "\n")
    src = tmp_path / "download"
    src.mkdir()
    with tarfile.open(src / "CUB_200_2011.tgz", "w:gz") as tar:
        tar.add(cub, arcname="CUB_200_2011")
    out = run.prepare("cub", source=src, data_dir=tmp_path / "d", overrides=["size=5", "val_every=3"])
    assert [len(np.load(out / f"{s}_y.npy")) for s in ("train", "val", "test")] == [2, 1, 2]


def test_md5_checked_raw_files(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"cars")
    digest = hashlib.md5(b"cars").hexdigest()
    assert _matches(RawFile("f.bin", "u", md5=digest), path)
    assert not _matches(RawFile("f.bin", "u", md5="0" * 32), path)
    assert _matches(RawFile("f.bin", "u"), path)  # nothing published: kept
