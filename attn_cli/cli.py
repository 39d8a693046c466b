"""The `attn` command line (Typer). Parses, calls :mod:`attn_cli.run`, prints. No logic here.

User errors (:class:`~attn_cli.errors.AttnError`) print one line and exit with code 2.

Start-up is kept short: this module imports no torch. Every command checks its names and
options against :mod:`attn_cli.names` (a light index) before it imports :mod:`attn_cli.run`
and with it torch and Lightning, so `--help`, `recipes`, `table` and every argument error
answer in a fraction of a second (scripts/bench_startup.py records how long).
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table as RichTable

from attn_cli import __version__, names
from attn_cli.errors import AttnError, from_os_error

app = typer.Typer(
    name="attn",
    help="Prepare data for, train, evaluate and visualise the classic attention models (2014-2017).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)


class State:
    data_dir: Path = Path(os.environ.get("ATTN_DATA", "data"))
    runs_dir: Path = Path(os.environ.get("ATTN_RUNS", "runs"))
    results_dir: Path = Path(os.environ.get("ATTN_RESULTS", "results"))


def _version(value: bool) -> None:
    if value:
        console.print(f"attn {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def main(
    data_dir: Path = typer.Option(
        State.data_dir, "--data-dir", envvar="ATTN_DATA", help="Prepared datasets live here."
    ),
    runs_dir: Path = typer.Option(State.runs_dir, "--runs-dir", envvar="ATTN_RUNS", help="Run directories go here."),
    results_dir: Path = typer.Option(
        State.results_dir, "--results-dir", envvar="ATTN_RESULTS", help="Recorded results (for tables)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """attn: attention models from the papers, on your data, laptop to cluster."""
    State.data_dir, State.runs_dir, State.results_dir = data_dir, runs_dir, results_dir
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*could not find the monitored key.*")
    import logging

    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.pytorch.accelerators.cuda",
        "lightning.fabric.utilities.rank_zero",
        "lightning.pytorch.trainer.connectors.checkpoint_connector",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)


def _print_summary(
    title: str, metrics: dict[str, Any], facts: dict[str, Any] | None = None, units: dict[str, str] | None = None
) -> None:
    """One metric per line (BLEU in points, :func:`~attn_cli.tables.base.display_metric`), then the facts
    (paths, signatures) as plain lines below the table, so that no value is cut at 80 columns."""
    from attn_cli.tables.base import display_metric

    console.print(title, style="bold", markup=False, highlight=False, soft_wrap=True)
    if metrics:
        table = RichTable(show_header=True)
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in metrics.items():
            label, shown = display_metric(key, value, (units or {}).get(key.rsplit("/", 1)[-1], ""))
            table.add_row(label, f"{shown:.4g}" if isinstance(shown, float) else str(shown))
        console.print(table)
    for key, value in (facts or {}).items():
        console.print(f"{key}: {value}", markup=False, soft_wrap=True, highlight=False)


def _units(task: str) -> dict[str, str]:
    from attn_cli.registry import TASKS

    return getattr(TASKS.get(task), "metric_units", {})


@app.command()
def prepare(
    target: str = typer.Argument(..., help="A task (nmt, caption, vision, memory) or a dataset name."),
    dataset: Optional[str] = typer.Option(None, "--dataset", "-d", help="Dataset, when TARGET is a task."),
    source: Optional[Path] = typer.Option(None, "--source", help="Official raw files (dir or archive); else download."),
    name: Optional[str] = typer.Option(None, "--name", help="Name of the prepared dataset (default from options)."),
    src: Optional[str] = typer.Option(None, "--src", help="Parallel text: source-side training file."),
    tgt: Optional[str] = typer.Option(None, "--tgt", help="Parallel text: target-side training file."),
    dev_src: Optional[str] = typer.Option(None, "--dev-src", help="Parallel text: source dev file."),
    dev_tgt: Optional[str] = typer.Option(None, "--dev-tgt", help="Parallel text: target dev file."),
    test_src: Optional[str] = typer.Option(None, "--test-src", help="Parallel text: source test file."),
    test_tgt: Optional[str] = typer.Option(None, "--test-tgt", help="Parallel text: target test file."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="bAbI: the tasks to prepare, e.g. 1,2,4-20."),
    set_: list[str] = typer.Option([], "--set", help="Dataset option key=value (e.g. min_freq=2)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if an identical preparation exists."),
) -> None:
    """Prepare a dataset into the data directory.

    Example: attn prepare nmt --dataset multi30k --source ../shared/data/multi30k/task1

    Example: attn prepare memory --dataset babi --source ../shared/data/babi/tasks_1-20_v1-2.tar.gz --set size=10k --tasks 1,2,4-20
    """
    names.check_prepare(target, dataset, set_)
    from attn_cli import run

    options = {
        "src": src,
        "tgt": tgt,
        "dev_src": dev_src,
        "dev_tgt": dev_tgt,
        "test_src": test_src,
        "test_tgt": test_tgt,
        "tasks": tasks,
    }
    out = run.prepare(
        target,
        dataset=dataset,
        source=source,
        data_dir=State.data_dir,
        options=options,
        overrides=set_,
        name=name,
        force=force,
    )
    from attn_cli.io import read_json

    manifest = read_json(out / "manifest.json")
    facts = {k: v for k, v in manifest.items() if k in ("dataset", "direction", "counts", "vocab", "note")}
    _print_summary(f"prepared {out.name}", {}, {"prepared": out, **facts})


@app.command()
def train(
    task: str = typer.Argument(..., help="Task family: nmt, caption, vision, memory."),
    recipe: Optional[str] = typer.Option(
        None, "--recipe", "-r", help="Recipe NAME (recipes/<task>/NAME.yaml), tiny/NAME, or a PATH."
    ),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a recipe key: --set train.lr=0.001"),
    resume: Optional[Path] = typer.Option(
        None,
        "--resume",
        help="Continue a killed run from its last checkpoint; a finished one with a larger budget (--set train.max_steps=N).",
    ),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Use this run directory (cluster scripts)."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start over in a --run-dir that holds a training, deleting its checkpoints."
    ),
    devices: Optional[str] = typer.Option(None, "--devices", help="Devices: a count, a list '0,1', or auto."),
    accelerator: Optional[str] = typer.Option(None, "--accelerator", help="cpu, gpu or auto."),
) -> None:
    """Train a recipe; writes runs/<task>/<recipe>/<run-id>/.

    Example: attn train nmt --recipe luong-local-p --set train.max_epochs=5
    """
    names.check_train(task, recipe, set_, resume)
    from attn_cli import run

    summary = run.train(
        task,
        recipe,
        overrides=set_,
        runs_dir=State.runs_dir,
        data_dir=State.data_dir,
        resume=resume,
        run_dir=run_dir,
        overwrite=overwrite,
        devices=devices,
        accelerator=accelerator,
    )
    if summary:
        _print_summary(
            f"trained {summary['recipe']}",
            {
                f"best {summary['monitor']}": summary["best_score"],
                "epochs": summary["epochs"],
                "steps": summary["steps"],
                "train wall (s)": summary["train_wall_s"],
            },
            {"run": summary["run_dir"], "best checkpoint": summary["best_checkpoint"]},
            _units(task),
        )
        console.print(f"next: attn eval {task} --run {summary['run_dir']}", soft_wrap=True, highlight=False)


def _evaluate(
    task: str,
    run_: Path,
    split: Optional[str],
    set_: list[str],
    checkpoint: Optional[Path],
    beam: Optional[int],
    record_: bool,
    devices: Optional[str],
    accelerator: Optional[str],
    ensemble: list[Path],
    from_predictions: Optional[Path] = None,
    name: Optional[str] = None,
    allow_dirty: bool = False,
    src: Optional[Path] = None,
    ref: Optional[Path] = None,
) -> None:
    if (src is None) != (ref is None):
        raise AttnError("--src and --ref go together: the source file and its reference translations")
    if src is not None:
        if split is not None:
            raise AttnError("--split scores a split of the run's dataset, --src/--ref a file pair instead: give one")
        if task != "nmt":
            raise AttnError(f"--src/--ref score parallel text files: an nmt run's option, not {task}'s")
        if from_predictions is not None:
            raise AttnError("--src/--ref decode a new file; --from-predictions rescores a saved one: give one")
        # a file pair is scored as a split of its own, eval/<name>/ (default: the source file's name)
        split, name = name or src.name.split(".")[0], None
    elif name is not None and not record_:
        raise AttnError(
            "--name names a record; add --record (or --src/--ref: then it names that file pair's evaluation)"
        )
    split = split or "test"
    names.check_task(task)
    names.eval_sections(list(set_))
    from attn_cli import records, run

    if from_predictions is not None:
        metrics = run.rescore(task, run_, from_predictions, split=split, checkpoint=checkpoint)
        _print_summary(f"{task}: rescored", metrics, {"predictions": from_predictions}, _units(task))
        return

    overrides = list(set_)
    if beam is not None:
        overrides.append(f"eval.beam={beam}")
    if ensemble:
        overrides.append("eval.ensemble=[" + ",".join(str(p) for p in ensemble) + "]")
    result = run.evaluate(
        task,
        run_,
        split=split,
        overrides=overrides,
        checkpoint=checkpoint,
        data_dir=State.data_dir,
        devices=devices,
        accelerator=accelerator,
        name=name,
        src=src,
        ref=ref,
    )
    if not result:
        return
    info = result.get("info", {})
    # a metric that could not be computed (METEOR without Java) is a row of the table: "n/a (why)"
    missing = {k: v for k, v in info.items() if str(v).startswith("n/a")}
    facts = {k: v for k, v in info.items() if k not in missing}
    facts.update(
        {"predictions": str(records.eval_dir(Path(run_), split, name)), "eval wall (s)": result["eval_wall_s"]}
    )
    _print_summary(f"{task} {result['recipe']} on {split}", {**result["metrics"], **missing}, facts, _units(task))
    for line in result.get("notes", []):
        console.print(line)
    if record_:
        path = records.record(
            task, run_, split=split, results_dir=State.results_dir, name=name, allow_dirty=allow_dirty
        )
        console.print(f"recorded {path}")


_EVAL_HELP = """Evaluate a trained run on a split (free-running decoding for text).

Example: attn eval nmt --run runs/nmt/luong-local-p/<id> --split test --beam 5

Example: attn eval nmt --run RUN --set eval.unk_replace=true --record --name luong-local-p+unk

Example: attn eval nmt --run RUN --src newstest2015.de.gz --ref newstest2015.en.gz --name wmt15 --record
"""


def _eval_command(
    task: str = typer.Argument(..., help="Task family of the run."),
    run_: Path = typer.Option(..., "--run", help="Run directory."),
    split: Optional[str] = typer.Option(None, "--split", help="Split to score (default: test)."),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override eval.* keys, e.g. eval.unk_replace=true"),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint (default: the run's best)."),
    beam: Optional[int] = typer.Option(None, "--beam", help="Beam size (1 = greedy)."),
    record_: bool = typer.Option(False, "--record", help="Also record the result under results/."),
    name: Optional[str] = typer.Option(None, "--name", help="With --record: the row name (default: the recipe)."),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="With --record: record a run of uncommitted code."),
    devices: Optional[str] = typer.Option(None, "--devices", help="Devices for evaluation."),
    accelerator: Optional[str] = typer.Option(None, "--accelerator", help="cpu, gpu or auto."),
    ensemble: list[Path] = typer.Option([], "--ensemble", help="Extra checkpoints to ensemble with (repeatable)."),
    from_predictions: Optional[Path] = typer.Option(
        None, "--from-predictions", help="Recompute metrics from a saved predictions file."
    ),
    src: Optional[Path] = typer.Option(
        None, "--src", help="nmt: score this source file (plain or .gz) instead of a split; needs --ref."
    ),
    ref: Optional[Path] = typer.Option(None, "--ref", help="nmt: the reference translations of --src."),
) -> None:
    _evaluate(
        task,
        run_,
        split,
        set_,
        checkpoint,
        beam,
        record_,
        devices,
        accelerator,
        ensemble,
        from_predictions,
        name,
        allow_dirty,
        src,
        ref,
    )


app.command("evaluate", help=_EVAL_HELP)(_eval_command)
app.command("eval", help=_EVAL_HELP)(_eval_command)


@app.command()
def record(
    task: str = typer.Argument(..., help="Task family of the run."),
    run_: Path = typer.Option(..., "--run", help="An evaluated run directory."),
    split: str = typer.Option("test", "--split"),
    name: Optional[str] = typer.Option(None, "--name", help="Record under this name instead of the recipe's."),
    allow_dirty: bool = typer.Option(
        False, "--allow-dirty", help="Record a run trained from uncommitted code (its table rows get a †)."
    ),
    note: str = typer.Option(
        "", "--note", help="Why this row differs from the paper (shown where it fails an ordering)."
    ),
) -> None:
    """Copy an evaluated run into results/<task>/<dataset>/<recipe>/result.json.

    Example: attn record nmt --run runs/nmt/bahdanau/<id>
    Example: attn record vision --run RUN --name draw-gen@cpu --note "T = 16, not the paper's 64"
    """
    names.check_task(task)
    from attn_cli import records

    path = records.record(
        task, run_, split=split, results_dir=State.results_dir, name=name, allow_dirty=allow_dirty, note=note
    )
    console.print(f"recorded {path}")


@app.command("average")
def average(
    checkpoints: list[Path] = typer.Argument(..., help="Two or more checkpoints of the same model."),
    out: Path = typer.Option(..., "--out", help="Where the averaged checkpoint goes."),
) -> None:
    """Average the parameters of several checkpoints (then evaluate with --checkpoint).

    Example: attn average runs/nmt/x/a/checkpoints/best.ckpt runs/nmt/x/a/checkpoints/last.ckpt --out avg.ckpt
    """
    from attn_cli import records

    console.print(f"wrote {records.average_checkpoints(list(checkpoints), out)}")


@app.command()
def visualize(
    target: str = typer.Argument(..., help="Task or model of the run (nmt, caption, ram, stn, memn2n, ...)."),
    run_: Path = typer.Option(..., "--run", help="Run directory."),
    split: str = typer.Option("test", "--split"),
    n: int = typer.Option(4, "--n", help="How many examples to draw."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint"),
) -> None:
    """Draw attention (heatmaps, overlays, glimpses, ...) as PNG files in the run directory.

    Example: attn visualize nmt --run runs/nmt/luong-local-p/<id> --n 4
    """
    names.check_visualize_target(target)
    from attn_cli import run

    paths = run.visualize(target, run_, split=split, n=n, data_dir=State.data_dir, checkpoint=checkpoint)
    for p in paths:
        console.print(str(p))


@app.command()
def table(
    name: Optional[str] = typer.Argument(None, help="A table, or a family (nmt, caption, ...) for all its tables."),
    fmt: str = typer.Option("rich", "--format", "-f", help="rich, markdown, csv or latex."),
    all_: bool = typer.Option(False, "--all", help="Write every table to results/TABLES.md."),
    list_: bool = typer.Option(False, "--list", help="List the tables."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write to a file instead of the terminal."),
) -> None:
    """Render a paper-layout table from recorded results, ours beside the paper's numbers.

    A table wider than the terminal is printed one metric per line instead.

    Example: attn table luong --format markdown

    Example: attn table nmt
    """
    from attn_cli.tables.command import table as table_command

    rendered = table_command(
        name, fmt=fmt, all_=all_, list_=list_, results_dir=State.results_dir, out=out, width=console.width
    )
    if isinstance(rendered, str):
        if out is None:
            sys.stdout.write(rendered)
        else:
            console.print(f"wrote {out}")
    elif isinstance(rendered, list):
        for one in rendered:
            console.print(one)
    else:
        console.print(rendered)


@app.command()
def recipes(task: Optional[str] = typer.Argument(None, help="Only this task.")) -> None:
    """List the recipes that can be trained: model, training budget, batch size, what each is.

    Example: attn recipes nmt
    """
    from rich.markup import escape

    rows = names.list_recipes(task)
    t = RichTable(title=f"{task} recipes" if task else "recipes", show_lines=True)
    t.add_column("recipe" if task else "task / recipe")
    for col in ("model", "budget", "batch"):
        t.add_column(col, justify="right" if col == "batch" else "left")
    for row in rows:
        label = escape(row["recipe"] if task else f"{row['task']}/{row['recipe']}")
        t.add_row(
            f"[bold]{label}[/bold]\n[dim]{escape(row['description'])}[/dim]", row["model"], row["budget"], row["batch"]
        )
    console.print(t)


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Where the demo's runs and records go."),
    task: list[str] = typer.Option([], "--task", help="Only these task families (repeatable)."),
) -> None:
    """Run every demo-* recipe end to end on generated data (offline): prepare, train, eval, visualize, table.

    --out must be new, empty or an earlier demo's output (which is replaced); nothing else is deleted.

    Example: attn demo
    Example: attn demo --task nmt --out runs/demo-nmt
    """
    import time

    import torch

    from attn_cli import run

    wall, cpu = time.perf_counter(), time.process_time()
    table_, pngs = run.demo(
        out, data_dir=State.data_dir, tasks=task or None, say=lambda line: console.print(line, markup=False)
    )
    console.print(table_)
    console.print("attention pictures:")
    for p in pngs:
        console.print(f"  {p}", soft_wrap=True)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    console.print(f"demo: {wall:.0f} s wall, {cpu:.0f} s CPU, {torch.get_num_threads()} torch threads")


@app.command()
def bench(
    task: str = typer.Argument(
        "nmt", help="Task to benchmark (nmt: training and decoding; others: training), or time-to (see --run)."
    ),
    recipe: list[str] = typer.Option([], "--recipe", "-r", help="Recipes to time (default: the task's own list)."),
    steps: int = typer.Option(300, "--steps", help="Training updates to time."),
    warmup: int = typer.Option(0, "--warmup", help="Untimed updates first (they absorb a compilation)."),
    compare: list[str] = typer.Option(
        [], "--compare", help="KEY=VALUE: train again with this setting, back to back, and report the ratio."
    ),
    set_: list[str] = typer.Option([], "--set", "-s"),
    out: Path = typer.Option(Path("results/bench"), "--out", help="Where the figures go."),
    report_: bool = typer.Option(False, "--report", help="Only write the comparison with the peer (no timing)."),
    peer: Optional[Path] = typer.Option(
        None,
        "--peer",
        help="The peer's summary lines (default results/bench/peer-joeynmt.txt); with time-to, a JoeyNMT long.sh run.",
    ),
    tag: str = typer.Option("", "--tag", help="nmt: a suffix for the figures' file (repeats: r1, r2, ...)."),
    limit: bool = typer.Option(
        False, "--limit", help="nmt: also replay the updates under a FLOP census and time its GEMMs alone."
    ),
    profile: bool = typer.Option(
        False, "--profile", help="nmt: profile five training updates and one beam-5 batch (profile-*.txt), no timing."
    ),
    run_: Optional[Path] = typer.Option(
        None, "--run", help="time-to: a run trained with --set train.keep_val_checkpoints=true."
    ),
    target: Optional[float] = typer.Option(None, "--target", help="time-to: the score to reach (e.g. 32.4 BLEU)."),
    metric: str = typer.Option("bleu", "--metric", help="time-to: the test metric the target is for."),
    beam: Optional[int] = typer.Option(5, "--beam", help="time-to: beam size of the decoding (1 = greedy)."),
    split: str = typer.Option("test", "--split", help="time-to: the split decoded."),
) -> None:
    """Time training (tokens/s, sentences/s) and beam-5 decoding; figures go to results/bench/.

    `attn bench time-to` decodes the checkpoints a run kept at each validation, in step order, until one reaches
    --target: the training seconds to it go to results/bench/time-to-<recipe>[-<tag>].json, with a JoeyNMT
    long.sh run's time to its own best beside it (--peer). Exit 1 when no checkpoint reaches the target (the
    file is written all the same).

    Example: attn bench nmt --recipe luong-global-general --steps 300 --limit
    Example: attn bench vision --recipe draw-gen --steps 40 --warmup 5 --compare train.compile=true
    Example: attn bench nmt --steps 60 --warmup 3 --compare data.batching=bucket   (training alone)
    Example: attn bench time-to --run runs/nmt/luong-global-general/<id> --target 32.4 --peer DIR
    """
    if task == "time-to":
        _bench_time_to(run_, target, metric, beam, split, out, tag, peer)
        return
    names.check_task(task)
    from attn_cli import bench as bench_mod

    if report_:
        sys.stdout.write(bench_mod.report(peer or out / "peer-joeynmt.txt", out))
        return
    if task != "nmt" or compare or warmup:  # nmt with --compare/--warmup: its training alone, as the others
        if tag or limit or profile:
            raise AttnError(
                f"--tag, --limit and --profile belong to the nmt benchmark of training and decoding (not {task}'s,"
                " nor with --compare/--warmup)"
            )
        rows = bench_mod.run_train_bench(
            task, recipe, steps=steps, warmup=warmup, overrides=set_, compare=compare, data_dir=State.data_dir, out=out
        )
        for row in rows:
            flat = {f"{k}/{kk}": vv for k, v in row.items() if isinstance(v, dict) for kk, vv in v.items()}
            flat.update({k: v for k, v in row.items() if not isinstance(v, dict) and k != "recipe"})
            _print_summary(f"bench {task} {row['recipe']}", flat)
        return
    if profile:
        for recipe_name in recipe or bench_mod.DEFAULT_RECIPES[task]:
            for path in bench_mod.profile_nmt(recipe_name, set_, State.data_dir, out):
                console.print(f"wrote {path}")
        return
    _check_tag(tag)
    rows = bench_mod.run_bench(
        task, recipe, steps=steps, overrides=set_, data_dir=State.data_dir, out=out, tag=tag, with_limit=limit
    )
    for row in rows:
        flat = {k: v for k, v in row.items() if k not in ("recipe", "limit")}
        if "limit" in row:
            flat.update({f"limit/{k}": v for k, v in row["limit"].items() if k != "by_op"})
        _print_summary(f"bench {task} {row['recipe']}", flat)


def _check_tag(tag: str) -> None:
    if tag and not all(c.isalnum() or c in "-_." for c in tag):
        raise AttnError(f"--tag {tag!r}: use letters, digits, '-', '_' or '.' (it becomes part of a file name)")


def _bench_time_to(
    run_: Path | None, target: float | None, metric: str, beam: int | None, split: str, out: Path, tag: str,
    peer: Path | None,
) -> None:  # fmt: skip
    if run_ is None or target is None:
        raise AttnError("time-to needs --run RUN_DIR (trained with --set train.keep_val_checkpoints=true) and --target")
    if beam is not None and beam < 1:
        raise AttnError(f"--beam {beam}: give 1 (greedy) or more")
    _check_tag(tag)
    from attn_cli import bench as bench_mod

    row = bench_mod.time_to(
        run_, target, metric=metric, beam=beam, split=split, data_dir=State.data_dir, out=out, tag=tag, peer=peer
    )
    for one in row["checkpoints"]:
        console.print(
            f"step {one['step']}: {metric} {one[metric]:.2f} after {one.get('wall_s', 0):.1f} s wall,"
            f" {one.get('cpu_s', 0):.1f} CPU s of training",
            markup=False,
            highlight=False,
        )
    if row["peer"] is not None:
        p = row["peer"]
        test = p["test"]
        console.print(
            f"peer: best at step {p['best_step']} (dev BLEU {p['best_dev_bleu_greedy']:.2f}, greedy) after"
            f" {p['wall_s_to_best']:.0f} s wall; test BLEU {test['bleu_detok_lc']} (beam {test['beam']})",
            markup=False,
            highlight=False,
        )
    console.print(f"wrote {row['path']}", markup=False, highlight=False)
    if not row["reached"]:
        best = row["best"]
        err_console.print(
            f"attn: {metric} {target:g} not reached: the best of {len(row['checkpoints'])} kept checkpoints is"
            f" {best[metric]:.2f} (step {best['step']})",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1)
    first = row["first"]
    console.print(
        f"{metric} {target:g} first reached at step {first['step']}: {first.get('wall_s', 0):.1f} s wall,"
        f" {first.get('cpu_s', 0):.1f} CPU s of training",
        markup=False,
        highlight=False,
    )


@app.command()
def translate(
    run_: Path = typer.Option(..., "--run", help="A trained nmt run directory."),
    input_: Optional[Path] = typer.Option(None, "--input", "-i", help="Sentences, one per line (default: stdin)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write here instead of stdout."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint (default: the run's best)."),
    beam: Optional[int] = typer.Option(None, "--beam", help="Beam size (default: the recipe's; 1 = greedy)."),
    n_best: int = typer.Option(0, "--n-best", help="Write the N best hypotheses with scores, as JSON lines."),
    alignments: bool = typer.Option(False, "--alignments", help="Add each attention matrix (JSON lines)."),
    unk_replace: bool = typer.Option(False, "--unk-replace", help="Replace <unk> by the most-attended source word."),
    interactive: bool = typer.Option(False, "--interactive", help="Answer each line at once (default on a tty)."),
    ensemble: list[Path] = typer.Option([], "--ensemble", help="Extra checkpoints to ensemble with (repeatable)."),
    batch_size: int = typer.Option(
        0, "--batch-size", help="Sentences per decoding batch (default 0: the recipe's data.eval_batch_size)."
    ),
) -> None:
    """Translate sentences with a trained run, preprocessed as its training data was (tokenizer, case,
    subwords, vocabulary); detokenised output, one line per input line, flushed as it goes.

    Example: echo "the small cat sees a dog" | attn translate --run runs/nmt/demo-reorder/<id>

    Example: attn translate --run RUN --input test.de --output test.en --beam 5 --n-best 3 --alignments

    Example: attn translate --run RUN --input test.de --batch-size 200

    Example: attn translate --run RUN --ensemble OTHER_RUN/checkpoints/best.ckpt --input test.de
    """
    if n_best < 0:
        raise AttnError(f"--n-best must be 0 or more, got {n_best}")
    if input_ is not None and not input_.is_file():
        raise AttnError(f"--input {input_} does not exist")
    from attn_cli import use

    options = use.TranslateOptions(
        beam=beam,
        n_best=n_best,
        alignments=alignments,
        unk_replace=unk_replace,
        batch_size=batch_size,
        ensemble=tuple(ensemble),
    )
    translator = use.Translator(run_, State.data_dir, checkpoint, options)
    if input_ is not None:
        from attn_cli.io import read_text_lines

        lines = iter(read_text_lines(input_))
    else:
        lines = use.stdin_lines()
    live = interactive or (input_ is None and use.input_is_interactive(sys.stdin))
    if output is None:
        use.translate_stream(translator, lines, sys.stdout, interactive=live)
        return
    from attn_cli.io import atomic_path

    with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8") as out:
        count = use.translate_stream(translator, lines, out, interactive=live)
    err_console.print(f"wrote {count} lines to {output}", markup=False, highlight=False)


@app.command()
def caption(
    images: list[Path] = typer.Argument(..., help="Image files, or a folder of them."),
    run_: Path = typer.Option(..., "--run", help="A trained caption run directory (pixel images)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint (default: the run's best)."),
    beam: Optional[int] = typer.Option(None, "--beam", help="Beam size (default: the recipe's; 1 = greedy)."),
    viz: Optional[Path] = typer.Option(None, "--viz", help="Draw each image's per-word attention into this folder."),
) -> None:
    """Caption images with a trained run: one line per image, "IMAGE<TAB>caption".

    Example: attn caption --run runs/caption/demo-captions/<id> digits.png --viz pictures/
    """
    from attn_cli import use

    for row in use.caption(run_, list(images), checkpoint=checkpoint, beam=beam, viz=viz):
        sys.stdout.write(f"{row['image']}\t{row['caption']}\n")  # tab-separated, for scripts
        if "picture" in row:
            sys.stdout.write(f"  attention: {row['picture']}\n")


@app.command()
def classify(
    images: list[Path] = typer.Argument(..., help="Image files, or a folder of them."),
    run_: Path = typer.Option(..., "--run", help="A trained vision classifier run directory."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint (default: the run's best)."),
    top: int = typer.Option(3, "--top", help="How many classes to print per image."),
    viz: Optional[Path] = typer.Option(None, "--viz", help="Draw the glimpses / warp / read boxes into this folder."),
) -> None:
    """Classify images with a trained vision run: the top classes with their probabilities.

    Example: attn classify --run runs/vision/demo-ram/<id> seven.png --top 3 --viz pictures/
    """
    from attn_cli import use

    for row in use.classify(run_, list(images), checkpoint=checkpoint, top=top, viz=viz):
        classes = "  ".join(f"{t['class']} ({t['p']:.3f})" for t in row["top"])
        sys.stdout.write(f"{row['image']}\t{classes}\n")
        if "picture" in row:
            sys.stdout.write(f"  attention: {row['picture']}\n")


@app.command()
def generate(
    target: str = typer.Argument(..., help="What to generate: handwriting."),
    run_: Path = typer.Option(..., "--run", help="A trained handwriting run (graves-synthesis or graves-prediction)."),
    text: Optional[str] = typer.Option(None, "--text", help="The line to write (synthesis runs)."),
    bias: float = typer.Option(0.0, "--bias", help="Sampling bias b >= 0 (Graves 2013 eqs. 61-62): higher is tidier."),
    prime_run_line: Optional[int] = typer.Option(
        None, "--prime-run-line", help="Write in the style of this line of the run's test split (priming)."
    ),
    seed: int = typer.Option(0, "--seed", help="Sampling seed: the same seed writes the same line."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output path without suffix (default: RUN/generated/...)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Checkpoint (default: the run's best)."),
) -> None:
    """Write a line of handwriting with a trained run, as SVG and PNG.

    Example: attn generate handwriting --run runs/handwriting/graves-synthesis/<id> --text "more of national temperament" --bias 1
    """
    if target != "handwriting":
        raise AttnError(f"`attn generate` writes handwriting only, not {target!r}; use `attn generate handwriting`")
    from attn_cli.generate import generate_handwriting

    result = generate_handwriting(
        run_, text=text, bias=bias, seed=seed, prime_line=prime_run_line, data_dir=State.data_dir, out=out,
        checkpoint=checkpoint,
    )  # fmt: skip
    for key in ("svg", "png"):
        console.print(str(result[key]), markup=False, highlight=False, soft_wrap=True)
    ended = "the window passed the last character" if result["stopped"] else "the step budget ran out"
    err_console.print(f"{result['points']} pen points; {ended}" if text else f"{result['points']} pen points",
                      markup=False, highlight=False)  # fmt: skip


@app.command()
def runs(task: Optional[str] = typer.Argument(None, help="Only this task's runs.")) -> None:
    """List the runs under the runs directory: recipe, status (running, finished, killed), best score, age.

    Example: attn runs nmt
    """
    if task is not None:
        names.check_task(task)
    from attn_cli import runlist

    rows = runlist.list_runs(State.runs_dir, task)
    if not rows:
        console.print(f"no runs under {State.runs_dir / (task or '')}", markup=False, highlight=False)
        return
    t = RichTable(title=f"runs in {State.runs_dir}", show_lines=True)
    for col in ("run", "status", "best", "age"):
        t.add_column(col, overflow="fold", justify="right" if col == "age" else "left")
    for row in rows:
        run_id = row["run"].relative_to(State.runs_dir) if row["run"].is_relative_to(State.runs_dir) else row["run"]
        # the path names the recipe (runs/<task>/<recipe>/<id>), unless the run was trained into a --run-dir
        label = str(run_id) + ("" if row["recipe"] in str(run_id) else f"\n({row['task']} {row['recipe']})")
        t.add_row(label, row["status"], row["best"], row["age"])
    console.print(t)


@app.command()
def show(run_: Path = typer.Argument(..., help="A run directory.")) -> None:
    """Print a run's status, training summary, evaluations, paths and resolved recipe.

    Example: attn show runs/nmt/luong-local-p/<id>
    """
    from attn_cli import runlist

    info = runlist.show_run(run_)
    train_ = info["train"]
    summary = {f"best {train_['monitor']}": train_["best_score"]} if train_.get("best_score") is not None else {}
    summary.update({k: train_[k] for k in ("epochs", "steps", "train_wall_s") if k in train_})
    facts = {"task": info["task"], "recipe": info["recipe"], "status": info["status"], "age": info["age"]}
    _print_summary(f"run {run_}", summary, facts)
    for split, metrics in info["evals"].items():
        _print_summary(f"eval {split}", metrics)
    for key, path in info["paths"].items():
        console.print(f"{key}: {path}", markup=False, highlight=False, soft_wrap=True)
    console.print("recipe:", style="bold")
    console.print(info["recipe_text"].rstrip(), markup=False, highlight=False, soft_wrap=True)


def entrypoint() -> None:
    try:
        app()
    except AttnError as err:
        err_console.print(f"error: {err}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as err:  # a refused write (permissions, full disk) is one line too; other OSErrors are bugs
        user_error = from_os_error(err)
        if user_error is None:
            raise
        err_console.print(f"error: {user_error}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as err:
        # Lightning's refusal of a setting (e.g. limit_val_batches that leaves no validation batch) is a
        # user error too: one line, exit 2; anything else is a bug and keeps its traceback
        if type(err).__name__ != "MisconfigurationException":
            raise
        message = " ".join(str(err).split())
        err_console.print(f"error: {message} (a --set train.* value)", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted; resume with `attn train TASK --resume RUN_DIR`", markup=False)
        sys.exit(130)


if __name__ == "__main__":
    entrypoint()
