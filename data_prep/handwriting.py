"""Online handwriting for Graves (2013) §4-5: IAM-OnDB from its official files, and ``hershey-lines``, a
generated stand-in written with the Hershey single-stroke fonts.

Both write the format of :mod:`attn_cli.data.strokes` (pen offsets with end-of-stroke flags, normalised by
the training offsets' standard deviation per axis, as the paper does), so every handwriting recipe runs on
either.

* ``iam-ondb``: ``--source DIR`` holding ``lineStrokes-all.tar.gz`` and ``ascii-all.tar.gz`` (registration
  at fki.tic.heia-fr.ch; there is no public download, so offline without ``--source`` is the usual one-line
  error). Line ``NN`` of form ``a01-000u`` is the stroke file ``a01-000u-NN.xml`` and the ``NN``-th line of
  the form's ``CSR:`` transcription; a stroke file with no transcribed line is dropped and counted. When the
  task files of the writer-independent line recognition task (``trainset.txt``, ``testset_v.txt``,
  ``testset_t.txt``, ``testset_f.txt``) are in DIR too, the paper's split is used (§4.2: training set, test
  set and the larger validation set for training, the smaller validation set for validation, which the paper
  also reports on, so it is our test split as well); without them forms are split by a hash of their id (about 5 % validation, 5 % test) and
  the manifest says so.
* ``hershey-lines``: the English side of Multi30k (``--source ../shared/data/multi30k/task1``), sentences of
  at most 60 characters, each written ``copies`` times by seeded "writers": a Hershey cursive or script face
  with its own slant, scale, letter spacing, baseline drift, stroke jitter and pen speed (points resampled
  along each stroke at a varying step, so they are not evenly spaced). Deterministic in ``seed``.
* ``hershey-tiny``: the same generator on a built-in text, no source: the tiny recipes' data.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attn_cli.data.strokes import strokes_to_offsets, write_split
from attn_cli.errors import AttnError
from attn_cli.io import sha256_file
from data_prep.base import DATASETS, DatasetSpec

SPLITS = ("train", "val", "test")
FACES = ("cursive", "scriptc", "scripts")  # the Hershey cursive and script faces: the "writers"


# ---------------------------------------------------------------------------------------------
# shared: normalise and write


def _finish(out: Path, splits: dict[str, list[tuple[np.ndarray, dict[str, Any]]]]) -> dict[str, Any]:
    """Normalise offsets by the training set's std per axis, write every split, return the manifest facts."""
    train = np.concatenate([off[1:, :2] for off, _ in splits["train"]])
    scale = train.std(axis=0)
    alphabet = "".join(sorted({c for _, row in splits["train"] for c in str(row["text"])}))
    for split, lines in splits.items():
        normed = []
        for off, _ in lines:
            x = off.copy()
            x[:, :2] /= scale
            normed.append(x)
        write_split(out, split, normed, [row for _, row in lines])
    points = [len(off) for off, _ in splits["train"]]
    return {
        "counts": {s: len(v) for s, v in splits.items()},
        "scale": [float(scale[0]), float(scale[1])],
        "alphabet": alphabet,
        "mean_points": round(float(np.mean(points)), 1),
        "max_points": int(max(points)),
        "max_chars": max(len(str(row["text"])) for lines in splits.values() for _, row in lines),
    }


# ---------------------------------------------------------------------------------------------
# Hershey lines


@dataclass(frozen=True)
class HersheyConfig:
    max_chars: int = 60  # sentences longer than this are left out
    copies: int = 2  # writers per training sentence (validation and test: one each)
    step: float = 8.0  # mean pen step along a stroke, in font units (cap height ~21): ~8 points per character
    seed: int = 26
    limit: int = 0  # 0: every sentence; else the first N of each source file (quick checks)


TINY_TEXT = (
    "the quick brown fox", "jumps over a lazy dog", "a man rides a horse", "two dogs run", "more of national",
    "temperament", "a girl in a red hat", "people walk by", "a cat on a wall", "the sun is up",
    "children play ball", "a boat on water", "she reads a book", "men at work", "a dog jumps",
    "green trees", "a red car", "birds fly high", "a tall man", "snow on the hill",
    "a small boy runs", "two women talk", "a black dog", "the old bridge",
    "a woman sings", "dogs play", "a bird sits", "the man waves",
    "a child laughs", "boats sail", "a horse runs", "the girl smiles",
)  # fmt: skip


@dataclass(frozen=True)
class TinyConfig:
    step: float = 9.0  # coarse: few points per line, so CI trains in seconds
    seed: int = 5


class HersheyWriter:
    """Writes text with a Hershey face in one seeded writer style (all the style's draws come from ``rng``)."""

    def __init__(self, fonts: dict[str, Any], rng: np.random.Generator, step: float) -> None:
        self.face = FACES[int(rng.integers(len(FACES)))]
        self.font = fonts[self.face]
        self.slant = float(rng.uniform(-0.1, 0.45))  # shear: x += slant * height
        self.scale = float(rng.uniform(0.8, 1.25))
        self.aspect = float(rng.uniform(0.85, 1.15))
        self.spacing = float(rng.uniform(-1.0, 3.0))  # extra units between letters
        self.drift = (float(rng.uniform(-0.04, 0.04)), float(rng.uniform(0, 2.5)), float(rng.uniform(80, 300)))
        self.phase = float(rng.uniform(0, 2 * math.pi))
        self.jitter = float(rng.uniform(0.05, 0.35))
        self.step = step * float(rng.uniform(0.8, 1.25))
        self.speed = (float(rng.uniform(0.2, 0.6)), float(rng.uniform(15, 60)))  # step modulation depth, period
        self.rng = rng

    def write(self, text: str) -> list[np.ndarray]:
        self.font.render_options.spacing = self.spacing
        strokes = []
        walked = 0.0
        for poly in self.font.strokes_for_text(text):
            pts = np.asarray(poly, dtype=np.float64)  # (n, 2), font units, y down
            res, walked = self._resample(pts, walked)
            x, y = res[:, 0] * self.aspect, -res[:, 1]  # y up
            x = x + self.slant * y
            slope, amp, period = self.drift
            y = y + slope * x + amp * np.sin(2 * math.pi * x / period + self.phase)
            res = np.stack([x, y], 1) * self.scale
            strokes.append(res + self.rng.normal(0, self.jitter, res.shape))
        return strokes

    def _resample(self, pts: np.ndarray, walked: float) -> tuple[np.ndarray, float]:
        """Points along the polyline at a step that rises and falls with the distance walked (pen speed)."""
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(seg)])
        depth, period = self.speed
        at = [0.0]
        while True:
            s = walked + at[-1]
            nxt = at[-1] + self.step * (1 + depth * math.sin(2 * math.pi * s / period + self.phase))
            if nxt >= arc[-1]:
                break
            at.append(nxt)
        if arc[-1] > 0:
            at.append(float(arc[-1]))
        xs = np.interp(at, arc, pts[:, 0])
        ys = np.interp(at, arc, pts[:, 1])
        return np.stack([xs, ys], 1), walked + float(arc[-1])


def _fonts() -> dict[str, Any]:
    try:
        from HersheyFonts import HersheyFonts
    except ImportError as err:
        raise AttnError("hershey-lines needs the hershey-fonts package; pip install hershey-fonts") from err
    fonts = {}
    for face in FACES:
        font = HersheyFonts()
        font.load_default_font(face)
        fonts[face] = font
    return fonts


def _writable(fonts: dict[str, Any], text: str) -> bool:
    """Every non-space character has a glyph in every face (the fonts silently skip unknown characters)."""
    return all(c == " " or len(list(f.glyphs_for_text(c))) == 1 for f in fonts.values() for c in set(text))


def write_lines(
    texts: dict[str, Sequence[tuple[str, str]]], copies: int, step: float, seed: int
) -> tuple[dict[str, list[tuple[np.ndarray, dict[str, Any]]]], int]:
    """Offsets and rows of every split (train lines written ``copies`` times), and how many texts were left
    out for a character no face can write. Writer ``k`` of line ``i`` of a split draws from
    ``(seed, split, i, k)`` alone, so a line does not change when others are added or removed."""
    fonts = _fonts()
    out: dict[str, list[tuple[np.ndarray, dict[str, Any]]]] = {}
    dropped = 0
    for split_no, (split, lines) in enumerate(texts.items()):
        rows = []
        for i, (text, source) in enumerate(lines):
            if not _writable(fonts, text):
                dropped += 1
                continue
            for k in range(copies if split == "train" else 1):
                rng = np.random.default_rng([seed, split_no, i, k])
                writer = HersheyWriter(fonts, rng, step)
                off = strokes_to_offsets(writer.write(text))
                rows.append((off, {"text": text, "writer": f"{writer.face}-{split_no}-{i}-{k}", "source": source}))
        out[split] = rows
    return out, dropped


def _multi30k(source: Path, cfg: HersheyConfig) -> dict[str, list[tuple[str, str]]]:
    files = {"train": "train.en.gz", "val": "val.en.gz", "test": "test_2016_flickr.en.gz"}
    texts = {}
    for split, name in files.items():
        path = next((p for p in (source / name, source / "raw" / name) if p.is_file()), None)
        if path is None:
            raise AttnError(
                f"{source} has no {name}; point --source at Multi30k's task1 folder (../shared/data/multi30k/task1)"
            )
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            lines = [line.strip() for line in fh]
        if cfg.limit:
            lines = lines[: cfg.limit]
        texts[split] = [(t, f"{name}:{i + 1}") for i, t in enumerate(lines) if 0 < len(t) <= cfg.max_chars]
    return texts


def build_hershey(cfg: HersheyConfig, source: Path | None, out: Path) -> dict[str, Any]:
    if source is None or not source.is_dir():
        raise AttnError(
            "hershey-lines writes Multi30k's English sentences: pass --source ../shared/data/multi30k/task1"
        )
    splits, dropped = write_lines(_multi30k(source, cfg), cfg.copies, cfg.step, cfg.seed)
    facts = _finish(out, splits)
    return {**facts, "dropped_unwritable": dropped, "writers": list(FACES), "note": "generated with hershey-fonts"}


def build_tiny(cfg: TinyConfig, source: Path | None, out: Path) -> dict[str, Any]:
    lines = [(t, f"builtin:{i}") for i, t in enumerate(TINY_TEXT)]
    texts = {"train": lines[:24], "val": lines[24:28], "test": lines[28:]}
    splits, _ = write_lines(texts, 1, cfg.step, cfg.seed)
    return {**_finish(out, splits), "writers": list(FACES), "note": "generated from a built-in text"}


# ---------------------------------------------------------------------------------------------
# IAM-OnDB


@dataclass(frozen=True)
class IamConfig:
    val_fraction: float = 0.05  # only without the official task files: forms hashed into validation
    test_fraction: float = 0.05


IAM_FILES = ("lineStrokes-all.tar.gz", "ascii-all.tar.gz")
TASK_FILES = ("trainset.txt", "testset_v.txt", "testset_t.txt", "testset_f.txt")


def _transcriptions(tar: tarfile.TarFile) -> dict[str, list[str]]:
    """Form id (``a01-000u``) -> its transcribed lines (the ``CSR:`` section of ``ascii/.../a01-000u.txt``)."""
    forms = {}
    for member in tar.getmembers():
        if not member.isfile() or not member.name.endswith(".txt"):
            continue
        fh = tar.extractfile(member)
        if fh is None:
            continue
        text = fh.read().decode("latin-1")
        _, _, csr = text.partition("CSR:")
        forms[Path(member.name).stem] = [line.strip() for line in csr.strip().splitlines()]
    return forms


def parse_strokes(xml: bytes) -> list[np.ndarray]:
    """A ``lineStrokes`` XML file -> strokes of absolute points, y up (the whiteboard's y points down)."""
    root = ET.fromstring(xml)
    strokes = []
    for stroke in root.iter("Stroke"):
        pts = [(float(p.get("x", 0)), -float(p.get("y", 0))) for p in stroke.iter("Point")]
        if pts:
            strokes.append(np.asarray(pts))
    return strokes


def _task_split(source: Path) -> dict[str, str] | None:
    """Form id -> split from the official task files (§4.2), or None when they are not in ``source``."""
    paths = [source / name for name in TASK_FILES]
    if not all(p.is_file() for p in paths):
        return None
    sets = {
        name: {line.strip() for line in p.read_text().splitlines() if line.strip()}
        for name, p in zip(TASK_FILES, paths)
    }
    larger, smaller = sorted(("testset_v.txt", "testset_t.txt"), key=lambda n: -len(sets[n]))
    split = {f: "train" for n in ("trainset.txt", "testset_f.txt", larger) for f in sets[n]}
    split.update({f: "val" for f in sets[smaller]})
    return split


def _hashed(form: str, cfg: IamConfig) -> str:
    u = int(hashlib.sha256(form.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if u < cfg.val_fraction else "test" if u < cfg.val_fraction + cfg.test_fraction else "train"


def build_iam(cfg: IamConfig, source: Path | None, out: Path) -> dict[str, Any]:
    if source is None or not source.is_dir():
        raise AttnError("iam-ondb needs --source DIR holding lineStrokes-all.tar.gz and ascii-all.tar.gz")
    missing = [n for n in IAM_FILES if not (source / n).is_file()]
    if missing:
        raise AttnError(f"{source} has no {missing[0]}; download IAM-OnDB's official files (registration) into it")
    official = _task_split(source)
    with tarfile.open(source / "ascii-all.tar.gz") as tar:
        texts = _transcriptions(tar)
    splits: dict[str, list[tuple[np.ndarray, dict[str, Any]]]] = {s: [] for s in SPLITS}
    dropped = {"no_transcription": 0, "no_points": 0, "not_in_task_files": 0}
    with tarfile.open(source / "lineStrokes-all.tar.gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            found = re.fullmatch(r"(.+)-(\d+)\.xml", Path(member.name).name)
            if not member.isfile() or found is None:
                continue
            form, number = found.group(1), int(found.group(2))
            lines = texts.get(form, [])
            text = lines[number - 1] if 0 < number <= len(lines) else ""
            if not text:
                dropped["no_transcription"] += 1
                continue
            fh = tar.extractfile(member)
            strokes = parse_strokes(fh.read()) if fh is not None else []
            if sum(len(s) for s in strokes) < 2:
                dropped["no_points"] += 1
                continue
            split = official.get(form) if official is not None else _hashed(form, cfg)
            if split is None:  # a form the task files do not list
                dropped["not_in_task_files"] += 1
                continue
            row = {"text": text, "writer": form, "source": member.name}
            splits[split].append((strokes_to_offsets(strokes), row))
    if official is not None:  # the paper early-stops on, and reports, the smaller validation set: it is both
        splits["test"] = list(splits["val"])
    if not splits["train"]:
        raise AttnError(f"{source} holds no transcribed lines; are these IAM-OnDB's lineStrokes and ascii archives?")
    facts = _finish(out, splits)
    return {
        **facts,
        "dropped": dropped,
        "split": "paper (task files)" if official else "hashed form ids (task files not in --source)",
        "sources": {n: sha256_file(source / n) for n in IAM_FILES},
    }


DATASETS.add(
    "hershey-lines",
    DatasetSpec(
        name="hershey-lines",
        task="handwriting",
        summary="Multi30k English sentences (<= 60 chars) written in Hershey cursive/script faces by seeded writers",
        Config=HersheyConfig,
        build=build_hershey,
        default_name=lambda cfg: "hershey-lines",
    ),
)
DATASETS.add(
    "hershey-tiny",
    DatasetSpec(
        name="hershey-tiny",
        task="handwriting",
        summary="32 short built-in lines in Hershey script faces (the tiny recipes' data; no source)",
        Config=TinyConfig,
        build=build_tiny,
        default_name=lambda cfg: "hershey-tiny",
        needs_source=False,
    ),
)
DATASETS.add(
    "iam-ondb",
    DatasetSpec(
        name="iam-ondb",
        task="handwriting",
        summary="IAM On-Line Handwriting Database lines (official lineStrokes-all / ascii-all archives; registration)",
        Config=IamConfig,
        build=build_iam,
        default_name=lambda cfg: "iam-ondb",
    ),
)
