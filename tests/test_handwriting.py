"""The handwriting family (Graves 2013): the window equations, the mixture density, biased sampling, the stop
rule and the clipping hooks on hand-built cases; the data preparations; `attn generate` and its errors."""

from __future__ import annotations

import io
import json
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from attn_cli.attention.window import SoftWindow, window_past_end, window_weights
from attn_cli.data.strokes import offsets_to_strokes, read_split, strokes_to_offsets
from attn_cli.models.graves import GravesPrediction, GravesSynthesis, mixture, mixture_nll
from tests.conftest import run_cli

ALPHABET = "abcdefg "


# ---------------------------------------------------------------------------------------------
# the window (eqs. 46-51)


def test_window_weights_match_a_direct_computation() -> None:
    alpha, beta, kappa = torch.rand(3, 5) + 0.1, torch.rand(3, 5) + 0.1, torch.rand(3, 5) * 7
    phi = window_weights(alpha, beta, kappa, 7)  # (B, U)
    assert phi.shape == (3, 7)
    for b in range(3):
        for u in range(1, 8):
            direct = sum(
                float(alpha[b, k]) * math.exp(-float(beta[b, k]) * (float(kappa[b, k]) - u) ** 2) for k in range(5)
            )
            assert float(phi[b, u - 1]) == pytest.approx(direct, rel=1e-5)


def test_window_moves_forward_only_and_reads_the_weighted_characters() -> None:
    torch.manual_seed(0)
    win = SoftWindow(hidden=11, bumps=5)
    chars = torch.nn.functional.one_hot(torch.randint(0, 3, (2, 7)), 3).float()  # (B, U, V)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 4:] = False
    kappa = torch.zeros(2, 5)
    for _ in range(13):
        w, phi, new = win(torch.randn(2, 11) * 3, kappa, chars, mask)
        assert (new > kappa).all()  # κₜ = κₜ₋₁ + exp(κ̂ₜ): strictly forward
        assert (phi[1, 4:] == 0).all()  # padding is never read
        assert torch.allclose(w, torch.einsum("bu,buv->bv", phi, chars))  # eq. (47)
        kappa = new


def test_window_starts_at_the_pace_of_the_pen_not_one_character_a_point() -> None:
    torch.manual_seed(3)
    cfg = GravesSynthesis.Config(layers=2, hidden=16, mixtures=3, window=5, window_step=0.125)
    model = GravesSynthesis(cfg, alphabet=ALPHABET)
    chars = torch.randint(2, 2 + len(ALPHABET), (3, 7))
    out = model(torch.randn(3, 24, 3) * 0.5, chars, torch.full((3,), 7))
    kappa = out["kappa"][:, -1]  # (B, K) after 24 points: about 24 / 8 = 3 characters, not 24
    assert ((kappa > 1.5) & (kappa < 6)).all(), kappa
    assert out["phi"][:, -1].argmax(-1).tolist() == [2, 2, 2]  # the bumps sit on character 3 (0-based 2)


def test_window_gradients_pass_a_numerical_check() -> None:
    torch.manual_seed(1)
    win = SoftWindow(hidden=5, bumps=3).double()
    chars = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 7)), 4).double()
    mask = torch.ones(2, 7, dtype=torch.bool)

    def fn(h: torch.Tensor, kappa: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return win(h, kappa, chars, mask)

    h = torch.randn(2, 5, dtype=torch.double, requires_grad=True)
    kappa = (torch.rand(2, 3, dtype=torch.double) * 5).requires_grad_()
    assert torch.autograd.gradcheck(fn, (h, kappa))


def test_stop_rule_fires_once_the_window_passes_the_last_character() -> None:
    ones = torch.ones(3, 1)
    lengths = torch.tensor([5, 5, 5])
    kappa = torch.tensor([[3.0], [5.4], [6.2]])  # on character 3; near the last; past it (U + 1 = 6)
    assert window_past_end(ones, ones, kappa, lengths).tolist() == [False, False, True]
    # a shorter text in the same batch is judged against its own length
    assert window_past_end(ones[:2], ones[:2], torch.tensor([[4.0], [4.0]]), torch.tensor([3, 7])).tolist() == [
        True,
        False,
    ]


def test_sampling_stops_when_the_window_runs_off_the_text() -> None:
    torch.manual_seed(0)
    cfg = GravesSynthesis.Config(layers=2, hidden=7, mixtures=3, window=5)
    model = GravesSynthesis(cfg, alphabet=ALPHABET).eval()
    with torch.no_grad():
        model.window.proj.weight.zero_()  # type: ignore[union-attr]
        model.window.proj.bias.copy_(torch.tensor([0.0] * 10 + [math.log(0.5)] * 5))  # type: ignore[union-attr]
    chars = torch.tensor([2, 3, 4])  # 3 characters; κ advances 0.5 a step: past 4 after about 8 steps
    out = model.sample(chars, steps=100, generator=torch.Generator().manual_seed(0))
    assert 6 <= len(out["offsets"]) <= 10 and out["phi"].shape == (len(out["offsets"]), 3)


# ---------------------------------------------------------------------------------------------
# the mixture density output (eqs. 15-26)


def test_mixture_nll_matches_a_brute_force_density() -> None:
    torch.manual_seed(2)
    m = 3
    y = torch.randn(4, 1 + 6 * m, dtype=torch.double)
    target = torch.cat([torch.randn(4, 2, dtype=torch.double), torch.tensor([[1.0], [0.0], [1.0], [0.0]])], 1)
    got = mixture_nll(y, target)
    for i in range(4):
        e = 1 / (1 + math.exp(float(y[i, 0])))  # eq. (18)
        pi = np.exp(y[i, 1 : 1 + m].numpy()) / np.exp(y[i, 1 : 1 + m].numpy()).sum()
        mu = y[i, 1 + m : 1 + 3 * m].numpy().reshape(m, 2)
        sigma = np.exp(y[i, 1 + 3 * m : 1 + 5 * m].numpy().reshape(m, 2))
        rho = np.tanh(y[i, 1 + 5 * m :].numpy())
        x = target[i, :2].numpy()
        density = 0.0
        for j in range(m):
            cov = np.array(
                [
                    [sigma[j, 0] ** 2, rho[j] * sigma[j, 0] * sigma[j, 1]],
                    [rho[j] * sigma[j, 0] * sigma[j, 1], sigma[j, 1] ** 2],
                ]
            )
            d = x - mu[j]
            density += (
                pi[j] * math.exp(-0.5 * d @ np.linalg.inv(cov) @ d) / (2 * math.pi * math.sqrt(np.linalg.det(cov)))
            )
        pen = e if float(target[i, 2]) == 1 else 1 - e
        assert float(got[i]) == pytest.approx(-math.log(density) - math.log(pen), rel=1e-6)


def test_bias_sharpens_the_mixture_weights_and_narrows_the_gaussians() -> None:
    torch.manual_seed(3)
    y = torch.randn(2, 1 + 6 * 4)
    plain, biased = mixture(y), mixture(y, bias=2.0)
    assert torch.allclose(biased.log_sigma, plain.log_sigma - 2.0)  # σ = exp(σ̂ − b), eq. (61)
    assert torch.allclose(biased.log_pi, torch.log_softmax(y[:, 1:5] * 3.0, -1))  # π ∝ exp(π̂ (1 + b)), eq. (62)
    assert torch.allclose(plain.log_pi, torch.log_softmax(y[:, 1:5], -1))
    assert (biased.log_pi.exp().max(-1).values > plain.log_pi.exp().max(-1).values).all()
    assert torch.equal(biased.mu, plain.mu) and torch.equal(biased.rho, plain.rho)


def test_derivatives_are_clipped_elementwise_at_the_outputs() -> None:
    """The mixture outputs' derivatives are bounded by ``clip_output`` (Graves §4.2: [−100, 100])."""
    torch.manual_seed(4)
    grads = {}
    for bound in (100.0, 0.0):
        cfg = GravesPrediction.Config(layers=2, hidden=5, mixtures=3, clip_output=bound)
        model = GravesPrediction(cfg, alphabet=ALPHABET)
        out = model(torch.randn(3, 7, 3), torch.zeros(3, 1, dtype=torch.long), torch.zeros(3, dtype=torch.long))
        (1e4 * out["y"]).sum().backward()
        grads[bound] = model.out.bias.grad.clone()  # d/d bias = Σ over (B, T) of dL/dy
    assert torch.allclose(grads[100.0], torch.full_like(grads[100.0], 100.0 * 3 * 7))
    assert torch.allclose(grads[0.0], torch.full_like(grads[0.0], 1e4 * 3 * 7))


@pytest.mark.parametrize("cls", [GravesPrediction, GravesSynthesis])
def test_stepping_computes_what_the_sequence_forward_does(cls: type) -> None:
    torch.manual_seed(5)
    model = cls(cls.Config(layers=3, hidden=7, mixtures=3), alphabet=ALPHABET).eval()
    x = torch.randn(2, 11, 3)
    chars = torch.tensor([[2, 3, 4, 9, 5], [6, 7, 2, 0, 0]])
    with torch.no_grad():
        full = model(x, chars, torch.tensor([5, 3]))
        state = model.init_state(2, x.device)
        onehot, mask = model._onehot(chars)
        for t in range(11):
            y, state, _ = model.step(x[:, t], state, onehot, mask)
            assert torch.allclose(y, full["y"][:, t], atol=1e-5)


# ---------------------------------------------------------------------------------------------
# data


def test_offsets_round_trip_with_pen_lifts() -> None:
    strokes = [np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 2.0]]), np.array([[5.0, 1.0], [6.0, 0.0]])]
    off = strokes_to_offsets(strokes)
    assert off[:, 2].tolist() == [0, 0, 1, 0, 1]  # the pen lifts after each stroke's last point
    assert off[0, :2].tolist() == [0, 0] and off[3, :2].tolist() == [2.0, -1.0]
    back = offsets_to_strokes(off)
    assert len(back) == 2 and all(np.allclose(a, b) for a, b in zip(back, strokes))


def test_hershey_tiny_is_deterministic_and_normalised(dirs: dict[str, Path], tmp_path: Path) -> None:
    assert run_cli("prepare", "handwriting", "--dataset", "hershey-tiny")[0] == 0
    assert run_cli("--data-dir", str(tmp_path / "again"), "prepare", "hershey-tiny")[0] == 0
    first = json.loads((dirs["data"] / "hershey-tiny" / "manifest.json").read_text())
    second = json.loads((tmp_path / "again" / "hershey-tiny" / "manifest.json").read_text())
    assert first["files"] == second["files"] and first["counts"] == {"train": 24, "val": 4, "test": 4}
    points, index = read_split(dirs["data"] / "hershey-tiny", "train")
    offsets = np.concatenate([points[index[i] + 1 : index[i + 1], :2] for i in range(len(index) - 1)])
    assert np.allclose(offsets.std(0), 1.0, atol=1e-3)  # divided by the training offsets' std (§4.1)
    assert all(points[index[i + 1] - 1, 2] == 1 for i in range(len(index) - 1))  # every line ends lifting the pen


@pytest.mark.data
def test_hershey_lines_writes_multi30k_sentences(shared_data: Path, dirs: dict[str, Path]) -> None:
    src = shared_data / "multi30k" / "task1"
    code, _, err = run_cli("prepare", "hershey-lines", "--source", str(src), "--set", "limit=40")
    assert code == 0, err
    manifest = json.loads((dirs["data"] / "hershey-lines" / "manifest.json").read_text())
    rows = [json.loads(line) for line in (dirs["data"] / "hershey-lines" / "train.jsonl").read_text().splitlines()]
    assert all(len(r["text"]) <= 60 for r in rows) and manifest["counts"]["train"] == len(rows)
    assert len({r["writer"].split("-")[0] for r in rows}) > 1  # several faces write
    assert rows[0]["text"] == rows[1]["text"] and rows[0]["writer"] != rows[1]["writer"]  # 2 writers a sentence


def _iam_fixture(root: Path, *, task_files: bool) -> None:
    """Two forms in IAM-OnDB's archive layout: form a01-000u with 2 transcribed lines and a third stroke file
    with no transcription; form b02-001 with one line."""

    def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    def xml(points: list[list[tuple[int, int]]]) -> bytes:
        strokes = "".join(
            "<Stroke>" + "".join(f'<Point x="{x}" y="{y}" time="0"/>' for x, y in s) + "</Stroke>" for s in points
        )
        return f"<WhiteboardCaptureSession><StrokeSet>{strokes}</StrokeSet></WhiteboardCaptureSession>".encode()

    line = [[(100, 500), (110, 490), (125, 480)], [(140, 500), (150, 495)]]
    with tarfile.open(root / "lineStrokes-all.tar.gz", "w:gz") as tar:
        for n in (1, 2, 3):
            add(tar, f"lineStrokes/a01/a01-000/a01-000u-0{n}.xml", xml(line))
        add(tar, "lineStrokes/b02/b02-001/b02-001-01.xml", xml(line))
    with tarfile.open(root / "ascii-all.tar.gz", "w:gz") as tar:
        add(tar, "ascii/a01/a01-000/a01-000u.txt", b"OCR:\n\nA MOVE to stop\n\nCSR:\n\nA MOVE to stop\nMr. Gaitskell\n")
        add(tar, "ascii/b02/b02-001/b02-001.txt", b"OCR:\n\nhello\n\nCSR:\n\nhello there\n")
    if task_files:
        # testset_v lists more forms than testset_t: the larger trains, the smaller validates (§4.2)
        for name, forms in (("trainset.txt", "a01-000u"), ("testset_v.txt", "c03-002\nc03-003"),
                            ("testset_t.txt", "b02-001"), ("testset_f.txt", "")):  # fmt: skip
            (root / name).write_text(forms + "\n")


@pytest.mark.parametrize("task_files", [True, False])
def test_iam_ondb_preparation_on_its_archive_layout(dirs: dict[str, Path], tmp_path: Path, task_files: bool) -> None:
    src = tmp_path / "iam"
    src.mkdir()
    _iam_fixture(src, task_files=task_files)
    code, _, err = run_cli("prepare", "handwriting", "--dataset", "iam-ondb", "--source", str(src))
    assert code == 0, err
    out = dirs["data"] / "iam-ondb"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dropped"]["no_transcription"] == 1  # a01-000u-03 has no CSR line
    assert set(manifest["sources"]) == {"lineStrokes-all.tar.gz", "ascii-all.tar.gz"}
    texts = {
        s: [json.loads(x)["text"] for x in (out / f"{s}.jsonl").read_text().splitlines()]
        for s in ("train", "val", "test")
    }
    assert sorted({t for v in texts.values() for t in v}) == ["A MOVE to stop", "Mr. Gaitskell", "hello there"]
    if task_files:  # the paper's split: trainset for training, the smaller validation set for validation
        assert texts["train"] == ["A MOVE to stop", "Mr. Gaitskell"] and texts["val"] == ["hello there"]
        assert texts["test"] == texts["val"]  # the paper reports on the validation set it early-stops on
        assert manifest["split"].startswith("paper")
    else:
        assert manifest["split"].startswith("hashed")
    points, index = read_split(out, "train")
    assert points[index[0] + 1, 1] > 0  # the whiteboard's y points down; ours up: the pen moved up
    assert points[index[1] - 1, 2] == 1 and points[index[0] + 2, 2] == 1  # pen lifts after each stroke


def test_iam_ondb_needs_its_official_files(dirs: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = run_cli("prepare", "handwriting", "--dataset", "iam-ondb")
    assert code == 2 and "--source" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli("prepare", "iam-ondb", "--source", str(tmp_path / "empty"))
    assert code == 2 and "lineStrokes-all.tar.gz" in err
    code, _, err = run_cli("prepare", "hershey-lines", "--source", str(tmp_path / "empty"))
    assert code == 2 and "train.en.gz" in err
    assert not (dirs["data"] / "iam-ondb").exists() and not (dirs["data"] / "hershey-lines").exists()


# ---------------------------------------------------------------------------------------------
# end to end: train, evaluate, draw, generate


def test_tiny_synthesis_run_generates_and_refuses_bad_requests(dirs: dict[str, Path]) -> None:
    assert run_cli("prepare", "hershey-tiny")[0] == 0
    code, _, err = run_cli("train", "handwriting", "--recipe", "tiny/graves-synthesis", "--set", "data.max_chars=3")
    assert code == 2 and "data.max_chars=3" in err
    for bad in (
        "model.mixtures=0",
        "model.window=0",
        "model.window_step=0",
        "model.clip_lstm=-1",
        "data.max_points=-5",
    ):
        code, _, err = run_cli("train", "handwriting", "--recipe", "tiny/graves-synthesis", "--set", bad)
        assert code == 2 and bad.split("=")[0] in err and len(err.strip().splitlines()) == 1, (bad, err)
    code, _, err = run_cli("train", "handwriting", "--recipe", "tiny/graves-synthesis", "--set", "train.threads=1")
    assert code == 0, err
    run_dir = next(p.parent for p in (dirs["runs"] / "handwriting").rglob("train_done.json"))
    code, out, err = run_cli("eval", "handwriting", "--run", str(run_dir))
    assert code == 0, err
    metrics = json.loads((run_dir / "eval" / "test" / "metrics.json").read_text())["metrics"]
    assert {"nll", "sse", "nll_per_point"} <= set(metrics)

    gen = ["generate", "handwriting", "--run", str(run_dir)]
    code, out, err = run_cli(
        *gen, "--text", "a bad egg", "--bias", "0.5", "--seed", "3", "--out", str(dirs["runs"] / "x")
    )
    assert code == 0, err
    svg = (dirs["runs"] / "x.svg").read_text()
    assert svg.startswith("<svg") and "<polyline" in svg and (dirs["runs"] / "x.png").stat().st_size > 0
    run_cli(*gen, "--text", "a bad egg", "--bias", "0.5", "--seed", "3", "--out", str(dirs["runs"] / "y"))
    assert (dirs["runs"] / "y.svg").read_text() == svg  # seeded: the same line again
    code, out, err = run_cli(*gen, "--text", "a fed cab", "--prime-run-line", "1")
    assert code == 0, err and "primed1" in out

    code, _, err = run_cli(*gen, "--text", "Zebra!")
    assert code == 2 and "'!Z'" in err and "alphabet ' abcdefghijklmnopqrstuvwxyz'" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli(*gen)
    assert code == 2 and "--text" in err
    code, _, err = run_cli(*gen, "--text", "a", "--bias", "-1")
    assert code == 2 and "--bias" in err
    code, _, err = run_cli(*gen, "--text", "a", "--prime-run-line", "99")
    assert code == 2 and "lines 0..3" in err
    code, _, err = run_cli("generate", "speech", "--run", str(run_dir), "--text", "a")
    assert code == 2 and "handwriting only" in err

    code, out, err = run_cli("visualize", "handwriting", "--run", str(run_dir), "--n", "2")
    assert code == 0, err
    drawn = sorted(p.name for p in (run_dir / "viz").glob("*.png"))
    assert drawn == ["biases.png", "primed-test.png", "window-test-0.png", "window-test-1.png"]


def test_prediction_runs_scribble_without_a_text(dirs: dict[str, Path]) -> None:
    assert run_cli("prepare", "hershey-tiny")[0] == 0
    code, _, err = run_cli("train", "handwriting", "--recipe", "tiny/graves-prediction", "--set", "train.threads=1")
    assert code == 0, err
    run_dir = next(p.parent for p in (dirs["runs"] / "handwriting").rglob("train_done.json"))
    code, _, err = run_cli("generate", "handwriting", "--run", str(run_dir), "--text", "a dog")
    assert code == 2 and "prediction run" in err
    code, out, err = run_cli("generate", "handwriting", "--run", str(run_dir), "--bias", "1")
    assert code == 0, err and out.strip().endswith(".png")
    code, out, err = run_cli("visualize", "handwriting", "--run", str(run_dir))
    assert code == 0 and (run_dir / "viz" / "samples.png").is_file()


def test_graves_table_lays_out_both_papers_tables() -> None:
    code, out, _ = run_cli("table", "graves", "--format", "markdown")
    assert code == 0
    assert "-1041.0" in out and "-1096.9" in out and "Synthesis network" in out and "hershey-lines" in out


def test_unknown_characters_are_encoded_apart_from_padding() -> None:
    from attn_cli.data.handwriting import PAD, UNKNOWN, encode

    assert encode("ab?", "ab") == [2, 3, UNKNOWN] and PAD not in encode("ab?", "ab")


RECORDS = sorted((Path(__file__).resolve().parent.parent / "results" / "handwriting").rglob("result.json"))


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: p.parent.name)
def test_recorded_scores_recompute_from_the_saved_predictions(path: Path) -> None:
    from attn_cli.tables.base import record_predictions
    from attn_cli.tasks.handwriting import HandwritingModule

    rows = record_predictions(path)
    recorded = {k: v["value"] for k, v in json.loads(path.read_text())["metrics"].items()}
    recomputed = HandwritingModule.score(None, rows, "test")  # type: ignore[arg-type]  # score reads only rows
    assert recomputed == pytest.approx(recorded, rel=1e-9)


def test_the_recorded_synthesis_network_beats_the_prediction_network_at_equal_updates() -> None:
    """Graves 2013 Tables 2-3's ordering, on the records of the CPU pair (same lines, same budget)."""
    found = {p.parent.name: json.loads(p.read_text()) for p in RECORDS}
    pred, synth = found["graves-prediction-cpu"], found["graves-synthesis-cpu"]
    assert pred["steps"] == synth["steps"] and pred["dataset"] == synth["dataset"]
    assert synth["metrics"]["nll"]["value"] < pred["metrics"]["nll"]["value"]
