"""Vision models end to end on generated glyphs: shapes, visualisations, tables from records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attn_cli import run
from attn_cli.errors import AttnError
from attn_cli.registry import MODELS
from attn_cli.tables.command import table as table_command
from tests.conftest import recorded_rows


@pytest.mark.parametrize(
    ("name", "cfg", "shape", "classes"),
    [
        ("fc", {"hidden": (7,)}, [1, 11, 13], 5),
        ("cnn", {"channels": (3,), "kernel": 3, "fc": 7}, [2, 11, 13], 5),
        ("stn", {"transform": "tps", "loc": "cnn", "classifier": "cnn", "channels": (3,), "tps_k": 3}, [1, 13, 13], 5),
        (
            "stn",
            {"transform": "affine", "transformers": 2, "out_size": 7, "classifier": "resnet", "channels": (3, 5)},
            [2, 13, 13],
            7,
        ),
        ("ram", {"glimpses": 3, "glimpse_size": 3, "scales": 2, "hidden": 11, "core": "lstm"}, [1, 13, 13], 5),
        ("draw", {"mode": "classify", "steps": 2, "read_n": 3, "enc": 11}, [1, 13, 17], 5),
    ],
)
def test_classifiers_train_and_predict(name: str, cfg: dict, shape: list[int], classes: int) -> None:
    model = MODELS.get(name)(MODELS.get(name).Config(**cfg), image_shape=shape, classes=classes)
    x, y = torch.rand(3, *shape), torch.randint(0, classes, (3,))
    loss, _ = model.loss(x, y)
    loss.backward()
    assert torch.isfinite(loss)
    with torch.no_grad():
        out = model.predict(x, y)
    assert out["pred"].shape == (3,) and out["loss"].shape == (3,)


def test_ram_monte_carlo_evaluation_is_seeded_and_leaves_the_global_rng_alone() -> None:
    """eval.samples = M averages M sampled trajectories: same seed, same output; the caller's RNG untouched."""
    torch.manual_seed(0)
    model = MODELS.get("ram")(MODELS.get("ram").Config(glimpses=3, glimpse_size=3, hidden=11), [1, 13, 13], classes=5)
    x, y = torch.rand(4, 1, 13, 13), torch.randint(0, 5, (4,))
    with torch.no_grad():
        state = torch.get_rng_state()
        a = model.predict(x, y, samples=4, seed=7)
        assert torch.equal(torch.get_rng_state(), state)
        b = model.predict(x, y, samples=4, seed=7)
        c = model.predict(x, y, samples=4, seed=8)
        mean = model.predict(x, y)
    assert torch.equal(a["loss"], b["loss"]) and not torch.equal(a["loss"], c["loss"])
    assert not torch.equal(a["loss"], mean["loss"])


def test_ram_first_glimpse_uniform_is_drawn_while_sampling_and_centred_on_the_mean_path() -> None:
    """first_glimpse = "uniform": sampled trajectories start anywhere in U[-1, 1]², the mean path at the centre."""
    torch.manual_seed(0)
    ram = MODELS.get("ram")
    model = ram(ram.Config(glimpses=2, glimpse_size=3, hidden=11, first_glimpse="uniform"), [1, 13, 13], classes=5)
    x = torch.rand(64, 1, 13, 13)
    with torch.no_grad():
        first = model(x, sample_locations=True)["locations"][:, 0]  # (B, 2)
        mean_path = model(x, sample_locations=False)["locations"][:, 0]
        centred = ram(ram.Config(glimpses=2, glimpse_size=3, hidden=11), [1, 13, 13], classes=5)
        centre_first = centred(x, sample_locations=True)["locations"][:, 0]
    assert first.abs().max() <= 1 and first.std(0).min() > 0.3  # U[-1, 1] has σ 0.58; not one shared point
    assert torch.equal(mean_path, torch.zeros_like(mean_path)) and torch.equal(centre_first, torch.zeros_like(first))


def test_eval_samples_is_for_ram_only(generated_data: Path, tmp_path: Path) -> None:
    where = {"runs_dir": tmp_path, "data_dir": generated_data, "progress": False}
    run_dir = Path(run.train("vision", "tiny/cnn", overrides=["train.max_steps=2"], **where)["run_dir"])
    with pytest.raises(AttnError, match="eval.samples applies to RAM only"):
        run.evaluate("vision", run_dir, data_dir=generated_data, overrides=["eval.samples=3"])


def test_the_error_note_says_how_ram_chose_its_glimpses(generated_data: Path, tmp_path: Path) -> None:
    """A Monte-Carlo record once carried the note "policy mean locations": the note follows eval.samples, and
    a model without glimpses gets no glimpse note."""
    where = {"runs_dir": tmp_path, "data_dir": generated_data, "progress": False}
    ram = Path(run.train("vision", "tiny/ram", overrides=["train.max_steps=2"], **where)["run_dir"])
    mean = run.evaluate("vision", ram, data_dir=generated_data)["info"]["metric"]
    sampled = run.evaluate("vision", ram, data_dir=generated_data, overrides=["eval.samples=3", "eval.seed=5"])
    assert mean.endswith("; glimpses: the location policy's mean path")
    assert sampled["info"]["metric"].endswith("averaged over 3 paths sampled from the location policy (eval.seed 5)")
    cnn = Path(run.train("vision", "tiny/cnn", overrides=["train.max_steps=2"], **where)["run_dir"])
    assert run.evaluate("vision", cnn, data_dir=generated_data)["info"]["metric"] == "top-1 error (%) on the full split"


def test_draw_generation_bound_and_samples() -> None:
    from attn_cli.models.draw import DRAW

    for attention in (True, False):
        model = DRAW(
            DRAW.Config(steps=3, read_n=2, write_n=3, enc=7, dec=11, z=5, attention=attention), [1, 13, 11], 10
        )
        x = (torch.rand(5, 1, 13, 11) > 0.5).float()
        out = model.predict(x, torch.zeros(5, dtype=torch.long), seed=3)
        again = model.predict(x, torch.zeros(5, dtype=torch.long), seed=3)
        assert out["nll"].shape == (5,) and torch.equal(out["nll"], again["nll"])  # deterministic evaluation
        assert (out["lz"] >= 0).all()
        assert model.generate(2)["canvases"][-1].shape == (2, 1, 13, 11)


def test_dram_emits_a_sequence() -> None:
    from attn_cli.models.dram import DRAM

    model = DRAM(
        DRAM.Config(glimpses=2, glimpse_size=3, scales=2, hidden=7, context_size=8), [1, 17, 17], 10, seq_len=3
    )
    x, y = torch.rand(5, 1, 17, 17), torch.randint(0, 10, (5, 3))
    loss, _ = model.loss(x, y)
    loss.backward()
    assert model.emission.weight.grad.abs().sum() > 0
    assert model.predict(x, y)["pred"].shape == (5, 3)


@pytest.mark.parametrize(
    ("recipe", "pattern"),
    [
        ("tiny/ram", "glimpses-*.png"),
        ("tiny/dram", "glimpses-*.png"),
        ("tiny/stn-addition", "stn-*.png"),
        ("tiny/draw", "draw-canvas-*.png"),
        ("tiny/draw-classify", "draw-reads-*.png"),
    ],
)
def test_visualisations_are_written(recipe: str, pattern: str, generated_data: Path, tmp_path: Path) -> None:
    summary = run.train("vision", recipe, runs_dir=tmp_path, data_dir=generated_data, progress=False)
    target = {"tiny/ram": "ram", "tiny/dram": "dram", "tiny/draw": "draw", "tiny/draw-classify": "draw"}.get(
        recipe, "stn"
    )
    paths = run.visualize(target, Path(summary["run_dir"]), data_dir=generated_data, n=2)
    assert paths and all(p.is_file() and p.stat().st_size > 1000 for p in paths)
    assert list((Path(summary["run_dir"]) / "viz").glob(pattern))


def test_baselines_have_nothing_to_visualise(generated_data: Path, tmp_path: Path) -> None:
    summary = run.train("vision", "tiny/fc", runs_dir=tmp_path, data_dir=generated_data, progress=False)
    with pytest.raises(AttnError, match="no attention to draw") as err:
        run.visualize("vision", Path(summary["run_dir"]), data_dir=generated_data)
    # the list comes from the models' own ``picture``: every glimpse model is named, rst among them
    named = str(err.value).split("a run of ")[1].split(", ")
    assert {"ram", "dram", "stn", "draw", "resattn", "racnn", "rst"} <= set(named) and "fc" not in named


def _record(root: Path, dataset: str, recipe: str, metric: str, value: float) -> None:
    path = root / "vision" / dataset / recipe / "result.json"
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps(
            {
                "task": "vision",
                "dataset": dataset,
                "recipe": recipe,
                "split": "test",
                "metrics": {metric: {"value": value, "unit": "%"}},
            }
        )
    )


def test_tables_render_from_records(tmp_path: Path) -> None:
    _record(tmp_path, "mnist", "ram-28-6g", "error", 1.734)
    # the records the tables' equal-update pairs name: the RTS pair of Table 1's first block, DRAW at 2,000 updates
    _record(tmp_path, "mnist-rts", "stn-cnn-affine-rts@gpu", "error", 0.917)
    _record(tmp_path, "mnist-rts", "cnn-rts@gpu", "error", 1.313)
    _record(tmp_path, "mnist", "draw-gen@2000steps", "nll", 91.234)
    ram = table_command("ram", fmt="markdown", all_=False, list_=False, results_dir=tmp_path, out=None)
    stn = table_command("stn", fmt="markdown", all_=False, list_=False, results_dir=tmp_path, out=None)
    draw = table_command("draw", fmt="csv", all_=False, list_=False, results_dir=tmp_path, out=None)
    assert "| RAM, 6 glimpses, 8×8, 1 scale | 1.12 | 1.73 |" in ram
    assert "0.92" in stn and "1.31" in stn and "**0.92**" in stn
    assert "91.23" in draw and "80.97" in draw


RESULTS = Path(__file__).resolve().parent.parent / "results" / "vision"
RECORDS = sorted(RESULTS.rglob("result.json"))


@pytest.mark.parametrize("path", RECORDS, ids=[str(p.relative_to(RESULTS)) for p in RECORDS])
def test_vision_records_recompute_from_their_predictions(path: Path) -> None:
    rec = json.loads(path.read_text())
    rows = recorded_rows(path, rec)
    assert sorted(r["id"] for r in rows) == list(range(len(rows)))
    metrics = rec["metrics"]
    if "nll" in metrics:
        assert sum(r["nll"] for r in rows) / len(rows) == pytest.approx(metrics["nll"]["value"], rel=1e-9)
    elif "seq_error" in metrics:
        wrong = sum(r["pred"] != r["label"] for r in rows)
        assert 100.0 * wrong / len(rows) == pytest.approx(metrics["seq_error"]["value"], rel=1e-9)
    else:
        wrong = sum(r["pred"] != r["label"] for r in rows)
        assert 100.0 * wrong / len(rows) == pytest.approx(metrics["error"]["value"], rel=1e-9)


def test_visualised_panels_keep_each_channel() -> None:
    from attn_cli.viz.vision import _img, _planes

    two = torch.zeros(2, 5, 5)
    two[0, 1, 1], two[1, 3, 3] = 1.0, 1.0  # MNIST addition: one digit per channel
    panels = _planes(two)
    assert [name for name, _ in panels] == ["channel 1", "channel 2"]
    assert panels[0][1][1, 1] == 1.0 and panels[0][1][3, 3] == 0.0 and panels[1][1][3, 3] == 1.0
    rgb = torch.rand(3, 5, 4)
    assert _img(rgb).shape == (5, 4, 3) and len(_planes(rgb)) == 1
    assert _img(torch.rand(1, 5, 4)).shape == (5, 4)


def test_training_bench_compares_a_setting_back_to_back(
    generated_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import run_cli

    monkeypatch.chdir(tmp_path)  # the bench's runs go under ./runs/bench
    code, out, err = run_cli(
        "--data-dir", str(generated_data), "bench", "vision", "--recipe", "tiny/fc", "--steps", "3",
        "--warmup", "2", "--compare", "train.lr=0.01", "--out", str(tmp_path / "bench"),
    )  # fmt: skip
    assert code == 0, err
    row = json.loads((tmp_path / "bench" / "tiny_fc-train-cpu+train.lr=0.01.json").read_text())
    assert row["steps"] == 3 and row["warmup"] == 2
    assert row["variant"]["overrides"] == ["train.lr=0.01"] and row["baseline"]["overrides"] == []
    assert row["baseline"]["train_examples_s"] > 0 and row["baseline"]["warmup_s"] > 0
    assert row["speedup"] == round(row["variant"]["train_examples_s"] / row["baseline"]["train_examples_s"], 3)
    # nmt with --compare: its training alone, the same way (the length-bucketing lever is measured so)
    code, out, err = run_cli(
        "--data-dir", str(generated_data), "bench", "nmt", "--recipe", "tiny/luong-global-general", "--steps", "2",
        "--compare", "data.batching=bucket", "--out", str(tmp_path / "bench"),
    )  # fmt: skip
    assert code == 0, err
    row = json.loads((tmp_path / "bench" / "tiny_luong-global-general-train-cpu+data.batching=bucket.json").read_text())
    assert row["task"] == "nmt" and row["variant"]["overrides"] == ["data.batching=bucket"]
    code, _, err = run_cli("bench", "nmt", "--compare", "train.compile=true", "--tag", "r1")
    assert code == 2 and "--tag, --limit and --profile" in err and "Traceback" not in err
