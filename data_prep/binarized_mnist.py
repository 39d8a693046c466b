"""The binarised MNIST of Salakhutdinov & Murray (2008) as Larochelle & Murray (2011) distribute it.

DRAW's Table 2 (Gregor et al. 2015) and most density-estimation papers of the time report their
negative log-likelihood bounds on these files: one fixed stochastic binarisation of MNIST, split
50,000 / 10,000 / 10,000 (train / valid / test), without labels. Official files (``--source DIR``
holding them, or downloaded with the sha256 that TensorFlow Datasets records)::

    binarized_mnist_{train,valid,test}.amat   one image per line: 784 values 0/1, space-separated

Prepared like every image set of the vision family (``{split}_x.npy`` uint8 (N, 1, 28, 28) with
pixels 0/255, ``{split}_y.npy``); there are no labels, so ``y`` is all zeros and the manifest says
``labelled: false`` (a classifier recipe on it is refused). Our own draw over the idx MNIST is
``data.binarize: fixed`` (:mod:`attn_cli.data.vision`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.errors import AttnError
from data_prep.base import DATASETS, DatasetSpec, RawFile
from data_prep.mnist import write_splits

PIXELS = 28 * 28
AMAT = {"train": "binarized_mnist_train.amat", "val": "binarized_mnist_valid.amat", "test": "binarized_mnist_test.amat"}
_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
# sha256 and sizes as recorded by TensorFlow Datasets (url_checksums/binarized_mnist.txt)
AMAT_SHA256 = {
    "binarized_mnist_train.amat": "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",  # 78,400,000 B
    "binarized_mnist_valid.amat": "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",  # 15,680,000 B
    "binarized_mnist_test.amat": "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",  # 15,680,000 B
}
AMAT_RAW = [RawFile(name, _URL + name, sha) for name, sha in AMAT_SHA256.items()]


def read_amat(path: Path) -> np.ndarray:
    """One .amat file -> uint8 (N, 28, 28) with pixels 0/255; a malformed line is an error naming it."""
    if not path.is_file():
        raise AttnError(f"{path} is missing (binarized MNIST needs {', '.join(AMAT.values())})")
    raw = path.read_bytes()
    width = 2 * PIXELS  # "d d d ... d\n": a digit and a separator per pixel
    if raw and len(raw) % width == 0:  # the official layout: parse without splitting 50,000 lines
        rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width)
        seps, digits = rows[:, 1::2], rows[:, 0::2]
        separators_ok = (seps[:, :-1] == ord(" ")).all() and (seps[:, -1] == ord("\n")).all()
        if separators_ok and (digits >= ord("0")).all() and (digits <= ord("1")).all():
            return ((digits - ord("0")) * 255).astype(np.uint8).reshape(-1, 28, 28)
    images = []
    for n, line in enumerate(raw.decode("ascii", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        values = line.split()
        if len(values) != PIXELS or any(v not in ("0", "1") for v in values):
            raise AttnError(
                f"{path.name}, line {n}: expected {PIXELS} values 0/1, got {len(values)} "
                f"({'non-binary values' if len(values) == PIXELS else 'wrong count'}); not a binarized MNIST file"
            )
        images.append(np.array(values, dtype=np.uint8) * 255)
    if not images:
        raise AttnError(f"{path} holds no images")
    return np.stack(images).reshape(-1, 28, 28)


@dataclass(frozen=True)
class BinarizedMnistConfig:
    pass


def build_binarized_mnist(cfg: BinarizedMnistConfig, source: Path | None, out: Path) -> dict[str, Any]:
    assert source is not None  # guaranteed by needs_source
    splits = {}
    for split, name in AMAT.items():
        x = read_amat(source / name)
        splits[split] = (x, np.zeros(len(x), dtype=np.int64))
    facts = write_splits(out, splits)
    return {
        **facts,
        "labelled": False,
        "note": "binarised MNIST (Salakhutdinov & Murray 2008; Larochelle's .amat files), pixels 0/255, no labels",
    }


DATASETS.add(
    "binarized-mnist",
    DatasetSpec(
        name="binarized-mnist",
        task="vision",
        summary="the fixed binarised MNIST of DRAW's Table 2 (Larochelle's .amat files; --source DIR or downloaded)",
        Config=BinarizedMnistConfig,
        build=build_binarized_mnist,
        default_name=lambda cfg: "binarized-mnist",
        raw_files=AMAT_RAW,
    ),
)
