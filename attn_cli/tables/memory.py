"""The memory and reading tables: MemN2N (Sukhbaatar et al. 2015, Table 1 / Table 3), DMN (Kumar et al. 2016,
Table 1), the readers (Hermann et al. 2015, Table 5) and the NTM's tasks (Graves et al. 2014 §4: ``ntm``, with
copy by length in ``ntm-copy`` and associative recall by items in ``ntm-recall``), our records beside the
papers' numbers (the NTM paper prints none: its results are curves).

bAbI cells are test error in % (lower is better). Paper columns of the MemN2N table are
transcribed from Table 1 (1k); of Table 3 (10k) only the joint mean and failed count are
given here. Per-task (non-joint) columns read, in row N, the record of the run trained on
task N alone (``--set data.tasks=N``, recorded under dataset ``babi-1k-qaN``; scripts/babi_per_task.sh
makes a column); their mean and failed-task rows are computed from those 20 records once all exist.
Each paper number's source and verification status: docs/references.md (the BoW, PE and
joint columns are verified; PE LS, PE LS RN and LW per-task cells are from memory).
"""

from __future__ import annotations

from collections.abc import Sequence

from attn_cli.registry import TABLES
from attn_cli.tables.base import Agg, Col, Order, Ref, Row, Table, pick_lowest

# Sukhbaatar et al. 2015, Table 1 (1k training examples), test error %: BoW, PE, PE LS, PE LS RN,
# PE LS RN joint, PE LS LW joint (3 hops)
MEMN2N_1K = {
    1: (0.6, 0.1, 0.2, 0.0, 0.0, 0.1),
    2: (17.6, 21.6, 12.8, 8.3, 11.4, 18.8),
    3: (71.0, 64.2, 58.8, 40.3, 21.9, 31.7),
    4: (32.0, 3.8, 11.6, 2.8, 13.4, 17.5),
    5: (18.3, 14.1, 15.7, 13.1, 14.4, 12.9),
    6: (8.7, 7.9, 8.7, 7.6, 2.8, 2.0),
    7: (23.5, 21.6, 20.3, 17.3, 18.3, 10.1),
    8: (11.4, 12.6, 12.7, 10.0, 9.3, 6.1),
    9: (21.1, 23.3, 17.0, 13.2, 1.9, 1.5),
    10: (22.8, 17.4, 18.6, 15.1, 6.5, 2.6),
    11: (4.1, 4.3, 0.0, 0.9, 0.3, 3.3),
    12: (0.3, 0.3, 0.1, 0.2, 0.1, 0.0),
    13: (10.5, 9.9, 0.3, 0.4, 0.2, 0.5),
    14: (1.3, 1.8, 2.0, 1.7, 6.9, 2.0),
    15: (24.3, 0.0, 0.0, 0.0, 0.0, 1.8),
    16: (52.0, 52.1, 1.6, 1.3, 2.7, 51.0),
    17: (45.4, 50.1, 49.0, 51.0, 40.4, 42.6),
    18: (48.1, 13.6, 10.1, 11.1, 9.4, 9.2),
    19: (89.7, 87.4, 85.6, 82.8, 88.0, 90.6),
    20: (0.1, 0.0, 0.0, 0.0, 0.0, 0.2),
}
MEMN2N_1K_MEAN = (25.1, 20.3, 16.3, 13.9, 12.4, 15.2)
MEMN2N_1K_FAILED = (15, 13, 12, 11, 11, 10)
VARIANTS = (
    ("bow", "BoW", "memn2n-bow"),
    ("pe", "PE", "memn2n-pe"),
    ("pels", "PE LS", "memn2n-pe-ls"),
    ("pelsrn", "PE LS RN", "memn2n-pe-ls-rn"),
    # the joint row as the authors' release trains it (SGD, 30 linear epochs, then 60 halved every 15); the Adam
    # recipe memn2n-pe-ls-rn-joint, with 30 of its 60 epochs linear, keeps its record outside the table
    ("joint", "PE LS RN joint", "memn2n-pe-ls-rn-joint-sgd"),
    # the LW column under the joint row's schedule (the release's SGD, 90 epochs), so the two compare at equal
    # updates; the Adam recipe memn2n-pe-ls-lw-joint (60 epochs, constant rate) was never recorded
    ("lw", "PE LS LW joint", "memn2n-pe-ls-lw-joint-sgd"),
)
JOINT = ("joint", "lw")  # the columns of one joint run each; the others read the run of each task alone


# The joint row's restarts (scripts/babi_seeds.sh memn2n-pe-ls-rn-joint-sgd SEEDS joint): the seeds whose
# three records exist (results/memory/babi-joint-restarts.md), all with the release's unmasked memory (ef0c5d6);
# the ten restarts before it (masked, best 16.3%) are in git history at 17a6611. Seed 42's run (the record
# memn2n-pe-ls-rn-joint-sgd, masked) is not among them: its checkpoint is gone, so it has no validation or
# training record to be picked by.
JOINT_RECIPE = "memn2n-pe-ls-rn-joint-sgd"
JOINT_SEEDS = (1, 2, 3)
JOINT_NAMES = tuple(f"{JOINT_RECIPE}-seed{s}" for s in JOINT_SEEDS)
# The LW joint column, picked the same way from its restarts (scripts/babi_seeds.sh memn2n-pe-ls-lw-joint-sgd
# "1 2 3" joint; results/memory/babi-joint-restarts.md)
LW_RECIPE = "memn2n-pe-ls-lw-joint-sgd"
LW_SEEDS = (1, 2, 3)
LW_NAMES = tuple(f"{LW_RECIPE}-seed{s}" for s in LW_SEEDS)
# The 10k joint column: every 10k joint run with a validation record, the one with the lowest validation mean
# error: Adam, 20 epochs halved every 5, seeds 42, 1, 2, and the release's SGD schedule, seed 42 (the rule fixed
# before the SGD run had finished; results/memory/babi-10k-runs.md). The 60-epoch Adam run
# (@60ep) is the schedule that lost to the 20-epoch one on validation when the recipe was chosen, and stays outside.
TENK_RUNS = {
    "Adam 20 ep., seed 42": "memn2n-pe-ls-rn-joint-10k",
    "Adam 20 ep., seed 1": "memn2n-pe-ls-rn-joint-10k-seed1",
    "Adam 20 ep., seed 2": "memn2n-pe-ls-rn-joint-10k-seed2",
    "SGD (release), seed 42": "memn2n-pe-ls-rn-joint-10k-sgd",
}
TENK_NAMES = tuple(TENK_RUNS.values())


def _mean(values: Sequence[float]) -> float:
    """The mean of a cell's values (per-task errors, or restarts' scores)."""
    return sum(values) / len(values)


def _memn2n_table() -> Table:
    cols = [
        Col(f"{k}1k", h, Ref(dataset="babi-1k", recipe=r), better="min", group="1k") for k, h, r in VARIANTS
    ] + [Col("joint10k", "PE LS RN joint", Ref(dataset="babi-10k", recipe="memn2n-pe-ls-rn-joint-10k"),
             better="min", group="10k")]  # fmt: skip
    rows = []
    # the joint column, as the paper's: the best of the restarts, here picked by validation mean error (issue 29);
    # every row reads the same picked run
    joint_best = pick_lowest("val", JOINT_NAMES, "mean_error")
    lw_best = pick_lowest("val", LW_NAMES, "mean_error")
    tenk_best = pick_lowest("val", TENK_NAMES, "mean_error")
    picked = {"joint1k": joint_best, "lw1k": lw_best, "joint10k": tenk_best}
    for n, paper in MEMN2N_1K.items():
        # per-task columns read the run trained on task n alone (recorded under dataset babi-1k-qaN)
        per_task = {f"{k}1k": Ref(dataset=f"babi-1k-qa{n}") for k, _, _ in VARIANTS if k not in JOINT}
        rows.append(
            Row(
                f"{n}",
                Ref(metric=f"error/qa{n}"),
                paper={f"{k}1k": v for (k, _, _), v in zip(VARIANTS, paper)},
                cells={**per_task, **picked},
            )
        )
    # a per-task column's mean and failed count: computed from its 20 per-task records once all exist
    tasks = tuple(Ref(dataset=f"babi-1k-qa{n}", metric=f"error/qa{n}") for n in MEMN2N_1K)
    per_task_cols = [f"{k}1k" for k, _, _ in VARIANTS if k not in JOINT]
    mean: dict[str, float | str] = {**{f"{k}1k": v for (k, _, _), v in zip(VARIANTS, MEMN2N_1K_MEAN)}, "joint10k": 7.5}
    mean_of = Agg(tasks, _mean)
    rows.append(
        Row(
            "Mean error (%)",
            Ref(metric="mean_error"),
            paper=mean,
            cells={**dict.fromkeys(per_task_cols, mean_of), **picked},
        )
    )
    failed: dict[str, float | str] = {f"{k}1k": v for (k, _, _), v in zip(VARIANTS, MEMN2N_1K_FAILED)}
    failed_of = Agg(tasks, lambda v: float(sum(e > 5.0 for e in v)))
    rows.append(
        Row(
            "Failed tasks (err. > 5%)",
            Ref(metric="failed_tasks"),
            paper=failed,
            cells={**dict.fromkeys(per_task_cols, failed_of), **picked},
        )
    )
    return Table(
        name="memn2n",
        title="End-To-End Memory Networks (Sukhbaatar et al. 2015) Table 1: bAbI test error (%), 3 hops",
        source="Sukhbaatar, Szlam, Weston & Fergus 2015, Table 1 (1k) and Table 3 (10k, joint mean only)",
        ref=Ref(task="memory", split="test"),
        columns=tuple(cols),
        rows=tuple(rows),
        corner="Task",
        budgets="column",
        # Sukhbaatar et al. 2015 Table 1: PE beats bag of words, and PE LS RN beats both; in joint training
        # the RN model beats LW
        orders=(
            Order("PE ≤ BoW (mean, per task)", ("Mean error (%)", "pe1k"), "<=", ("Mean error (%)", "bow1k")),
            Order("PE LS RN ≤ BoW (mean, per task)", ("Mean error (%)", "pelsrn1k"), "<=", ("Mean error (%)", "bow1k")),
            Order("PE LS RN ≤ PE (mean, per task)", ("Mean error (%)", "pelsrn1k"), "<=", ("Mean error (%)", "pe1k")),
            Order("PE LS RN ≤ PE LS LW (mean, joint)", ("Mean error (%)", "joint1k"), "<=", ("Mean error (%)", "lw1k")),
        ),
        note="Ours: CPU runs under the budgets in recipes/memory/*.yaml. PE LS RN joint 1k and PE LS LW joint 1k: as "
        "the authors' release (memn2n-pe-ls-rn-joint-sgd, memn2n-pe-ls-lw-joint-sgd): SGD, 30 linear-start epochs, "
        "then 60 with the rate halved every 15 (90 in all, the same updates for both); the per-task columns Adam at "
        "0.005 for 100 epochs; see docs/memory.md. The two 1k joint columns are, like the paper's, the best of N "
        f"restarts: N = {len(JOINT_SEEDS)} each (seeds {', '.join(map(str, JOINT_SEEDS))}; the budget row: N runs of "
        "the same updates each), the one with the lowest validation mean error (the paper picks the lowest training "
        "error of 10; each rule's pick: `attn table memn2n-joint-restarts`, `memn2n-lw-joint-restarts`). The 10k "
        f"column is the lowest validation mean error among the {len(TENK_NAMES)} 10k joint runs (Adam, 20 epochs "
        "halved every 5, seeds 42, 1 and 2; the release's SGD schedule of the 1k joint rows, seed 42: `attn table "
        "memn2n-10k-runs`); its "
        "mean and failed count are over 19 tasks (qa3's 10k training data is missing here) beside the paper's "
        "20-task mean. Each per-task cell of ours is one seed (N = 1). Since commit 87493ae the PE recipes use the "
        "authors' release position encoding and Matlab's fixed linear-start epochs (20 per task, 30 joint); a cell "
        "recorded before it (its git sha) is of the printed formula and the paper's stopping rule, under which no "
        "run learned qa16 (docs/memory.md). Since commit ef0c5d6 they also run the release's unmasked memory (the "
        "hop softmax over the empty slots too, `model.empty_slots`); a cell recorded before it (its git sha) masked "
        "them (per task 19.8% against 17.0%). '–': not run yet.",
    )


TABLES.add("memn2n", _memn2n_table())

# The paper's restarts (Sukhbaatar et al. 2015, §4.2: "repeated each training 10 times with different random
# initializations, and picked the one with the lowest training error"), shown on the task where they matter most
# per task: qa16 (basic induction), 1.3% in the PE LS RN column. One run per seed below, each recorded three times
# (`attn eval --split train|val|test --record --name memn2n-pe-ls-rn-seedS`), all under the recipe fixed in commit
# 87493ae (the release's position encoding, 20 linear-start epochs); before it no seed learned qa16.
RESTART_TASK = 16
RESTART_SEEDS = (42, *range(1, 10))  # 42: the per-task column's own run (recorded again under its seed's name)


def _restarts_table(
    name: str,
    title: str,
    source: str,
    dataset: str,
    names: dict[int, str] | dict[str, str],
    metric: str,
    paper: tuple[float, float | str],
    note: str,
    train: bool = True,
) -> Table:
    """Seeds of one recipe (or runs of a few, ``names`` keyed by a label), each row its training, validation and
    test error and failed tasks, and the test error of the run each rule picks (``paper``: the paper's error and
    failed count for its pick)."""
    n = len(names)
    rules = (("train", "training error (the paper's choice)"), ("val", "validation error"))[0 if train else 1 :]
    return Table(
        name=name,
        title=title,
        source=source,
        ref=Ref(task="memory", dataset=dataset, metric=metric),
        columns=(
            *((Col("train", "Training error", Ref(split="train"), better="min", paper=False),) if train else ()),
            Col("val", "Validation error", Ref(split="val"), better="min", paper=False),
            Col("test", "Test error", Ref(split="test"), better="min"),
            Col(
                "failed",
                "Failed tasks (test, err. > 5%)",
                Ref(split="test", metric="failed_tasks"),
                digits=0,
                better="min",
            ),
        ),  # fmt: skip
        rows=tuple(Row(s if isinstance(s, str) else f"seed {s}", Ref(recipe=r)) for s, r in names.items())
        + tuple(
            Row(
                f"best of {n} by {label}",
                paper={"test": paper[0], "failed": paper[1]} if rule == rules[0][0] else {},
                cells=dict.fromkeys(("test", "failed"), pick_lowest(rule, tuple(names.values()), metric)),
            )
            for rule, label in rules
        ),
        corner="Run",
        no_orders="a protocol table: which of N restarts each rule picks, and what it scores; the paper's "
        "numbers for its pick are beside it, and no ordering between models is at stake",
        note=note,
    )


TABLES.add(
    "memn2n-restarts",
    _restarts_table(
        "memn2n-restarts",
        f"MemN2N PE LS RN on bAbI qa{RESTART_TASK} alone: best of N = {len(RESTART_SEEDS)} random restarts, error (%)",
        "Sukhbaatar et al. 2015, §4.2 (best of 10 restarts by training error) and Table 1 (PE LS RN, task 16)",
        f"babi-1k-qa{RESTART_TASK}",
        {s: f"memn2n-pe-ls-rn-seed{s}" for s in RESTART_SEEDS},
        f"error/qa{RESTART_TASK}",
        (MEMN2N_1K[RESTART_TASK][3], 0.0),
        "Each seed is one 100-epoch run (2,900 updates of 32) of `memory/memn2n-pe-ls-rn` on task 16 alone "
        "(`--set data.tasks=16 --set train.seed=S`), validation on whole held-out stories; a 'best of N' row is "
        "the test error of the seed its criterion picks, computed from the records (docs/memory.md). N = 10, as "
        "the paper. All ten re-run on 2026-12-06 under the recipe fixed in commit 87493ae (the release's position "
        "encoding, 20 linear-start epochs; before it no seed learned basic induction: docs/memory.md); seed 42 "
        "repeats the per-task column's run. Eight seeds find the chain; seeds 6 and 8 stay on the plateau of a "
        "model that names some colour of the story, the failure the paper's best of 10 guards against.",
    ),
)


def _joint_restarts(
    name: str, column: str, col: int, recipe: str, seeds: Sequence[int], names: Sequence[str], model: str, extra: str
) -> Table:
    """The restarts of a 1k joint column (``col`` indexes the paper's Table 1 columns), each seed recorded on
    test, validation and training by scripts/babi_seeds.sh."""
    return _restarts_table(
        name,
        f"MemN2N {column} on bAbI 1k: best of N = {len(seeds)} random restarts, mean error (%) over the 20 tasks",
        f"Sukhbaatar et al. 2015, §4.2 (best of 10 restarts by training error) and Table 1 ({column}: mean and "
        "failed tasks)",
        "babi-1k",
        dict(zip(seeds, names)),
        "mean_error",
        (MEMN2N_1K_MEAN[col], MEMN2N_1K_FAILED[col]),
        f"Each seed is one run of `memory/{recipe}` ({model}the authors' release schedule: SGD, 30 linear-start "
        "epochs, then 60 with the rate halved every 15; 90 epochs = 50,670 updates of 32) with `--set train.seed=S`, "
        f"made and recorded on test, validation and training by `scripts/babi_seeds.sh {recipe} SEEDS joint`; a "
        "'best of N' row is the test error of the seed its criterion picks, computed from the records "
        f"(scripts/babi_best_of.py prints the same picks). N = {len(seeds)} (the paper's: 10){extra}. The validation "
        f"pick is the {column} column of `attn table memn2n`; commands and CPU seconds: results/memory/babi-joint-restarts.md.",
    )


TABLES.add(
    "memn2n-joint-restarts",
    _joint_restarts(
        "memn2n-joint-restarts",
        "PE LS RN joint",
        4,
        JOINT_RECIPE,
        JOINT_SEEDS,
        JOINT_NAMES,
        "",
        " (every seed from ef0c5d6, the release's unmasked memory; the ten masked restarts before it picked 16.3%: "
        "docs/memory.md)",
    ),
)
TABLES.add(
    "memn2n-lw-joint-restarts",
    _joint_restarts(
        "memn2n-lw-joint-restarts",
        "PE LS LW joint",
        5,
        LW_RECIPE,
        LW_SEEDS,
        LW_NAMES,
        "layer-wise tying with the map H, no random noise; ",
        "",
    ),
)
TABLES.add(
    "memn2n-10k-runs",
    _restarts_table(
        "memn2n-10k-runs",
        "MemN2N PE LS RN joint on bAbI 10k: the runs the 10k column picks from, mean error (%) over 19 tasks",
        "Sukhbaatar et al. 2015, §4.2 (best of 10 restarts by training error) and Table 3 (10k, PE LS RN joint: "
        "mean error)",
        "babi-10k",
        TENK_RUNS,
        "mean_error",
        (7.5, ""),
        "Runs of `memory/memn2n-pe-ls-rn-joint-10k` (Adam at 0.005, 20 epochs, the rate halved every 5; 106,880 "
        "updates of 32) under seeds 42, 1 and 2, and one of `memory/memn2n-pe-ls-rn-joint-10k-sgd` (the authors' "
        "release schedule of the 1k joint rows: SGD, 30 linear-start epochs, then 60 halved every 15; 480,960 "
        "updates of 32), each recorded on test and validation from one checkpoint. A 'best of N' row is the test "
        "error of the run its criterion picks; the validation pick is the 10k column of `attn table memn2n` (the "
        "rule fixed before the SGD run finished). No training-split records: 171,000 questions' "
        "predictions each (0.8 MB gzipped) would not fit results/' 30 MB, so the paper's rule (the lowest training "
        "error) is not shown. Means and failed counts are over the 19 tasks whose "
        "10k training data we have (qa3's is missing); the paper's 7.5 is over 20 and gives no failed count here. "
        "Commands and CPU seconds: results/memory/babi-10k-runs.md.",
        train=False,
    ),
)

# Kumar et al. 2016, Table 1: test accuracy (%) of MemNN (Weston et al., strong supervision) and the DMN
DMN_ACC = {
    1: (100, 100), 2: (100, 98.2), 3: (100, 95.2), 4: (100, 100), 5: (98, 99.3), 6: (100, 100),
    7: (85, 96.9), 8: (91, 96.5), 9: (100, 100), 10: (98, 97.5), 11: (100, 99.9), 12: (100, 100),
    13: (100, 99.8), 14: (99, 100), 15: (100, 100), 16: (100, 99.4), 17: (65, 59.6), 18: (95, 95.3),
    19: (36, 34.5), 20: (100, 100),
}  # fmt: skip
DMN_TASKS = tuple(Ref(dataset=f"babi-1k-qa{n}", metric=f"error/qa{n}") for n in DMN_ACC)
# the joint supervised DMN's 40-epoch runs, one per seed (42, then 1)
DMN_40EP = ("dmn-supervised@40ep", "dmn-supervised@40ep-seed1")


def _seed_mean(names: Sequence[str], metric: str) -> Agg:
    """The mean of ``metric`` over the runs ``names`` (restarts of one recipe), from their records."""
    return Agg(tuple(Ref(recipe=n, metric=metric) for n in names), _mean)


TABLES.add(
    "dmn",
    Table(
        name="dmn",
        title="Dynamic Memory Networks (Kumar et al. 2016) Table 1: bAbI 1k test error (%)",
        source="Kumar et al. 2016, Table 1 (accuracies, shown here as 100 − accuracy)",
        ref=Ref(task="memory", dataset="babi-1k", split="test"),
        columns=(
            Col("memnn", "MemNN", better="min", ours=False),
            # the paper's DMN is trained per task with gate supervision: our like-for-like column sits beside it
            Col("dmn", "DMN + gate supervision, per task", Ref(recipe="dmn-supervised"), better="min"),
            Col(
                "dmn_ss",
                "DMN + gate supervision, joint",
                Ref(recipe="dmn-supervised"),
                better="min",
                paper=False,
            ),
            Col(
                "dmn_weak", "DMN, weak supervision (no gate loss), joint", Ref(recipe="dmn"), better="min", paper=False
            ),
            # the same joint recipe for all of its 40 epochs: no partner at that budget, so no ordering reads it
            Col(
                "dmn_ss40",
                "DMN + gate supervision, joint, the recipe's 40 epochs",
                Ref(recipe="dmn-supervised@40ep"),
                better="min",
                paper=False,
            ),
            # the same run at another seed, and the two seeds' mean (computed from both records, cell by cell)
            Col(
                "dmn_ss40s1",
                "the same, seed 1",
                Ref(recipe="dmn-supervised@40ep-seed1"),
                better="min",
                paper=False,
            ),
            Col(
                "dmn_ss40m",
                "the same, mean of seeds 42 and 1",
                Ref(recipe="dmn-supervised@40ep"),
                better="min",
                digits=2,  # the mean of two one-decimal errors, and the 10% line read at its precision
                paper=False,
            ),
        ),
        rows=tuple(
            Row(
                f"{n}",
                Ref(metric=f"error/qa{n}"),
                paper={"memnn": round(100 - a, 1), "dmn": round(100 - b, 1)},
                cells={"dmn": Ref(dataset=f"babi-1k-qa{n}"), "dmn_ss40m": _seed_mean(DMN_40EP, f"error/qa{n}")},
            )
            for n, (a, b) in DMN_ACC.items()
        )
        + (
            Row(
                "Mean error (%)",
                Ref(metric="mean_error"),
                paper={"memnn": 6.7, "dmn": 6.4},
                cells={
                    "dmn": Agg(DMN_TASKS, _mean),
                    "dmn_ss40m": _seed_mean(DMN_40EP, "mean_error"),
                },
            ),
            Row(
                "Failed tasks (err. > 5%)",
                Ref(metric="failed_tasks"),
                cells={
                    "dmn": Agg(DMN_TASKS, lambda v: float(sum(e > 5.0 for e in v))),
                    "dmn_ss40m": _seed_mean(DMN_40EP, "failed_tasks"),
                },
            ),
        ),
        corner="Task",
        budgets="column",
        # Kumar et al. 2016 §5.1: the DMN's 6.4% is with supporting-fact supervision of the gates; without it
        # (answers only) the episodic memory does not learn which facts to attend to
        orders=(
            Order(
                "gate supervision < weak supervision (mean, joint)",
                ("Mean error (%)", "dmn_ss"),
                "<",
                ("Mean error (%)", "dmn_weak"),
            ),
        ),
        note="The paper's DMN column (per task) uses supporting-fact supervision of the gates; our `dmn` column "
        "is the weakly supervised variant (answers only), `dmn-supervised` supervises the gates of pass t with the "
        "t-th supporting fact and adds the gates' cross-entropy, summed over a question's facts and passes, to the "
        "answer's (§3). Per task: 40 epochs on the task alone, one seed (42); other seeds do not change which of "
        "qa8, 9, 10 and 18 fail (docs/memory.md), and qa2, 3, 17 and 19 alone hold 11.6 points of the mean. The "
        "paper trains per task and has no joint column; our two joint columns (all 20 tasks at once) ran the same "
        "5,000 updates of 32 (8.9 of the recipe's 40 epochs) from committed code, stopped by `--set "
        "train.max_steps=5000`, so they are compared with each other, not with the paper; the last three columns "
        "are the joint supervised recipe trained for all of its 40 epochs at seeds 42 and 1 (two runs, both from a "
        "clean clone at one thread) and, cell by cell, the mean of the two (no weak run at that budget, so no "
        "ordering).",
    ),
)

TABLES.add(
    "reader",
    Table(
        name="reader",
        title="Teaching Machines to Read and Comprehend (Hermann et al. 2015) Table 5: cloze accuracy (%)",
        source="Hermann et al. 2015, Table 5 (CNN); ours: the Multi30k cloze set (4 captions answer a 5th)",
        ref=Ref(task="reader", dataset="cloze-multi30k", metric="accuracy"),
        columns=(
            Col("valid", "Valid", Ref(split="val"), better="max"),
            Col("test", "Test", Ref(split="test"), better="max"),
        ),
        rows=(
            Row("Deep LSTM Reader (d ||| q)", Ref(recipe="deep-lstm-reader"), paper={"valid": 55.0, "test": 57.0}),
            Row("Deep LSTM Reader (q ||| d)", Ref(recipe="deep-lstm-reader-qd")),
            Row("Uniform Reader", Ref(recipe="uniform-reader"), paper={"valid": 39.0, "test": 39.4}),
            Row("Attentive Reader", Ref(recipe="attentive-reader"), paper={"valid": 61.6, "test": 63.0}),
            Row("Impatient Reader", Ref(recipe="impatient-reader"), paper={"valid": 61.8, "test": 63.8}),
        ),
        # Hermann et al. 2015 Table 5 (test): Impatient ≥ Attentive > Deep LSTM > Uniform, every one above
        # chance (a uniform guess among the document's entities: 10.8% on our test set)
        orders=(
            Order(
                "Impatient ≥ Attentive",
                ("Impatient Reader", "test"),
                ">=",
                ("Attentive Reader", "test"),
                why="the paper's margin is 0.8 points; ours are single runs of 64-unit models at 1,031 updates, and "
                "a single run moves by more: re-run with the same seed and batches on another CPU model (rounding "
                "only: the curves agree to six digits for 300 updates), Impatient went 49.8 → 47.7 and Attentive "
                "50.2 → 50.6 (docs/memory.md).",
            ),
            *(
                Order(
                    f"Attentive > Deep LSTM ({order})",
                    ("Attentive Reader", "test"),
                    ">",
                    (f"Deep LSTM Reader ({order})", "test"),
                )
                for order in ("d ||| q", "q ||| d")
            ),
            *(
                Order(f"Deep LSTM ({order}) > chance", (f"Deep LSTM Reader ({order})", "test"), ">", 10.8)
                for order in ("d ||| q", "q ||| d")
            ),
            Order("Attentive > Uniform", ("Attentive Reader", "test"), ">", ("Uniform Reader", "test")),
        ),
        corner="Model",
        note="Paper: CNN, 256-unit LSTMs trained for days on GPUs; ours: 64-unit models, each row 1,031 updates "
        "of 64 on a CPU (equal budget). Chance (a uniform guess among the document's entities) is 10.6 valid / "
        "10.8 test. The paper's Deep LSTM row does not say which reading order it used.",
    ),
)

# Graves et al. 2014 §4: the five tasks, each scored at its training sizes (the largest), in bits per sequence
NTM_TASK_ROWS = (
    ("Copy (length 20)", "copy", "bits_per_seq/len20"),
    ("Repeat copy (length 10)", "repeat-copy", "bits_per_seq/len10"),
    ("Associative recall (6 items)", "associative-recall", "bits_per_seq/len6"),
    ("Dynamic N-grams (200 bits)", "ngrams", "bits_per_seq"),
    ("Priority sort (20 vectors)", "priority-sort", "bits_per_seq"),
)
NTM_MODELS = (("ntm", "NTM, LSTM controller", "ntm"), ("ff", "NTM, feed-forward controller", "ntm-ff"),
              ("lstm", "LSTM", "ntm-lstm"))  # fmt: skip

NTM_WHY = {  # why an ordering fails where it does: the CPU budgets of these rows (docs/memory.md, NTM)
    "associative-recall": "1,500 updates each: only the feed-forward NTM has clearly left chance (18 bits); the "
    "paper trains for tens of thousands of sequences",
    "ngrams": "60 updates each (the CPU budget; ~2 CPU s per update for the three models together, so a longer "
    "run did not fit): all three are still near the start of training, far above the Bayes-optimal floor",
    "repeat-copy": "200 updates each (the CPU budget): the LSTM-controlled NTM and the LSTM are still on the "
    "initial plateau (validation 262-264 bits at lengths 1-10 at every evaluation), so 0.3 bits of 477 is "
    "noise; the NTM's copy left its plateau only after ~4,000 updates",
}

TABLES.add(
    "ntm",
    Table(
        name="ntm",
        title="Neural Turing Machine (Graves et al. 2014) §4: test cost per sequence (bits) on the paper's tasks",
        source="Graves, Wayne & Danihelka 2014, Fig. 3, 7, 10, 13, 18 (learning curves; no numbers printed)",
        ref=Ref(task="memory", split="test"),
        columns=tuple(Col(k, h, better="min", paper=False, digits=2) for k, h, _ in NTM_MODELS),
        rows=tuple(
            Row(
                label,
                Ref(dataset=f"ntm-{kind}", metric=metric),
                cells={k: Ref(recipe=f"{prefix}-{kind}") for k, _, prefix in NTM_MODELS},
            )
            for label, kind, metric in NTM_TASK_ROWS
        )
        + (
            Row(
                "Dynamic N-grams: Bayes-optimal estimator (Eq. 10)",
                Ref(dataset="ntm-ngrams", metric="optimal_bits_per_seq"),
                cells={k: Ref(recipe=f"{prefix}-ngrams") for k, _, prefix in NTM_MODELS},
            ),
        ),
        corner="Task",
        budgets="column",  # columns are the models, rows the tasks (one run per cell)
        # Graves et al. 2014 §4: both NTMs learn every task faster and reach a lower cost than the LSTM
        orders=tuple(
            Order(
                f"{name} < LSTM ({label.split(' (')[0]})",
                (label, col),
                "<",
                (label, "lstm"),
                why=NTM_WHY.get(kind, ""),
            )
            for label, kind, _ in NTM_TASK_ROWS
            if kind != "priority-sort"  # all three at chance (128 bits) after 150 updates: a difference is noise
            for col, name in (("ntm", "NTM (LSTM)"), ("ff", "NTM (feed-forward)"))
        ),
        note="Lower is better; 0 is a perfect answer, except on N-grams, whose floor is the Bayes-optimal "
        "estimator's cost (the last row, the same test sequences in every column). The paper prints no "
        "numbers; read off its curves (unverified): its NTMs reach ~0 on copy, repeat copy and associative "
        "recall, come close to the optimum on N-grams and fall far below the LSTM on priority sort. The models of one task are trained for the same number of "
        "updates (each record's budget: docs/memory.md). Priority sort declares no ordering yet: after 150 updates all "
        "three models are at chance (128 bits), so which is lower is noise. '–': not run yet (the feed-forward "
        "NTM's copy at the other two's 50,000 updates, over an hour of a CPU core; docs/memory.md, NTM).",
    ),
)

TABLES.add(
    "ntm-copy",
    Table(
        name="ntm-copy",
        title="Neural Turing Machine (Graves et al. 2014) Fig. 4-5: copy, wrong bits per sequence by test length",
        source="Graves, Wayne & Danihelka 2014, Fig. 4-5 (trained on lengths 1-20; no numbers printed)",
        ref=Ref(task="memory", dataset="ntm-copy", split="test"),
        columns=tuple(
            Col(f"len{n}", f"len {n}", Ref(metric=f"bit_errors/len{n}"), better="min", paper=False, digits=2)
            for n in range(10, 130, 10)
        ),
        rows=tuple(Row(h, Ref(recipe=f"{prefix}-copy")) for _, h, prefix in NTM_MODELS)
        + (Row("NTM, LSTM controller, RMSProp at batch 1 (the paper's optimiser)", Ref(recipe="ntm-copy-rmsprop")),),
        corner="Model",
        # Fig. 4-5: the NTM copies sequences longer than its training lengths (1-20) far better than the LSTM
        orders=tuple(
            Order(f"NTM < LSTM at length {n}", ("NTM, LSTM controller", f"len{n}"), "<", ("LSTM", f"len{n}"))
            for n in (30, 50, 120)
        ),
        note="Output bits wrong after thresholding at 0.5, per sequence of 8-bit vectors (8 × length bits, plus "
        "the unused marker channel). Trained on lengths 1-20 only: past 20 is generalisation. The paper's NTM "
        "copies up to 120 with a few errors (Fig. 4); its LSTM fails past 20 (Fig. 5). The NTM and LSTM rows are "
        "trained for the recipe's 50,000 updates of 16 (800,000 sequences), the feed-forward NTM too (its train time "
        "counts only the segment after a resume: the first, SIGKILLed, ran 2,706 s to the checkpoint it resumed "
        "from, by its log; docs/memory.md); the RMSProp row is one sequence per update for the "
        "minutes its record states, far from the paper's ~1M sequences (docs/memory.md, NTM).",
    ),
)

TABLES.add(
    "ntm-recall",
    Table(
        name="ntm-recall",
        title="Neural Turing Machine (Graves et al. 2014) Fig. 11: associative recall, bits per sequence by items",
        source="Graves, Wayne & Danihelka 2014, Fig. 11 (trained on 2-6 items; no numbers printed)",
        ref=Ref(task="memory", dataset="ntm-associative-recall", split="test"),
        columns=tuple(
            Col(f"len{n}", f"{n} items", Ref(metric=f"bits_per_seq/len{n}"), better="min", paper=False, digits=2)
            for n in (2, 4, 6, 8, 10, 12, 15, 20)
        ),
        rows=tuple(Row(h, Ref(recipe=f"{prefix}-associative-recall")) for _, h, prefix in NTM_MODELS),
        corner="Model",
        # Fig. 11: both NTMs recall from longer lists than they were trained on; the LSTM does not
        orders=tuple(
            Order(
                f"{h} < LSTM at {n} items", (h, f"len{n}"), "<", ("LSTM", f"len{n}"), why=NTM_WHY["associative-recall"]
            )
            for h in ("NTM, LSTM controller", "NTM, feed-forward controller")
            for n in (6, 12)
        ),
        note="Trained on 2-6 items; more is generalisation (the paper's NTMs stay near 0 well past 6 items, its "
        "LSTM does not).",
    ),
)
