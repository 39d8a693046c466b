"""`attn bench nmt`: training and decoding speed on the real data, in the units the peers report.

Training: ``--steps`` updates of a recipe through the real Lightning path (validation off);
the clock runs from the first batch to the last optimizer step. Source tokens, target
tokens (words, without BOS/EOS) and sentences per second are reported separately.
Decoding: beam 5 over the whole test split through ``attn eval`` with ``eval.perplexity=false``:
the search alone, as the peer harness times JoeyNMT's ``predict(..., compute_loss=False)``
(figures recorded before 2026-11-26 also included our teacher-forced perplexity pass). Figures go to
``results/bench/<recipe>-<device>[-<tag>].json`` with the hardware, thread count, load average and git sha
(``--tag`` keeps repeats apart: ``scripts/peer_bench.sh`` runs each pair ``REPEATS`` times).

``--limit`` measures how far training is from the machine's limit (issue 28): the same updates are run again
under :class:`attn_cli.flops.Census`, which counts the FLOPs of every matrix product, convolution and fused RNN
layer, and each distinct call is re-timed alone on this machine at the same thread count; the sum is the time
the run would take doing nothing but its own arithmetic. The figure reported is that limit as a fraction of the
measured training time, with our GFLOP/s beside the GEMMs' own.

`attn bench vision` (any task but nmt): training speed only, in examples per second, after
``--warmup`` untimed updates (they absorb a compilation); ``--compare KEY=VALUE`` (e.g.
``train.compile=true``) trains the same recipe again with that setting, back to back, and the figure
that matters is the ratio: ``results/bench/<recipe>-train-<device>[+KEY=VALUE...].json``.
Each figure is stored with the command, the thread count, the load average before and after, and the
examples per CPU second of the process (issue 28: on a shared machine wall-clock speed says as much
about the neighbours as about the code; CPU seconds much less). `attn bench --report` tabulates one
row per family from these files (results/bench/README.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import os
import re
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from lightning.pytorch.callbacks import Callback

from attn_cli import run
from attn_cli.errors import AttnError
from attn_cli.flops import Census, replay
from attn_cli.heap import KEPT
from attn_cli.io import atomic_write, read_json, write_json
from attn_cli.runs import command_line, cpu_runtime, git_sha, hardware

DEFAULT_RECIPES = {"nmt": ["luong-global-general", "bahdanau-lstm"], "vision": ["draw-gen"]}


class Counter(Callback):
    """Counts what each training batch held and times the loop from the first batch to the last step."""

    def __init__(self, warmup: int = 0) -> None:
        self.src_tokens = self.tgt_tokens = self.sentences = 0
        self.start: float | None = None
        self.end: float | None = None
        self.precision = ""
        self.warmup, self.seen = warmup, 0
        self.first: float | None = None  # the first batch's start, warm-up included
        self.cpu_start: float | None = None  # process CPU seconds over the timed steps (every thread)
        self.cpu_end: float | None = None

    def on_train_start(self, trainer: Any, module: Any) -> None:
        self.precision = str(trainer.precision)  # e.g. "32-true", "bf16-mixed"

    def on_train_batch_start(self, trainer: Any, module: Any, batch: dict, batch_idx: int) -> None:
        now = time.perf_counter()
        self.first = now if self.first is None else self.first
        if self.start is None and self.seen >= self.warmup:
            self.start, self.cpu_start = now, time.process_time()

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: dict, batch_idx: int) -> None:
        self.seen += 1
        if self.start is None:  # a warm-up batch
            return
        if "src" in batch:  # NMT: tokens too
            self.sentences += int(batch["src"].size(0))
            self.src_tokens += int(batch["src_len"].sum())
            self.tgt_tokens += int((batch["tgt_out"] > 0).sum()) - int(batch["tgt_out"].size(0))  # EOS excluded
        else:
            self.sentences += len(batch["ids"])
        self.end, self.cpu_end = time.perf_counter(), time.process_time()


def _bench_train(
    task: str, recipe: str, steps: int, overrides: list[str], data_dir: Path, callback: Callback
) -> dict[str, Any]:
    """``steps`` updates of ``recipe`` through the real Lightning path with ``callback``, validation and the
    recipe's time limit off (``overrides`` still win), under runs/bench/."""
    return run.train(
        task,
        recipe,
        runs_dir=Path("runs") / "bench",
        data_dir=data_dir,
        progress=False,
        extra_callbacks=[callback],
        overrides=[
            f"train.max_steps={steps}",
            "train.max_time_min=null",
            "train.val_every_steps=null",
            "train.limit_val_batches=0",
            "train.max_epochs=1000",
            *overrides,
        ],
    )


def _train_timed(
    task: str, recipe: str, steps: int, overrides: list[str], data_dir: Path, warmup: int = 0
) -> tuple[Counter, dict[str, Any]]:
    """``steps`` timed updates (after ``warmup`` untimed ones) through the real Lightning path, validation off."""
    counter = Counter(warmup)
    summary = _bench_train(task, recipe, steps + warmup, overrides, data_dir, counter)
    if counter.start is None or counter.end is None:
        raise AttnError("no training step was timed; raise --steps")
    return counter, summary


class _CensusCallback(Callback):
    """Holds a :class:`Census` open over each training batch after ``warmup`` (forward, backward, step)."""

    def __init__(self, warmup: int) -> None:
        self.census, self.warmup, self.seen, self.active = Census(), warmup, 0, False

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
        if self.seen >= self.warmup:
            self.census.__enter__()
            self.active = True

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.seen += 1
        if self.active:
            self.census.__exit__(None, None, None)
            self.active = False


def limit(
    task: str, recipe: str, steps: int, overrides: list[str], data_dir: Path, train_s: float, warmup: int = 0
) -> dict[str, Any]:
    """The timed updates again under a census (same seed: the same batches), then the census re-timed alone:
    the time the arithmetic alone needs, as a fraction of ``train_s`` (see the module docstring)."""
    callback = _CensusCallback(warmup)
    _bench_train(task, recipe, steps + warmup, overrides, data_dir, callback)
    timed = replay(callback.census)
    return {
        "gflop_per_step": round(timed["flops"] / steps / 1e9, 4),
        "train_gflop_s": round(timed["flops"] / train_s / 1e9, 2),
        "gemm_gflop_s": round(timed["flops"] / timed["limit_s"] / 1e9, 2),
        "limit_s": round(timed["limit_s"], 4),
        "limit_fraction": round(timed["limit_s"] / train_s, 3),
        "distinct_calls": timed["distinct_calls"],
        "by_op": timed["by_op"],
    }


PROFILED_UPDATES = 5  # `attn bench nmt --profile`: the training updates profiled together


class _ProfileSome(Callback):
    """torch.profiler around ``count`` consecutive training batches (forward, backward, optimizer step), after
    ``warmup`` others. Lightning runs the forward and backward as a closure inside ``optimizer.step``, so
    ``Optimizer.step#Adam.step``'s own time is everything between recorded operators: Python, the dispatcher,
    the autograd engine, malloc and the profiler's own per-operator bookkeeping (about a fifth of an NMT
    update; py-spy, which adds no per-operator work, puts the first four at 13-15% on one thread:
    ``scripts/pyspy_breakdown.py``, ``results/bench/pyspy-*.txt``). More than one update: a single profiled
    update can charge a stall outside every operator to that frame, half the update."""

    def __init__(self, warmup: int, count: int = PROFILED_UPDATES) -> None:
        self.warmup, self.count, self.seen = warmup, count, 0
        self.prof: Any = None

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
        if self.seen == self.warmup:
            self.prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True)
            self.prof.__enter__()

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.seen == self.warmup + self.count - 1:
            self.prof.__exit__(None, None, None)
        self.seen += 1


def _profile_text(prof: Any, title: str, sha: str, rows: int = 40) -> str:
    head = [
        f"# {title}",
        f"# command: {command_line()}",
        f"# git {sha}, {torch.get_num_threads()} torch threads, load average (1 min) {os.getloadavg()[0]:.2f}",
        f"# runtime settings: {runtime_text(cpu_runtime())}",
        "# sorted by self CPU time: where the time goes, op by op (torch.profiler; the profiler adds its own",
        "# overhead per op, so the shares matter, not the totals)",
        "",
    ]
    text = "\n".join(head) + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows) + "\n"
    shaped = prof.key_averages(group_by_input_shape=True)
    if any(e.input_shapes for e in shaped):
        # the same calls by input shape: which matrix products (and in which layout) the op totals above are
        text += "\n# by input shape, the 25 costliest\n" + shaped.table(sort_by="self_cpu_time_total", row_limit=25)
        text += "\n"
    return text


def profile_nmt(
    recipe: str, overrides: list[str], data_dir: Path, out: Path, warmup: int = 10, updates: int = 300
) -> list[Path]:
    """Five training steps (after ``warmup`` updates) and, after ``updates`` updates, the beam-5 search of one
    test batch (the longest sentences: eval batches are sorted), each under torch.profiler:
    ``profile-<recipe>-{train,beam}.txt``. The search is profiled on a model trained long enough to write
    sentences of a realistic length (an 11-update model stops after two or three steps)."""
    sha = git_sha()  # before this writes anything into the tree
    from attn_cli.registry import TASKS
    from attn_cli.tasks.base import load_checkpoint

    callback = _ProfileSome(warmup)
    last = warmup + callback.count
    summary = _bench_train("nmt", recipe, max(updates, last), overrides, data_dir, callback)
    if callback.seen < last:
        raise AttnError(f"no training step was profiled: the recipe stopped before update {last}")
    name = recipe.replace("/", "_")
    paths = [out / f"profile-{name}-train.txt", out / f"profile-{name}-beam.txt"]
    title = f"{callback.count} training updates of {recipe} (updates {warmup + 1}-{last}, summed)"
    atomic_write(paths[0], _profile_text(callback.prof, title, sha))
    module, rec = load_checkpoint(Path(summary["run_dir"]) / "checkpoints" / "last.ckpt", "nmt")
    dm = TASKS.get("nmt").datamodule(rec, data_dir)
    dm.setup("test")
    batch = next(iter(dm.split_loader("test")))
    module.eval()
    # under the autocast `attn eval` decodes with (BF16Mixed's, cast cache on): a bf16-mixed profile of float32
    # search would not be the search a bf16-mixed run does
    bf16 = rec.train.precision == "bf16-mixed"
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=True) if bf16 else contextlib.nullcontext()
    with (
        torch.no_grad(),
        autocast,
        torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof,
    ):
        hyps = module.decode(batch, 5)  # type: ignore[operator]
    longest = max(len(h.tokens) for h in hyps) + 1  # the search's steps: the longest output and its EOS
    title = (
        f"beam-5 search of one test batch of {recipe} after {max(updates, last)} updates"
        f" ({batch['src'].size(0)} sentences, the longest; {longest} search steps)"
        + (", under bf16-mixed autocast" if bf16 else "")
    )
    atomic_write(paths[1], _profile_text(prof, title, sha))
    return paths


def run_train_bench(
    task: str, recipes: list[str], *, steps: int, warmup: int, overrides: list[str], compare: list[str],
    data_dir: Path, out: Path,
) -> list[dict[str, Any]]:  # fmt: skip
    """Training examples/s of each recipe, and with ``compare`` settings back to back (the ratio)."""
    device = "gpu" if torch.cuda.is_available() else "cpu"
    rows = []
    for recipe in recipes or DEFAULT_RECIPES.get(task, []):
        row: dict[str, Any] = {"task": task, "recipe": recipe, "device": device, "steps": steps, "warmup": warmup}
        for label, extra in (("baseline", []), ("variant", compare)) if compare else (("baseline", []),):
            load_before = os.getloadavg()[0]
            counter, summary = _train_timed(task, recipe, steps, [*overrides, *extra], data_dir, warmup)
            seconds = counter.end - counter.start  # type: ignore[operator]
            cpu = counter.cpu_end - counter.cpu_start  # type: ignore[operator]
            row[label] = {
                "overrides": [*overrides, *extra],
                "precision": counter.precision,
                "threads": torch.get_num_threads(),
                "train_s": round(seconds, 2),
                "train_cpu_s": round(cpu, 2),
                "warmup_s": round(counter.start - counter.first, 2),  # type: ignore[operator]
                "train_examples_s": round(counter.sentences / seconds, 1),
                "train_examples_cpu_s": round(counter.sentences / cpu, 1),
                "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before, after
                "run_dir": summary["run_dir"],
            }
        if compare:
            row["speedup"] = round(row["variant"]["train_examples_s"] / row["baseline"]["train_examples_s"], 3)
        name = f"{recipe.replace('/', '_')}-train-{device}" + "".join(f"+{c.replace('/', '_')}" for c in compare)
        facts = {"command": command_line(), "git_sha": git_sha(), "hardware": hardware()}
        write_json(out / f"{name}.json", {**row, **facts})
        rows.append(row)
    return rows


def run_bench(
    task: str, recipes: list[str], *, steps: int, overrides: list[str], data_dir: Path, out: Path,
    tag: str = "", with_limit: bool = False,
) -> list[dict[str, Any]]:  # fmt: skip
    if task != "nmt":
        raise AttnError(f"training and decoding are benched for nmt; got {task!r}")
    rows = []
    device = "gpu" if torch.cuda.is_available() else "cpu"
    for recipe in recipes or DEFAULT_RECIPES[task]:
        load_before = os.getloadavg()[0]
        counter, summary = _train_timed(task, recipe, steps, overrides, data_dir)
        train_s = counter.end - counter.start  # type: ignore[operator]
        train_cpu_s = counter.cpu_end - counter.cpu_start  # type: ignore[operator]
        result = run.evaluate(
            task,
            Path(summary["run_dir"]),
            data_dir=data_dir,
            progress=False,
            overrides=["eval.beam=5", "eval.perplexity=false"],
            checkpoint=Path(summary["run_dir"]) / "checkpoints" / "last.ckpt",
        )
        test = read_json(Path(summary["run_dir"]) / "eval" / "test" / "metrics.json")
        n_test = sum(1 for _ in (Path(summary["run_dir"]) / "eval" / "test" / "hyp.txt").open(encoding="utf-8"))
        row = {
            "recipe": recipe,
            "device": device,
            "threads": torch.get_num_threads(),
            "precision": counter.precision,
            "steps": steps,
            "train_s": round(train_s, 2),
            "train_src_tok_s": round(counter.src_tokens / train_s, 1),
            "train_tgt_tok_s": round(counter.tgt_tokens / train_s, 1),
            "train_sent_s": round(counter.sentences / train_s, 1),
            # the test loop's batches alone, as the peer harness times JoeyNMT's predict(): no checkpoint load,
            # scoring or writing (those are in eval_wall_s; before 2026-12-07 stop 30 decode_s was that figure)
            "decode_s": test["predict_wall_s"],
            "decode_beam5_sent_s": round(n_test / test["predict_wall_s"], 1),
            "eval_wall_s": test["eval_wall_s"],
            # batches searched at once × torch threads each (eval.workers; 1 × all threads before 2026-12-07 stop 31)
            "decode_workers": [
                test.get("predict_workers", 1),
                test.get("predict_threads_each", torch.get_num_threads()),
            ],
            "bleu_after_steps": round(result["metrics"]["bleu"], 2),
            "train_cpu_s": round(train_cpu_s, 2),
            "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before, after
            "batching": _run_batching(Path(summary["run_dir"])),
        }
        if with_limit:
            row["limit"] = limit(task, recipe, steps, overrides, data_dir, train_s)
        write_json(
            out / f"{recipe.replace('/', '_')}-{device}{'-' + tag if tag else ''}.json",
            {
                **row,
                "command": command_line(),
                "git_sha": git_sha(),
                "hardware": hardware(),
                "overrides": overrides,
                "run_dir": summary["run_dir"],
            },
        )
        rows.append(row)
    return rows


PAIRS = {"luong": "luong-global-general", "bahdanau": "bahdanau-lstm"}


def _run_batching(run_dir: Path) -> str:
    """How the run drew its training batches (``data.batching`` of its resolved recipe): the peer report says it."""
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
    data = recipe.get("data", {})
    batching = str(data.get("batching", "random"))
    return f"tokens ≤{data['batch_tokens']}" if batching == "tokens" else batching


def parse_peer(path: Path) -> dict[str, list[dict[str, str]]]:
    """`PEER joeynmt NAME key=value ...` lines -> {NAME: [{key: value}, ...]} in file order (one per repeat)."""
    if not path.is_file():
        raise AttnError(f"peer results {path} do not exist; run scripts/peer_bench.sh")
    out: dict[str, list[dict[str, str]]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "PEER":
            out.setdefault(parts[2], []).append(dict(p.split("=", 1) for p in parts[3:] if "=" in p))
    return out


# our precisions beside the peer's float32: (file suffix, the row's label); scripts/peer_bench.sh's PRECISIONS
VARIANTS = (("", ""), ("-bf16", " (attn in bf16-mixed)"))


def _pairs(
    peer: list[dict[str, str]], out: Path, recipe: str, suffix: str = ""
) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(peer, ours) per repeat: peer lines carrying ``rep=K`` with ``<recipe>-cpu-rK<suffix>.json``; without
    repeats, the last peer line with ``<recipe>-cpu.json`` (the layout before repeats)."""
    pairs = [
        (line, read_json(out / f"{recipe}-cpu-r{line['rep']}{suffix}.json"))
        for line in peer
        if "rep" in line and (out / f"{recipe}-cpu-r{line['rep']}{suffix}.json").is_file()
    ]
    if not pairs and not suffix and peer and (out / f"{recipe}-cpu.json").is_file():
        pairs = [(peer[-1], read_json(out / f"{recipe}-cpu.json"))]
    return pairs


def _spread(values: list[float], fmt: str = "{:.1f}") -> str:
    """median (min–max) of the repeats; a single value alone."""
    if len(values) == 1:
        return fmt.format(values[0])
    lo, mid, hi = min(values), statistics.median(values), max(values)
    return f"{fmt.format(mid)} ({fmt.format(lo)}–{fmt.format(hi)})"


def runtime_text(runtime: dict[str, str] | None) -> str:
    """A record's ``hardware.cpu_runtime`` in one short phrase: the OpenMP settings and the malloc choice."""
    if runtime is None:
        return "not recorded"
    omp = [f"{k}={v}" for k, v in runtime.items() if k != "malloc"]
    malloc = runtime.get("malloc", "")
    heap = "heap kept" if malloc == KEPT else f"malloc: {malloc}" if malloc else ""
    return ", ".join(omp + ([heap] if heap else [])) or "defaults"


def report(peer_file: Path, out: Path) -> str:
    """results/bench/README.md: our figures beside the peer's, as ratios (same machine, run back to back);
    with repeats, the median and the range of each figure and of the ratio taken pair by pair."""
    peer = parse_peer(peer_file)
    ours = sorted(
        {r.get("batching", "random") for n, rec in PAIRS.items() for _, r in _pairs(peer.get(n, []), out, rec)}
    )
    lines = [
        "# NMT speed: attn beside JoeyNMT 2.3 (generated by `attn bench nmt --report`)",
        "",
        "Same machine, same Multi30k De→En data (Moses-tokenised, lowercased, min-freq-2 word vocabularies),",
        "same model (bi-LSTM 2×256 encoder, LSTM 256 decoder, emb 256, dropout 0.3, input feeding), batches of",
        f"64 sentences (JoeyNMT's drawn at random, its sentence batching; ours {' / '.join(ours) or 'random'}:",
        "`random` 64 sentences drawn at random, `bucket` 64 of similar length (pools of 50 batches sorted by length,",
        "the batches shuffled), `tokens ≤N` as many sentences of similar length as fit in N padded tokens (fairseq's",
        "max_tokens; ≤960 holds 64.7 sentences on average on this data), so the sentences per second compare the",
        "same work), 300 updates from scratch, then beam-5 decoding of the 1,000 test sentences",
        "(the decoding loop alone on both sides: JoeyNMT's predict() without its loss or metrics, our test loop's",
        "batches with eval.perplexity=false; neither side's model loading, scoring or writing is timed — before",
        "2026-12-07 stop 30 ours was the whole `attn eval`, checkpoint load, sacreBLEU and files included).",
        "Peer lines come from `../shared/peers/joeynmt/bench.sh`; ours from `attn bench nmt`. Each pair ran back to back",
        "(`scripts/peer_bench.sh`); with repeats, each cell is the median (min–max) over the pairs, and the ratio is",
        "taken within each pair before the median. The load column is the 1-minute load average around our runs:",
        "above the number of cores, the machine was shared and the wall-clock figures flatter nobody.",
        "Rows marked *attn in bf16-mixed* are ours with `--set train.precision=bf16-mixed` (autocast: the matrix",
        "products and the LSTM layers in bfloat16, weights, optimiser and loss in float32; the same decoding), beside",
        "the same JoeyNMT float32 runs: JoeyNMT's CPU autocast is float16 only. They pay on a CPU with bfloat16",
        "arithmetic (AVX512-BF16 or AMX); elsewhere bfloat16 is emulated and slower.",
        "",
        "| model | figure | JoeyNMT | attn | attn / JoeyNMT |",
        "|---|---|---|---|---|",
    ]
    keys = [
        ("train_sent_s", "train sentences/s"),
        ("train_src_tok_s", "train source tokens/s"),
        ("train_tgt_tok_s", "train target tokens/s"),
        ("decode_beam5_sent_s", "beam-5 decode sentences/s"),
    ]
    limits = []
    for (name, recipe), (suffix, variant) in itertools.product(PAIRS.items(), VARIANTS):
        pairs = _pairs(peer.get(name, []), out, recipe, suffix)
        if not pairs:
            continue
        model = f"{name} / {recipe}{variant}"
        for key, label in keys:
            p = [float(pl[key]) for pl, _ in pairs]
            o = [float(ours[key]) for _, ours in pairs]
            ratio = _spread([b / a for a, b in zip(p, o, strict=True)], "{:.2f}×")
            lines.append(f"| {model} | {label} | {_spread(p)} | {_spread(o)} | **{ratio}** |")
        threads = pairs[-1][1]["threads"]
        lines.append(f"| {model} | threads | {pairs[-1][0].get('threads', '?')} | {threads} | |")
        decoding = sorted({"{} × {}".format(*ours.get("decode_workers", [1, ours["threads"]])) for _, ours in pairs})
        peer_threads = pairs[-1][0].get("threads", "?")
        lines.append(
            f"| {model} | decoding: batches at once × threads each | 1 × {peer_threads} | {' / '.join(decoding)} | |"
        )
        runtimes = sorted({runtime_text(ours.get("hardware", {}).get("cpu_runtime")) for _, ours in pairs})
        lines.append(f"| {model} | runtime settings | defaults | {' / '.join(runtimes)} | |")
        loads = [x for _, ours in pairs for x in ours.get("load_avg_1min", [])]
        if loads:
            lines.append(f"| {model} | load (1 min) | | {min(loads):.2f}–{max(loads):.2f} | |")
        lines.append(f"| {model} | pairs | {len(pairs)} | | |")
        limits += [(recipe + variant, ours["limit"], ours["threads"]) for _, ours in pairs if "limit" in ours]
    if limits:
        lines += [
            "",
            "## How far from this machine's limit (`attn bench nmt --limit`)",
            "",
            "The same updates are replayed under a census of every matrix product / convolution / fused RNN layer",
            "(`attn_cli/flops.py`); each distinct call is re-timed alone at the same thread count. *Limit* is the time",
            "the training would take doing only its own arithmetic, each GEMM at the speed this machine gives that",
            "shape; the fraction is limit / measured training time (1.0 = nothing but arithmetic).",
            "",
            "| recipe | threads | GFLOP per update | our GFLOP/s | the GEMMs' GFLOP/s alone | limit / measured |",
            "|---|---|---|---|---|---|",
        ]
        for recipe, lim, threads in limits:
            lines.append(
                f"| {recipe} | {threads} | {lim['gflop_per_step']:.2f} | {lim['train_gflop_s']:.1f} | "
                f"{lim['gemm_gflop_s']:.1f} | **{lim['limit_fraction']:.0%}** |"
            )
    gpu = [
        (recipe, read_json(out / f"{recipe}-gpu.json"))
        for recipe in PAIRS.values()
        if (out / f"{recipe}-gpu.json").is_file()
    ]
    if gpu:
        lines += [
            "",
            "## On a GPU (ours alone)",
            "",
            "No JoeyNMT figure stands beside these yet: its harness gained a GPU mode (`PEER_CUDA=1`) after they were",
            "measured, and no GPU was lent since. The same 300 updates and beam-5 decoding, timed the same way, at the",
            "precision named.",
            "",
            "| recipe | GPU | precision | train sentences/s | train target tokens/s | beam-5 decode sentences/s | git |",
            "|---|---|---|---|---|---|---|",
        ]
        for recipe, row in gpu:
            name = ", ".join(row.get("hardware", {}).get("gpus", [])) or "?"
            lines.append(
                f"| {recipe} | {name} | {row.get('precision', '?')} | {row['train_sent_s']:.1f} | "
                f"{row['train_tgt_tok_s']:.1f} | {row['decode_beam5_sent_s']:.1f} | {str(row.get('git_sha', '?'))[:10]} |"
            )
    lines += time_to_lines(out)
    lines += family_lines(out)
    text = "\n".join(lines) + "\n"
    atomic_write(out / "README.md", text)
    return text


def time_to_lines(out: Path) -> list[str]:
    """The README's section of times to a score (``time-to-*.json``, `attn bench time-to`), JoeyNMT's time to
    its own best beside each when the file has it."""
    rows = []
    for path in sorted(out.glob("time-to-*.json")):
        row = read_json(path)
        metric, first, peer = row["metric"], row.get("first"), row.get("peer") or {}
        if first:
            ours = f"step {first['step']}: **{first['wall_s']:.0f} s** ({first['cpu_s']:.0f} CPU s)"
        else:
            ours = f"not reached (best {row['best'][metric]:.2f} at step {row['best']['step']})"
        joey = (
            f"step {peer['best_step']}: {peer['wall_s_to_best']:.0f} s, test {peer.get('test', {}).get('bleu_detok_lc', '?')}"
            if peer
            else ""
        )
        training = row.get("training", {})
        loads = training.get("load_avg_1min")
        shown = "–".join(f"{x:.1f}" for x in loads) if loads else "?"
        machine = training.get("hardware") or {}
        cpu = ", ".join(machine.get("gpus") or []) or machine.get("cpu", "?")
        # auto is 32-true on a CPU (the files from before the precision was kept are all CPU runs)
        precision = training.get("precision", "auto")
        precision = "32-true" if precision == "auto" and not machine.get("gpus") else precision
        rows.append(
            f"| {row['recipe']} | {metric} ≥ {row['target']:g} (beam {row.get('beam') or 'recipe'}, {row['split']}) | {ours} | "
            f"{len(row['checkpoints'])} | {joey} | {cpu}, {precision} | {training.get('threads', '?')} | {shown} | "
            f"{str(row.get('git_sha', '?'))[:10]} |"
        )
    if not rows:
        return []
    return [
        "",
        "## Time to a score (`attn bench time-to`)",
        "",
        "A run trained with `--set train.keep_val_checkpoints=true` keeps a checkpoint at every validation with the",
        "training seconds to it (from the first batch, validation included, the saving of these checkpoints left",
        "out); `attn bench time-to --run RUN --target T` decodes them on the test split in step order, through",
        "`attn eval`, until one reaches T. JoeyNMT's column is its `long.sh` run: the wall seconds from its first",
        "batch to its best checkpoint by greedy dev BLEU (validation included), and that checkpoint's beam-5 test",
        "BLEU (sacreBLEU on detokenised, lowercased text). Wall seconds depend on the load (the load column is the",
        "1-minute load average at our validations); the CPU seconds much less.",
        "",
        "| recipe | target | first checkpoint reaching it: training wall (CPU) | checkpoints decoded | "
        "JoeyNMT: its best, wall to it, test BLEU | trained on, precision | threads | load (1 min) | git |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def family_lines(out: Path) -> list[str]:
    """The README's section of training speeds, one row per recipe benched alone on the CPU
    (``<recipe>-train-cpu.json``, no ``--compare``): the families' figures a regression would move."""
    rows = []
    for path in sorted(out.glob("*-train-cpu.json")):
        row = read_json(path)
        base = row["baseline"]
        load, cores = base.get("load_avg_1min"), row.get("hardware", {}).get("cpu_count")
        shown = " → ".join(f"{x:.1f}" for x in load) if load else "?"
        if load and cores and max(load) > cores:  # more runnable threads than cores: the wall figure is low
            shown += f" on {cores} cores: under load"
        rows.append(
            f"| {row.get('task', '?')} | {row['recipe']} | {row['steps']} (+{row.get('warmup', 0)}) | "
            f"{base['train_examples_s']:.1f} | {base.get('train_examples_cpu_s', '?')} | {base['threads']} | "
            f"{shown} | {str(row.get('git_sha', '?'))[:10]} |"
        )
    if not rows:
        return []
    return [
        "",
        "## Training speed of each family on the CPU (ours alone)",
        "",
        "One recipe per family, `attn bench TASK --recipe RECIPE --steps N --warmup W` (the command is in each",
        "file), so that a regression shows. Examples/s is wall clock; on a shared machine it depends on the",
        "neighbours as much as on the code, so each row has the 1-minute load average before and after and the",
        "examples per CPU second of the training process, the figure to compare across rows measured at",
        'different loads. A row whose load average exceeded the machine\'s cores says "under load".',
        "",
        "| task | recipe | timed updates (+warm-up) | examples/s | examples per CPU s | threads | load (1 min) | git |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]


def _reaches(value: float, target: float, mode: str) -> bool:
    return value >= target if mode == "max" else value <= target


def time_to(
    run_dir: Path, target: float, *, metric: str = "bleu", beam: int | None = 5, split: str = "test",
    data_dir: Path, out: Path, tag: str = "", peer: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Time to ``target`` (issue 28): the checkpoints ``train.keep_val_checkpoints`` kept in ``run_dir`` are
    decoded on ``split`` in step order, each through :func:`attn_cli.run.evaluate` (what `attn eval` runs,
    into ``eval/<split>@val-step<N>/``), until one reaches ``target``; its training wall and CPU seconds (from
    its ``val-step<N>.json``) are the figure. Written to ``<out>/time-to-<recipe>[-<tag>].json`` whether the
    target was reached or not (``reached`` says which), with ``peer``, a JoeyNMT ``long.sh`` run, beside it
    (:func:`peer_time_to_best`). A metric whose name is the recipe's monitor follows its direction
    (``train.monitor_mode``); any other must grow (BLEU does)."""
    from attn_cli.callbacks import kept_checkpoints
    from attn_cli.registry import TASKS
    from attn_cli.runs import check_run_dir

    sha = git_sha()  # before anything is written into the tree
    run_dir = check_run_dir(Path(run_dir))
    kept = kept_checkpoints(run_dir)
    if not kept:
        raise AttnError(
            f"run {run_dir} kept no checkpoint per validation (checkpoints/val-step*.ckpt); train it with"
            " --set train.keep_val_checkpoints=true"
        )
    peer_row = peer_time_to_best(peer) if peer is not None else None  # a bad peer directory fails before decoding
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text(encoding="utf-8"))
    task, train_cfg = recipe["task"], recipe.get("train") or {}
    mode = train_cfg.get("monitor_mode", "min") if train_cfg.get("monitor") == f"val/{metric}" else "max"
    overrides = [f"eval.beam={beam}"] if beam is not None else []
    if "perplexity" in {f.name for f in dataclasses.fields(TASKS.get(task).eval_config)}:
        overrides.append("eval.perplexity=false")  # the search alone: perplexity does not decide the step
    load_before = os.getloadavg()[0]
    evaluated: list[dict[str, Any]] = []
    first: dict[str, Any] | None = None
    for step, ckpt, info in kept:
        result = run.evaluate(
            task, run_dir, split=split, overrides=overrides, checkpoint=ckpt, data_dir=data_dir, progress=False,
            name=ckpt.stem,
        )  # fmt: skip
        if metric not in result["metrics"]:
            raise AttnError(
                f"the {task} evaluation reports no {metric!r} (it reports {', '.join(sorted(result['metrics']))});"
                " pass one of those to --metric"
            )
        row: dict[str, Any] = {
            "step": step,
            "checkpoint": str(ckpt),
            metric: round(float(result["metrics"][metric]), 2),
            **{k: info[k] for k in ("wall_s", "cpu_s", "train_wall_s", "train_cpu_s") if k in info},
            "val_metrics": info.get("metrics", {}),
            "load_avg_1min": info.get("load_avg_1min"),
            "eval_wall_s": result["eval_wall_s"],
        }
        evaluated.append(row)
        if _reaches(float(result["metrics"][metric]), target, mode):
            first = row
            break
    best = (max if mode == "max" else min)(evaluated, key=lambda r: r[metric])
    run_info_ = read_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else {}
    loads = [r["load_avg_1min"] for r in evaluated if r.get("load_avg_1min") is not None]
    name = str(recipe.get("name") or run_dir.parent.name).replace("/", "_")
    row_out: dict[str, Any] = {
        "recipe": recipe.get("name"),
        "task": task,
        "run_dir": str(run_dir),
        "metric": metric,
        "mode": mode,
        "target": target,
        "split": split,
        "beam": beam,
        "reached": first is not None,
        "first": first,
        "best": {"step": best["step"], metric: best[metric]},
        "checkpoints": evaluated,
        "clock": (
            "training seconds from the first batch to the checkpoint (attn_cli.callbacks.KeepValCheckpoints):"
            " wall_s/cpu_s with validation, train_wall_s/train_cpu_s without; CPU seconds of the training process"
        ),
        "training": {
            "git_sha": [s.get("git_sha") for s in run_info_.get("segments", [])],
            "hardware": run_info_.get("hardware"),
            "threads": kept[0][2].get("threads"),
            "precision": train_cfg.get("precision", "auto"),  # auto: 32-true on a CPU
            "load_avg_1min": [min(loads), max(loads)] if loads else None,  # at the validations, min and max
        },
        "peer": peer_row,
        "command": command_line(),
        "git_sha": sha,
        "hardware": hardware(),
        "threads": torch.get_num_threads(),
        "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # around the decoding
    }
    path = out / f"time-to-{name}{'-' + tag if tag else ''}.json"
    write_json(path, row_out)
    row_out["path"] = str(path)
    return row_out


_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - ")


def _log_seconds(line: str) -> float | None:
    found = _LOG_TIME.match(line)
    if found is None:
        return None
    stamp = dt.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")
    return stamp.timestamp()


def peer_time_to_best(peer_dir: Path) -> dict[str, Any]:
    """JoeyNMT's time to its own best checkpoint, from a ``../shared/peers/joeynmt/long.sh`` run directory:
    ``train.out`` (JoeyNMT's log; its clock, like ours, starts at the first batch, its ``EPOCH 1`` line),
    ``model/validations.txt`` (greedy dev BLEU every 500 updates; the best one is ``best.ckpt``), and
    ``train.json`` / ``decode.json`` (the harness's figures: the beam-5 test BLEU of ``best.ckpt``). Wall
    seconds, validation included (the harness records no CPU seconds); the log's times are to the millisecond."""
    peer_dir = Path(peer_dir)
    log, validations = peer_dir / "train.out", peer_dir / "model" / "validations.txt"
    needed = [log, validations, peer_dir / "train.json", peer_dir / "decode.json"]
    missing = [str(p.relative_to(peer_dir)) for p in needed if not p.is_file()]
    if missing:
        # train.json is written when the budget is spent and decode.json after the test decoding: a run stopped
        # before them would report a best that is not its best
        raise AttnError(
            f"{peer_dir} is not a finished JoeyNMT long.sh run (no {', '.join(missing)}); give --peer a finished"
            " run's directory, ~/.cache/peer-joeynmt-work/long/<name>-<time>/"
        )
    start: float | None = None
    evaluated: list[float] = []  # the time each validation's result was logged, in order
    saved: dict[int, float] = {}  # step -> the time its checkpoint was saved
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        seconds = _log_seconds(line)
        if seconds is None:
            continue
        if start is None and line.rstrip().endswith("- EPOCH 1"):
            start = seconds
        elif "Evaluation result" in line:
            evaluated.append(seconds)
        elif (found := re.search(r"Checkpoint saved in .*?(\d+)\.ckpt", line)) is not None:
            saved[int(found.group(1))] = seconds
    steps, bleus = [], []
    for line in validations.read_text(encoding="utf-8").splitlines():
        fields = dict(f.split(":", 1) for f in line.split("\t") if ":" in f)
        if "Steps" in fields and "bleu" in fields:
            steps.append(int(fields["Steps"]))
            bleus.append(float(fields["bleu"]))
    if start is None or not steps:
        raise AttnError(f"{log} holds no training start (EPOCH 1) or {validations} no validation; is the run finished?")
    best = max(range(len(steps)), key=lambda i: (bleus[i], -i))  # JoeyNMT keeps the first of equal scores
    curve = [
        {"step": s, "dev_bleu_greedy": b, "wall_s": round(t - start, 2)}
        for s, b, t in zip(steps, bleus, evaluated, strict=False)
    ]
    if steps[best] not in saved:
        raise AttnError(f"{log} does not say when checkpoint {steps[best]}.ckpt (the best) was saved")
    out: dict[str, Any] = {
        "peer": "JoeyNMT 2.3 (../shared/peers/joeynmt/long.sh)",
        "run_dir": str(peer_dir),
        "best_step": steps[best],
        "best_dev_bleu_greedy": bleus[best],
        "wall_s_to_best": round(saved[steps[best]] - start, 2),
        "validations": curve,
        "clock": "wall seconds from JoeyNMT's EPOCH 1 log line to the best checkpoint's save, validation included",
    }
    train, decode = read_json(peer_dir / "train.json"), read_json(peer_dir / "decode.json")
    out["training"] = {k: train.get(k) for k in ("steps", "train_loop_s", "validation_s", "torch_threads")}
    out["test"] = {k: decode.get(k) for k in ("ckpt", "beam", "bleu_detok_lc", "bleu_tok_lc", "bleu_detok_lc_sig")}
    return out
