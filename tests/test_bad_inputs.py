"""The bad-input catalogue (issue 24): every verb, every class of mistake.

Each case runs the real CLI on a shared world (one prepared dataset, one trained, evaluated and
recorded run) and asserts what a user on a shared cluster must be able to rely on: exit code 2,
one line ``error: ...`` on stderr, no traceback, and every earlier output byte-identical
afterwards (the whole world tree is hashed before and after, hidden temporaries included).
Refused writes (a full disk, a file size limit) run in a subprocess under ``RLIMIT_FSIZE``,
which makes the kernel fail the write with ``EFBIG`` exactly as a full disk fails it with
``ENOSPC``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import resource
import shutil
import signal
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from attn_cli import records, run
from tests.conftest import ATTN_EXE, run_cli

RECIPE = "tiny/luong-global-general"


@dataclass(frozen=True)
class World:
    root: Path
    data: Path
    runs: Path
    results: Path
    run: Path  # trained, evaluated on test, recorded
    inputs: Path  # the bad files

    def __getitem__(self, name: str) -> str:
        return str(self.inputs / name)


def _babi_archive(path: Path, members: dict[str, bytes], *, cut: bool = False, compress: bool = True) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    path.write_bytes(raw[: len(raw) // 2] if cut else raw)


def _bad_files(w: World) -> None:
    d = w.inputs
    d.mkdir()
    (d / "afile").write_text("not a directory\n")
    (d / "emptydir").mkdir()
    best = w.run / "checkpoints" / "best.ckpt"
    (d / "truncated.ckpt").write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    torch.save({"state_dict": {"w": torch.zeros(3)}}, d / "foreign.ckpt")
    preds = (w.run / "eval" / "test" / "predictions.jsonl").read_bytes()
    (d / "corrupt.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(64))
    (d / "truncated.jsonl.gz").write_bytes(gzip.compress(preds)[:200])
    (d / "latin1.jsonl").write_bytes(b'{"id": 0, "hyp": "caf\xe9"}\n')
    (d / "empty.jsonl").write_bytes(b"")
    lines = preds.decode().splitlines(keepends=True)
    (d / "shifted.jsonl").write_text("".join(line.replace('{"id": ', '{"id": 1000', 1) for line in lines))
    (d / "noid.jsonl").write_text('{"hyp": "a b", "ref": "c d"}\n')
    (d / "nohyp.jsonl").write_text('{"id": 0, "ref": "c d"}\n')
    (d / "a.src").write_text("a b\nc d\ne f\n")
    (d / "a.tgt").write_text("x y\nz w\n")  # one line short: misaligned
    (d / "latin1.src").write_bytes(b"caf\xe9 au lait\n")
    (d / "truncated.src.gz").write_bytes(gzip.compress(b"a b\n" * 500)[:30])
    train = "tasks_1-20_v1-2/en/qa1_single-supporting-fact_train.txt"
    test = "tasks_1-20_v1-2/en/qa1_single-supporting-fact_test.txt"
    story = b"1 Mary went to the hallway.\n2 Where is Mary?\thallway\t1\n"
    _babi_archive(d / "babi-latin1.tar.gz", {train: story.replace(b"Mary", b"M\xe4ry"), test: story})
    _babi_archive(d / "babi-traversal.tar.gz", {train: story, test: story, "../../evil.txt": b"x\n"})
    _babi_archive(d / "babi-ok.tar.gz", {train: story, test: story})
    _babi_archive(d / "babi-cut.tar.gz", {train: story * 200, test: story * 200}, cut=True)
    # an uncompressed tar cut inside its last member
    _babi_archive(d / "babi-cut-member.tar", {train: story, test: story * 200}, compress=False)
    with tarfile.open(d / "babi-cut-member.tar") as tar:
        cut_at = tar.getmember(test).offset_data + 100
    (d / "babi-cut-member.tar").write_bytes((d / "babi-cut-member.tar").read_bytes()[:cut_at])
    folder = d / "babi-dir" / "tasks_1-20_v1-2" / "en"
    folder.mkdir(parents=True)
    (folder / train.rsplit("/", 1)[1]).write_bytes(story.replace(b"Mary", b"M\xe4ry"))
    (folder / test.rsplit("/", 1)[1]).write_bytes(story)
    (d / "bad-yaml.yaml").write_text("task: nmt\nmodel: {name: luong\n")
    (d / "list.yaml").write_text("- task\n- nmt\n")
    (d / "self.yaml").write_text("base: self\ntask: nmt\n")
    cut_run = d / "cut-run"
    shutil.copytree(w.run, cut_run)
    (cut_run / "train_done.json").unlink()  # a killed run ...
    last = cut_run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])  # ... whose last.ckpt arrived truncated


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("bad-inputs")
    data, runs, results = root / "data", root / "runs", root / "results"
    run.prepare("toy-reorder", data_dir=data)
    overrides = ["train.max_steps=2", "train.limit_val_batches=1"]
    summary = run.train("nmt", RECIPE, overrides=overrides, runs_dir=runs, data_dir=data, progress=False)
    run_dir = Path(summary["run_dir"])
    run.evaluate("nmt", run_dir, data_dir=data, overrides=["eval.beam=1"], progress=False)
    records.record("nmt", run_dir, results_dir=results)
    w = World(root, data, runs, results, run_dir, root / "inputs")
    _bad_files(w)
    os.environ.pop("ATTN_RUN_DIR", None)
    return w


def tree_digest(root: Path) -> dict[str, str]:
    """Every path under ``root`` (hidden ones included) with its content hash: any new, removed or
    changed file or folder shows."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_one_line_error(code: int, err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}, stderr: {err[-2000:]}"
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err


Args = Callable[[World], list[str]]


def T(*extra: str) -> Args:
    """`attn train nmt --recipe tiny/... EXTRA`."""
    return lambda w: ["train", "nmt", "--recipe", RECIPE, *extra]


def S(*sets: str) -> Args:
    """`attn train nmt --recipe tiny/... --set A --set B`."""
    return T(*[x for s in sets for x in ("--set", s)])


def E(*extra: str) -> Args:
    """`attn eval nmt --run RUN EXTRA`, where EXTRA may name bad files as {name}."""
    return lambda w: ["eval", "nmt", "--run", str(w.run), *[x.format(**_named(w)) for x in extra]]


def _named(w: World) -> dict[str, str]:
    return {p.name.replace(".", "_").replace("-", "_"): str(p) for p in w.inputs.iterdir()} | {"run": str(w.run)}


def F(*words: str) -> Args:
    """Any command line; {name} (dots and dashes as _) are the bad files, {run} the run."""
    return lambda w: [x.format(**_named(w)) for x in words]


CASES: dict[str, Args] = {
    # --- prepare
    "prepare/unknown-dataset": F("prepare", "nosuch"),
    "prepare/task-without-dataset": F("prepare", "nmt"),
    "prepare/vocab-size-negative": F("prepare", "toy-reorder", "--set", "vocab_size=-1", "--name", "x"),
    "prepare/vocab-size-only-specials": F("prepare", "toy-reorder", "--set", "vocab_size=3", "--name", "x"),
    "prepare/min-freq-zero": F("prepare", "toy-reorder", "--set", "min_freq=0", "--name", "x"),
    "prepare/unknown-set-key": F("prepare", "toy-reorder", "--set", "nosuch=1", "--name", "x"),
    "prepare/bad-set-type": F("prepare", "toy-reorder", "--set", "lowercase=maybe", "--name", "x"),
    "prepare/option-not-for-dataset": F("prepare", "toy-reorder", "--tasks", "1", "--name", "x"),
    "prepare/missing-source": F("prepare", "multi30k", "--source", "/nonexistent/multi30k"),
    "prepare/misaligned-parallel": F(
        "prepare",
        "parallel",
        "--src",
        "{a_src}",
        "--tgt",
        "{a_tgt}",
        "--dev-src",
        "{a_src}",
        "--dev-tgt",
        "{a_tgt}",
        "--test-src",
        "{a_src}",
        "--test-tgt",
        "{a_tgt}",
    ),
    "prepare/non-utf8-text": F(
        "prepare",
        "parallel",
        "--src",
        "{latin1_src}",
        "--tgt",
        "{latin1_src}",
        "--dev-src",
        "{a_src}",
        "--dev-tgt",
        "{a_src}",
        "--test-src",
        "{a_src}",
        "--test-tgt",
        "{a_src}",
    ),
    "prepare/truncated-gzip-text": F(
        "prepare",
        "parallel",
        "--src",
        "{truncated_src_gz}",
        "--tgt",
        "{truncated_src_gz}",
        "--dev-src",
        "{a_src}",
        "--dev-tgt",
        "{a_src}",
        "--test-src",
        "{a_src}",
        "--test-tgt",
        "{a_src}",
    ),
    "prepare/babi-non-utf8-member": F("prepare", "babi", "--source", "{babi_latin1_tar_gz}", "--tasks", "1"),
    "prepare/babi-archive-traversal": F("prepare", "babi", "--source", "{babi_traversal_tar_gz}", "--tasks", "1"),
    "prepare/babi-truncated-archive": F("prepare", "babi", "--source", "{babi_cut_tar_gz}", "--tasks", "1"),
    "prepare/babi-truncated-member": F("prepare", "babi", "--source", "{babi_cut_member_tar}", "--tasks", "1"),
    "prepare/babi-non-utf8-file-in-folder": F("prepare", "babi", "--source", "{babi_dir}", "--tasks", "1"),
    "prepare/babi-bad-task-list": F("prepare", "babi", "--source", "{babi_ok_tar_gz}", "--tasks", "1,99"),
    "prepare/data-dir-is-a-file": F("--data-dir", "{afile}", "prepare", "toy-reorder"),
    # --- train: names, --set keys and types
    "train/unknown-task": F("train", "nosuch", "--recipe", "x"),
    "train/unknown-recipe": F("train", "nmt", "--recipe", "nosuch"),
    "train/no-recipe": F("train", "nmt"),
    "train/recipe-file-missing": F("train", "nmt", "--recipe", "/nonexistent/r.yaml"),
    "train/recipe-bad-yaml": F("train", "nmt", "--recipe", "{bad_yaml_yaml}"),
    "train/recipe-not-a-mapping": F("train", "nmt", "--recipe", "{list_yaml}"),
    "train/recipe-inherits-itself": F("train", "nmt", "--recipe", "{self_yaml}"),
    "train/set-unknown-key": S("train.nosuch=1"),
    "train/set-unknown-section": S("nosuch.lr=1"),
    "train/set-without-equals": S("train.lr"),
    "train/set-bad-type": S("train.lr=fast"),
    "train/set-bad-bool": S("train.deterministic=perhaps"),
    "train/set-unknown-choice": S("model.attention=nosuch"),
    "train/dataset-not-prepared": S("data.dataset=nosuch"),
    # --- train: values out of range
    "train/batch-size-zero": S("train.batch_size=0"),
    "train/batch-size-negative": S("train.batch_size=-4"),
    "train/lr-zero": S("train.lr=0"),
    "train/lr-negative": S("train.lr=-0.1"),
    "train/time-budget-negative": S("train.max_time_min=-1"),
    "train/max-steps-zero": S("train.max_steps=0"),
    "train/max-epochs-zero": S("train.max_epochs=0"),
    "train/grad-clip-negative": S("train.grad_clip=-1"),
    "train/lr-decay-above-one": S("train.lr_decay=2"),
    "train/negative-validation-batches": S("train.limit_val_batches=-1"),
    "train/max-loss-negative": S("train.max_loss=-1"),
    "train/keep-val-checkpoints-without-validation": S("train.keep_val_checkpoints=true", "train.limit_val_batches=0"),
    "train/precision-unknown": S("train.precision=fp8"),
    "train/strategy-unknown": S("train.strategy=horovod"),
    "train/model-width-zero": S("model.hidden=0"),
    "train/eval-batch-size-zero": S("data.eval_batch_size=0"),
    # --- train: hardware
    "train/accelerator-unknown": T("--accelerator", "tpu"),
    "train/devices-beyond-cores": T("--devices", "4096", "--accelerator", "cpu"),
    "train/devices-zero": T("--devices", "0"),
    "train/devices-not-a-number": T("--devices", "many"),
    "train/device-list-on-cpu": T("--devices", "0,1", "--accelerator", "cpu"),
    # --- train: where it writes, and resuming
    "train/runs-dir-is-a-file": F("--runs-dir", "{afile}", "train", "nmt", "--recipe", RECIPE),
    "train/resume-not-a-run": F("train", "nmt", "--resume", "{emptydir}"),
    "train/resume-finished-run": F("train", "nmt", "--resume", "{run}"),
    "train/resume-truncated-last-ckpt": F("train", "nmt", "--resume", "{cut_run}"),
    # --- eval
    "eval/beam-zero": E("--beam", "0"),
    "eval/beam-negative": E("--beam", "-2"),
    "eval/unknown-split": E("--split", "nosuch"),
    "eval/run-missing": F("eval", "nmt", "--run", "/nonexistent/run"),
    "eval/wrong-task": F("eval", "vision", "--run", "{run}"),
    "eval/set-model-key": E("--set", "model.hidden=3"),
    "eval/set-bad-type": E("--set", "eval.beam=wide"),
    "eval/name-without-record": E("--name", "x"),
    "eval/devices-beyond-cores": E("--devices", "4096", "--accelerator", "cpu"),
    "eval/checkpoint-not-a-checkpoint": E("--checkpoint", "{afile}"),
    "eval/checkpoint-truncated": E("--checkpoint", "{truncated_ckpt}"),
    "eval/checkpoint-foreign": E("--checkpoint", "{foreign_ckpt}"),
    "eval/predictions-corrupt-gzip": E("--from-predictions", "{corrupt_jsonl_gz}"),
    "eval/predictions-truncated-gzip": E("--from-predictions", "{truncated_jsonl_gz}"),
    "eval/predictions-not-utf8": E("--from-predictions", "{latin1_jsonl}"),
    "eval/predictions-empty": E("--from-predictions", "{empty_jsonl}"),
    "eval/predictions-missing": E("--from-predictions", "/nonexistent/p.jsonl"),
    "eval/predictions-misaligned-ids": E("--from-predictions", "{shifted_jsonl}"),
    "eval/predictions-without-ids": E("--from-predictions", "{noid_jsonl}"),
    "eval/predictions-wrong-fields": E("--from-predictions", "{nohyp_jsonl}"),
    # --- visualize
    "visualize/n-negative": F("visualize", "nmt", "--run", "{run}", "--n", "-1"),
    "visualize/n-zero": F("visualize", "nmt", "--run", "{run}", "--n", "0"),
    "visualize/wrong-target": F("visualize", "ram", "--run", "{run}"),
    "visualize/unknown-split": F("visualize", "nmt", "--run", "{run}", "--split", "nosuch"),
    "visualize/checkpoint-truncated": F("visualize", "nmt", "--run", "{run}", "--checkpoint", "{truncated_ckpt}"),
    # --- record, table, recipes, average, bench
    "record/split-not-evaluated": F("record", "nmt", "--run", "{run}", "--split", "val"),
    "record/run-missing": F("record", "nmt", "--run", "/nonexistent/run"),
    "record/results-dir-is-a-file": F("--results-dir", "{afile}", "record", "nmt", "--run", "{run}"),
    "table/unknown": F("table", "nosuch"),
    "table/unknown-format": F("table", "luong", "--format", "docx"),
    "table/no-name": F("table"),
    "table/out-under-a-file": F("table", "luong", "--format", "csv", "--out", "{afile}/t.csv"),
    "recipes/unknown-task": F("recipes", "nosuch"),
    "average/one-checkpoint": F("average", "{truncated_ckpt}", "--out", "{emptydir}/avg.ckpt"),
    "average/corrupt": F("average", "{afile}", "{truncated_ckpt}", "--out", "{emptydir}/avg.ckpt"),
    "bench/steps-zero": F("bench", "nmt", "--steps", "0", "--out", "{emptydir}"),
    "bench/unknown-recipe": F("bench", "nmt", "--recipe", "nosuch", "--out", "{emptydir}"),
    "bench/limit-with-compare": F("bench", "nmt", "--compare", "train.lr=1", "--limit", "--out", "{emptydir}"),
    "bench/limit-on-vision": F("bench", "vision", "--limit", "--out", "{emptydir}"),
    "bench/tag-not-a-file-name": F("bench", "nmt", "--tag", "../x", "--out", "{emptydir}"),
    "bench/time-to-without-kept-checkpoints": F(
        "bench", "time-to", "--run", "{run}", "--target", "30", "--out", "{emptydir}"
    ),
    "bench/time-to-run-missing": F(
        "bench", "time-to", "--run", "/nonexistent/run", "--target", "30", "--out", "{emptydir}"
    ),
    "bench/time-to-without-target": F("bench", "time-to", "--run", "{run}", "--out", "{emptydir}"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_and_changes_nothing(
    name: str, world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ATTN_RUN_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # a stray relative write would land here, not in the world
    args = CASES[name](world)
    before = tree_digest(world.root)
    code, _, err = run_cli("--data-dir", str(world.data), "--runs-dir", str(world.runs),
                           "--results-dir", str(world.results), *args)  # fmt: skip
    assert_one_line_error(code, err)
    assert tree_digest(world.root) == before
    assert not list(tmp_path.iterdir())


def test_catalogue_covers_every_verb() -> None:
    verbs = {name.split("/")[0] for name in CASES}
    assert verbs >= {"prepare", "train", "eval", "visualize", "record", "table", "recipes", "average", "bench"}
    assert len(CASES) >= 60


# ---------------------------------------------------------------------------------------------
# refused writes: read-only directories and a full disk


def _readonly(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)


def _cli_as_user(*args: str) -> tuple[int, str]:
    """The CLI under ordinary permission checks: in-process for a normal user; for root (who writes
    anywhere) in a subprocess whose capability bounding set lacks the overrides, so a read-only
    directory refuses root's writes too."""
    if os.geteuid() != 0:
        code, _, err = run_cli(*args)
        return code, err
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permission errors cannot happen here")
    no_override = "--bounding-set=-dac_override,-dac_read_search,-fowner"
    env = {k: v for k, v in os.environ.items() if k != "ATTN_RUN_DIR"}
    proc = subprocess.run([setpriv, no_override, ATTN_EXE, *args], capture_output=True, text=True, env=env, timeout=600)
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("what", ["data", "runs", "run", "results"])
def test_read_only_directory_is_one_line(what: str, world: World, tmp_path: Path) -> None:
    copy = tmp_path / "world"
    shutil.copytree(world.root, copy, symlinks=True)
    run_copy = copy / world.run.relative_to(world.root)
    target = {"data": copy / "data", "runs": copy / "runs", "run": run_copy, "results": copy / "results"}[what]
    if what == "data":
        shutil.rmtree(copy / "data" / "toy-reorder")  # so that prepare has to write
    args = {
        "data": ["prepare", "toy-reorder"],
        "runs": ["train", "nmt", "--recipe", RECIPE],
        "run": ["eval", "nmt", "--run", str(run_copy)],
        "results": ["record", "nmt", "--run", str(run_copy)],
    }[what]
    try:
        _readonly(target)
        before = tree_digest(copy)
        code, err = _cli_as_user("--data-dir", str(copy / "data"), "--runs-dir", str(copy / "runs"),
                                 "--results-dir", str(copy / "results"), *args)  # fmt: skip
        assert_one_line_error(code, err)
        assert "permission denied" in err
        assert tree_digest(copy) == before
    finally:
        for p in [target, *target.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)


def _limited(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


def _attn_limited(limit: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("ATTN_RUN_DIR", None)
    return subprocess.run(
        [ATTN_EXE, *args], capture_output=True, text=True, env=env, timeout=600, preexec_fn=_limited(limit)
    )


def test_disk_full_while_writing_a_checkpoint(world: World, tmp_path: Path) -> None:
    """The checkpoint is the largest file a run writes: a size limit below it fails that write alone."""
    limit = (world.run / "checkpoints" / "best.ckpt").stat().st_size // 2
    before = tree_digest(world.root)
    proc = _attn_limited(
        limit, "--data-dir", str(world.data), "--runs-dir", str(tmp_path), "train", "nmt", "--recipe", RECIPE,
        "--set", "train.max_steps=2", "--set", "train.limit_val_batches=1",
    )  # fmt: skip
    assert_one_line_error(proc.returncode, proc.stderr)
    assert "file too large" in proc.stderr
    assert tree_digest(world.root) == before
    written = [p.name for p in tmp_path.rglob("*")]
    assert not [n for n in written if n.endswith(".ckpt") or "~attn-" in n], written
    assert "train_done.json" not in written


def test_disk_full_while_recording_keeps_the_earlier_record(world: World) -> None:
    record = world.results / "nmt" / "toy-reorder" / "tiny-luong-global-general"
    assert (record / "result.json").is_file()
    # re-recording writes the same bytes again, in turn: the largest of them no longer fits
    limit = max(p.stat().st_size for p in record.iterdir()) // 2
    before = tree_digest(world.root)
    proc = _attn_limited(limit, "--results-dir", str(world.results), "record", "nmt", "--run", str(world.run))
    assert_one_line_error(proc.returncode, proc.stderr)
    assert tree_digest(world.root) == before


# ---------------------------------------------------------------------------------------------
# long runs: a diverging loss stops the run and spares its checkpoints


def test_loss_above_the_bound_stops_a_resumed_run_and_keeps_its_checkpoints(world: World, tmp_path: Path) -> None:
    run_copy = tmp_path / "run"
    shutil.copytree(world.run, run_copy)
    ckpts = tree_digest(run_copy / "checkpoints")
    # the tiny model's loss is about 3: a bound of 0.5 is crossed by the first loss of the resumed steps
    code, _, err = run_cli("--data-dir", str(world.data), "train", "nmt", "--resume", str(run_copy),
                           "--set", "train.max_steps=4", "--set", "train.max_epochs=2", "--set", "train.max_loss=0.5")  # fmt: skip
    assert_one_line_error(code, err)
    assert "training diverged at step 2" in err and "train.max_loss=0.5" in err
    assert tree_digest(run_copy / "checkpoints") == ckpts


def test_a_learning_rate_that_explodes_the_loss_stops_the_run(world: World, tmp_path: Path) -> None:
    """lr 1e6 without clipping: the second loss is in the millions (or NaN); the run stops there, and every
    weight it saved is finite (the bad loss never reached the optimiser)."""
    code, _, err = run_cli("--data-dir", str(world.data), "--runs-dir", str(tmp_path), "train", "nmt",
                           "--recipe", RECIPE, "--set", "train.lr=1e6", "--set", "train.grad_clip=0",
                           "--set", "train.checkpoint_every_steps=1")  # fmt: skip
    assert_one_line_error(code, err)
    assert "training diverged at step 1" in err
    run_dir = next(tmp_path.glob("nmt/*/*/*"))
    assert not (run_dir / "train_done.json").exists()
    for ckpt in (run_dir / "checkpoints").glob("*.ckpt"):
        state = torch.load(ckpt, weights_only=False)["state_dict"]
        assert all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point()), ckpt


def test_loss_guard_decides_on_nan_inf_and_the_bound() -> None:
    from attn_cli.guards import LossGuard

    bounded, unbounded = LossGuard(100.0), LossGuard(0.0)
    assert [bounded.bad(v) for v in (3.0, 100.0, 100.5, float("nan"), float("inf"))] == [0, 0, 1, 1, 1]
    assert [unbounded.bad(v) for v in (3.0, 1e30, float("nan"), float("-inf"))] == [0, 0, 1, 1]


def test_every_value_check_names_a_real_field() -> None:
    """A misspelt key in VALUE_CHECKS would never be checked: each must name a field of its section."""
    import dataclasses

    from attn_cli.config import VALUE_CHECKS, TrainConfig
    from attn_cli.registry import MODELS, TASKS
    from data_prep.base import DATASETS

    def names(classes: list[type]) -> set[str]:
        return {f.name for c in classes for f in dataclasses.fields(c)}

    sections = {
        "train": names([TrainConfig]),
        "eval": names([TASKS.get(t).eval_config for t in TASKS.names()]),
        "data": names([TASKS.get(t).data_config for t in TASKS.names()]),
        "model": names([MODELS.get(m).Config for m in MODELS.names()]),
        "prepare": names([DATASETS.get(d).Config for d in DATASETS.names()]),
    }
    missing = [key for key in VALUE_CHECKS if key.split(".", 1)[1] not in sections[key.split(".", 1)[0]]]
    assert missing == []


def test_fault_injection_and_os_error_mapping_refuse_what_they_do_not_know() -> None:
    import errno

    from attn_cli.errors import AttnError, from_os_error
    from attn_cli.trainer import FaultInjection

    with pytest.raises(AttnError, match="ATTN_FAULT_POINT"):
        FaultInjection(3, "checkpoint")
    assert from_os_error(OSError(errno.EIO, "Input/output error")) is None  # a real fault keeps its traceback
    full = from_os_error(OSError(errno.ENOSPC, "No space left on device", "/runs/x/last.ckpt"))
    assert full is not None and str(full).startswith("/runs/x/last.ckpt: no space left on device; ")
