"""scripts/pyspy_breakdown.py: py-spy samples of an NMT bench sorted by the kind of code they were in."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pyspy_breakdown.py"


def _script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("pyspy_breakdown", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RAW = """\
<module> (attn_cli/__main__.py:24);_fit (attn_cli/run.py:395);training_step (attn_cli/tasks/nmt.py:184);mkl_blas_avx512_sgemm_kernel_0 (libtorch_cpu.so) 6
<module> (attn_cli/__main__.py:24);_engine_run_backward (torch/autograd/graph.py:979);0x7f8297147b8f (?) 3
<module> (attn_cli/__main__.py:24);optimizer_step (lightning/core.py:1);at::native::(anonymous namespace)::add_kernel (libtorch_cpu.so) 2
<module> (attn_cli/__main__.py:24);training_step (attn_cli/tasks/nmt.py:184);FeedLSTM.step (attn_cli/nn/rnn.py:184) 1
<module> (attn_cli/__main__.py:24);training_step (attn_cli/tasks/nmt.py:184);torch::autograd::Engine::evaluate_function (libtorch_cpu.so) 1
<module> (attn_cli/__main__.py:24);_beam (attn_cli/nn/search.py:300);mkl_blas_avx512_sgemm_kernel_0 (libtorch_cpu.so) 4
<module> (attn_cli/__main__.py:24);load (attn_cli/data/text.py:10);read (libc.so.6) 9
"""


def test_samples_are_sorted_by_phase_and_kind_and_setup_is_left_out(tmp_path: Path) -> None:
    script = _script()
    raw = tmp_path / "bench.raw"
    raw.write_text(RAW)
    counts = script.breakdown(raw)
    train = counts["training updates (forward, backward, optimizer step)"]
    assert train == {
        "MKL GEMM/BLAS": 6,
        "oneDNN JIT code (no symbol)": 3,
        "ATen kernels": 2,
        "Python": 1,
        "torch dispatch and autograd": 1,
    }
    assert counts["beam-5 search"] == {"MKL GEMM/BLAS": 4}  # the data loading (9 samples) is in neither
    text = script.render(counts, ["a header"])
    assert text.startswith("# a header\n") and "  46.2%       6  MKL GEMM/BLAS" in text


def test_without_py_spy_it_says_so_in_one_line_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))  # no py-spy beside it
    assert script.main(["--recipe", "luong-global-general", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == "error: py-spy not found; pip install py-spy\n" and not (tmp_path / "out").exists()
