"""MNIST's IDX format (LeCun et al.): the reader every MNIST-derived dataset shares.

Official files: ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``. Magic numbers:
2051 for images (uint8, n × rows × cols), 2049 for labels (uint8, n).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from attn_cli.errors import AttnError
from data_prep.base import RawFile

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_RAW = [RawFile(name, MNIST_MIRROR + name, MNIST_SHA256[name]) for name in MNIST_SHA256]


def read_idx(path: Path, expect_magic: int) -> np.ndarray:
    """Read one (gzipped) IDX file; clear errors for a wrong magic number or truncated data."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError as err:
        raise AttnError(f"{path} does not exist; --source must hold the four MNIST idx .gz files") from err
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as err:
        raise AttnError(f"{path} is a truncated or corrupt gzip file; download it again") from err
    if len(data) < 8:
        raise AttnError(f"{path} is too short to be an IDX file")
    magic = struct.unpack(">I", data[:4])[0]
    if magic != expect_magic:
        raise AttnError(f"{path} has IDX magic number {magic}, expected {expect_magic}; is it the right file?")
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise AttnError(f"{path} holds {body.size} values but its header promises {int(np.prod(dims))}; file truncated")
    return body.reshape(dims)


def load_mnist(source: Path) -> dict[str, np.ndarray]:
    """{train_images (60000, 28, 28) uint8, train_labels, test_images, test_labels} from ``source``."""
    out = {}
    for key, name in MNIST_FILES.items():
        out[key] = read_idx(source / name, 2051 if "images" in key else 2049)
    for split in ("train", "test"):
        n_img, n_lab = len(out[f"{split}_images"]), len(out[f"{split}_labels"])
        if n_img != n_lab:
            raise AttnError(f"MNIST {split}: {n_img} images but {n_lab} labels; the files do not belong together")
    return out
