"""Files someone sends you run no code, and what we write keeps the user's umask (issue 24).

Every checkpoint and prepared tensor file is unpickled weights-only; a file whose pickle
names a callable (a ``__reduce__`` payload) is refused with one line and exit 2, and the
payload never runs: here it would create a marker file. Written files and prepared
dataset folders get 0666/0777 less the umask, as ``open``/``mkdir`` would give them.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from attn_cli import run
from attn_cli.io import atomic_dir, atomic_path, atomic_write
from tests.conftest import run_cli
from tests.test_cli import one_line_error


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the file appears iff the pickle's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _malicious_checkpoint(good: Path, out: Path, marker: Path) -> Path:
    """A real attn checkpoint with the payload tucked inside its metadata."""
    ckpt = torch.load(good, weights_only=True)
    ckpt["attn"]["note"] = Payload(marker)
    torch.save(ckpt, out)
    return out


@pytest.fixture(scope="module")
def trained(generated_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    summary = run.train("nmt", "tiny/luong-global-general", runs_dir=runs, data_dir=generated_data, progress=False)
    return Path(summary["run_dir"])


def test_the_payload_is_real(trained: Path, tmp_path: Path) -> None:
    """The control: a full unpickle of the planted file does run the payload."""
    marker = tmp_path / "control-marker"
    evil = _malicious_checkpoint(trained / "checkpoints" / "best.ckpt", tmp_path / "evil.ckpt", marker)
    torch.load(evil, weights_only=False)
    assert marker.exists()


def test_eval_refuses_a_checkpoint_that_would_run_code(trained: Path, generated_data: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    evil = _malicious_checkpoint(trained / "checkpoints" / "best.ckpt", tmp_path / "evil.ckpt", marker)
    base = ("--data-dir", str(generated_data))
    code, _, err = run_cli(*base, "eval", "nmt", "--run", str(trained), "--checkpoint", str(evil))
    one_line_error(code, err, "holds pickled objects other than weights (io.open)")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x80\x02garbage")  # a damaged pickle is damage, not a refusal
    code, _, err = run_cli(*base, "eval", "nmt", "--run", str(trained), "--checkpoint", str(garbage))
    one_line_error(code, err, "is corrupt or truncated")
    code, _, err = run_cli(*base, "visualize", "nmt", "--run", str(trained), "--checkpoint", str(evil))
    one_line_error(code, err, "refused")
    code, _, err = run_cli(
        "average", str(trained / "checkpoints" / "best.ckpt"), str(evil), "--out", str(tmp_path / "a")
    )
    one_line_error(code, err, "refused")
    assert not marker.exists() and not (tmp_path / "a").exists()


def test_resume_refuses_a_checkpoint_that_would_run_code(trained: Path, generated_data: Path, tmp_path: Path) -> None:
    """Lightning's own resume load is never reached with such a file: the run is checked first, weights-only."""
    run_dir = tmp_path / "killed"
    shutil.copytree(trained, run_dir)
    (run_dir / "train_done.json").unlink()  # as a killed run leaves it
    marker = tmp_path / "marker"
    last = run_dir / "checkpoints" / "last.ckpt"
    _malicious_checkpoint(last, last, marker)
    code, _, err = run_cli("--data-dir", str(generated_data), "train", "nmt", "--resume", str(run_dir))
    one_line_error(code, err, "refused")
    assert not marker.exists()


def test_prepared_tensor_files_load_weights_only(generated_data: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(generated_data / "ntm-copy", data / "ntm-copy")
    sets = torch.load(data / "ntm-copy" / "eval_sets.pt", weights_only=True)  # plain tensors: loads as is
    marker = tmp_path / "marker"
    sets["val"][0]["note"] = Payload(marker)
    torch.save(sets, data / "ntm-copy" / "eval_sets.pt")
    code, _, err = run_cli("--data-dir", str(data), "train", "memory", "--recipe", "tiny/ntm")
    one_line_error(code, err, "holds more than tensors")
    assert not marker.exists()


def test_pretrained_encoder_weights_load_weights_only(tmp_path: Path) -> None:
    from attn_cli.errors import AttnError
    from attn_cli.pretrained import trunk_weights

    marker = tmp_path / "marker"
    torch.save({"state_dict": {}, "note": Payload(marker)}, tmp_path / "clf.ckpt")
    with pytest.raises(AttnError, match="holds more than weights"):
        trunk_weights(tmp_path / "clf.ckpt")
    assert not marker.exists()


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_written_files_and_folders_respect_the_umask(mask: int, umask: None, tmp_path: Path) -> None:
    os.umask(mask)
    assert _mode(atomic_write(tmp_path / "a.json", "{}")) == 0o666 & ~mask
    with atomic_path(tmp_path / "b.ckpt") as tmp:
        tmp.write_bytes(b"x")
    assert _mode(tmp_path / "b.ckpt") == 0o666 & ~mask
    with atomic_dir(tmp_path / "c") as tmp:
        (tmp / "f").write_text("x")
    assert _mode(tmp_path / "c") == 0o777 & ~mask
    code, _, err = run_cli("--data-dir", str(tmp_path / "data"), "prepare", "toy-reorder")
    assert code == 0, err
    prepared = tmp_path / "data" / "toy-reorder"
    assert _mode(prepared) == 0o777 & ~mask
    files = [p for p in prepared.rglob("*") if p.is_file()]
    assert files and {_mode(p) for p in files} == {0o666 & ~mask}


def test_a_training_writes_with_the_umask(umask: None, generated_data: Path, tmp_path: Path) -> None:
    os.umask(0o027)
    summary = run.train(
        "nmt", "tiny/seq2seq", runs_dir=tmp_path, data_dir=generated_data, progress=False, overrides=["train.threads=1"]
    )
    run_dir = Path(summary["run_dir"])
    for name in ("recipe.yaml", "run.json", "train_done.json", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert _mode(run_dir / name) == 0o640, name
