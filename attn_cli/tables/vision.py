"""The visual attention tables (RAM, STN, DRAW) with the papers' numbers beside our MNIST runs.

Paper numbers: Mnih et al. (NIPS 2014) Tables 1-2 (the NIPS version: 1.12% for 6 glimpses on 28×28;
arXiv v1 reported 1.29%); Jaderberg et al. (NIPS 2015) Table 1 (distorted MNIST, error %);
Gregor et al. (ICML 2015) Tables 1-2. Ours: the recipes under recipes/vision, trained under the
CPU budget stated in each record (results/vision/<dataset>/<recipe>/result.json).
Each paper number's source and verification status: docs/references.md.
"""

from __future__ import annotations

from attn_cli.registry import TABLES
from attn_cli.tables.base import Col, Order, Ref, Row, Table

V = Ref(task="vision", split="test", metric="error")


def _c(dataset: str, recipe: str) -> Ref:
    return Ref(dataset=dataset, recipe=recipe)


def _ram28_with_mc(
    label: str, record: str, mc: str = "the same, Monte-Carlo evaluation (10 sampled trajectories)"
) -> tuple[Row, Row]:
    """A RAM run on 28×28 MNIST scored twice: the policy's mean path (``record``) and ``record+mc10`` (``mc``)."""
    return (
        Row(label, paper={"m28": 1.12}, cells={"m28": _c("mnist", record)}, key=record),
        Row(mc, paper={"m28": 1.12}, cells={"m28": _c("mnist", f"{record}+mc10")}, key=f"{record}+mc10"),
    )


def _ram_cluttered_with_mc(label: str, record: str) -> tuple[Row, Row]:
    """A RAM run with random first glimpses on 60×60 cluttered MNIST scored twice: the mean path and ``record+mc10``."""
    return (
        Row(label, paper={"cl60": 4.08}, cells={"cl60": _c("mnist-cluttered-60", record)}),
        Row(RANDOM_START_MC, paper={"cl60": 4.08}, cells={"cl60": _c("mnist-cluttered-60", f"{record}+mc10")}),
    )


RANDOM_START_MC = (
    "the same, Monte-Carlo evaluation: 10 trajectories, each from its own random first glimpse (60 glimpses per image)"
)


ERR = dict(better="min", digits=2)


def _ram6_row(suffix: str, col: str, dataset: str, record: str) -> Row:
    """RAM with 6 glimpses on 28×28 (``ram-28-6g<suffix>``) and on one 60×60 set (``record`` in ``col``)."""
    return Row(
        "RAM, 6 glimpses (8×8, 1 scale on 28×28; 12×12, 3 scales on 60×60)",
        paper={"m28": 1.12, col: {"tr60": 1.22, "cl60": 4.08}[col]},
        cells={"m28": _c("mnist", f"ram-28-6g{suffix}"), col: _c(dataset, record)},
        key=f"ram-6g{suffix}",
    )


TABLES.add(
    "ram",
    Table(
        name="ram",
        title="Mnih et al. (2014) Tables 1-2: RAM vs FC/CNN on MNIST 28×28, 60×60 translated and cluttered (error %)",
        source="Mnih, Heess, Graves & Kavukcuoglu, NIPS 2014, Table 1(a,b) and 2(a) (NIPS version)",
        ref=V,
        corner="Model",
        columns=(
            Col("m28", "28×28", **ERR),
            Col("tr60", "60×60 translated", **ERR),
            Col("cl60", "60×60 cluttered", **ERR),
        ),
        rows=(
            Row(
                "FC, 2 layers (256 hiddens each)",
                key="fc",
                paper={"m28": 1.69, "tr60": 2.63, "cl60": 11.96},  # cl60 was 11.63 (from memory)
                cells={
                    "m28": _c("mnist", "fc-28"),
                    "tr60": _c("mnist-translated-60", "fc-60-translated"),
                    "cl60": _c("mnist-cluttered-60", "fc-60-cluttered"),
                },
            ),
            Row(
                "Convolutional, 2 layers",
                key="cnn",
                paper={"m28": 1.21, "tr60": 1.62, "cl60": 8.09},
                cells={
                    "m28": _c("mnist", "cnn-28"),
                    "tr60": _c("mnist-translated-60", "cnn-60-translated"),
                    "cl60": _c("mnist-cluttered-60", "cnn-60-cluttered"),
                },
            ),
            *[
                Row(f"RAM, {g} glimpses, 8×8, 1 scale", paper={"m28": p}, cells={"m28": _c("mnist", f"ram-28-{g}g")})
                for g, p in ((2, 3.79), (3, 1.51), (4, 1.54), (5, 1.34), (6, 1.12), (7, 1.07))
            ],
            *[
                Row(
                    f"RAM, {g} glimpses, 12×12, 3 scales",
                    paper={"tr60": t, "cl60": c},
                    cells={
                        "tr60": _c("mnist-translated-60", f"ram-60-translated-{g}g"),
                        "cl60": _c("mnist-cluttered-60", f"ram-60-cluttered-{g}g"),
                    },
                )
                for g, t, c in ((4, 1.54, 4.96), (6, 1.22, 4.08), (8, 1.2, 4.04))
            ],
            Row("60 minutes on one CPU thread (the plateau rows: the schedule's old epoch-end stepping)", section=True),
            _ram6_row("@60min", "cl60", "mnist-cluttered-60", "ram-60-cluttered-6g@60min"),
            Row(
                "RAM, 6 glimpses, 8×8, 1 scale: learning rate halved on plateaus, 30 minutes",
                paper={"m28": 1.12},
                cells={"m28": _c("mnist", "ram-28-6g@30min-plateau")},
            ),
            Row(
                "RAM, 6 glimpses, 12×12, 3 scales: learning rate halved on plateaus, 30 minutes",
                paper={"tr60": 1.22},
                cells={"tr60": _c("mnist-translated-60", "ram-60-translated-6g@30min")},
            ),
            Row(
                "60 minutes on one CPU thread, compiled (train.compile), halved on plateaus down to 1e-5 (old stepping)",
                section=True,
            ),
            _ram6_row("@60min-compiled", "tr60", "mnist-translated-60", "ram-60-translated-6g@60min-compiled"),
            Row(
                "78 minutes on one CPU thread under heavy load, σ = 0.17, fresh translations / clutter every batch, "
                "the plateau schedule's old stepping (results/plateau-audit.md)",
                section=True,
            ),
            _ram6_row("@78min", "cl60", "mnist-cluttered-60", "ram-60-cluttered-6g@78min-resample"),
            Row(
                "Convolutional, 2 layers, on 28×28 for the same 32,811 updates as the RAM row above",
                paper={"m28": 1.21},
                cells={"m28": _c("mnist", "cnn-28@32811steps")},
                key="cnn@32811",
            ),
            Row(
                "the same, Monte-Carlo evaluation: class probabilities averaged over 10 sampled trajectories",
                paper={"m28": 1.12, "cl60": 4.08},
                cells={
                    "m28": _c("mnist", "ram-28-6g@78min+mc10"),
                    "cl60": _c("mnist-cluttered-60", "ram-60-cluttered-6g@78min-resample+mc10"),
                },
            ),
            Row(
                "RAM, 6 glimpses, 12×12, 3 scales: the cluttered run resumed to 98 minutes",
                paper={"cl60": 4.08},
                cells={"cl60": _c("mnist-cluttered-60", "ram-60-cluttered-6g@98min-resample")},
            ),
            Row(
                "the same, Monte-Carlo evaluation (10 sampled trajectories)",
                paper={"cl60": 4.08},
                cells={"cl60": _c("mnist-cluttered-60", "ram-60-cluttered-6g@98min-resample+mc10")},
            ),
            Row(
                "32,811 updates on one CPU thread (the CNN row's count), σ = 0.17, the plateau schedule stepped once per "
                "validation (every 1,000 updates, patience 3, floor 1e-5); the train time shown is the second "
                "segment's only (updates 20,613-32,811): the first segment's 40 minutes, ended by SIGTERM and "
                "resumed, were not added to the record (docs/vision.md, RAM)",
                section=True,
            ),
            *_ram28_with_mc(
                "RAM, 6 glimpses, 8×8, 1 scale: the learning rate halved after 3 validations without improvement",
                "ram-28-6g@32811steps",
            ),
            Row(
                "86,000 updates of 128 on one CPU thread (200 epochs, ram-28-6g-200ep: a public re-implementation's "
                "settings, Adam 3e-4, the rate cut tenfold after 20 epochs without a better validation error, floor "
                "1e-6), σ = 0.17 (docs/vision.md, RAM)",
                section=True,
            ),
            *_ram28_with_mc("RAM, 6 glimpses, 8×8, 1 scale: 200 epochs of 128", "ram-28-6g-200ep"),
            Row(
                "32,811 updates of 64 on one CPU thread, the schedule of the 32,811-update rows above "
                "(ram-28-6g-random-start): each sampled trajectory's first glimpse drawn uniformly over the image and "
                "REINFORCE weighted 0.01 in the hybrid loss, as a public re-implementation (kevinzakka's); the mean path "
                "starts at the centre; the last two pairs change one of the two back (docs/vision.md, RAM)",
                section=True,
            ),
            *_ram28_with_mc(
                "RAM, 6 glimpses, 8×8, 1 scale: random first glimpse, REINFORCE × 0.01",
                "ram-28-6g-random-start",
                RANDOM_START_MC,
            ),
            *_ram28_with_mc(
                "RAM, 6 glimpses, 8×8, 1 scale: random first glimpse, REINFORCE × 1 (the paper's weight)",
                "ram-28-6g-random-start@reinforce1",
                RANDOM_START_MC,
            ),
            *_ram28_with_mc(
                "RAM, 6 glimpses, 8×8, 1 scale: first glimpse at the centre, REINFORCE × 0.01",
                "ram-28-6g-random-start@centre",
            ),
            Row(
                "65,622 updates of 64 on one CPU thread (twice the budget above), ram-28-6g-random-start otherwise "
                "unchanged: random first glimpses, REINFORCE × 0.01, the same schedule (docs/vision.md, RAM)",
                section=True,
            ),
            *_ram28_with_mc(
                "RAM, 6 glimpses, 8×8, 1 scale: random first glimpse, REINFORCE × 0.01, 65,622 updates",
                "ram-28-6g-random-start@65622steps",
                RANDOM_START_MC,
            ),
            Row(
                "60×60 cluttered, fresh clutter every batch: 16,994 updates of 64 on one CPU thread, the 78-minute "
                "cluttered row's count and schedule, with random first glimpses and REINFORCE × 0.01 "
                "(ram-60-cluttered-6g with model.first_glimpse=uniform, model.reinforce_weight=0.01)",
                section=True,
            ),
            *_ram_cluttered_with_mc(
                "RAM, 6 glimpses, 12×12, 3 scales: random first glimpse, REINFORCE × 0.01",
                "ram-60-cluttered-6g@random-start",
            ),
            Row(
                "60×60 cluttered, fresh clutter every batch: 100,000 updates of 64 on one CPU thread (the same settings, "
                "validation every 2,000 updates; the best, at 92,000, scored)",
                section=True,
            ),
            *_ram_cluttered_with_mc(
                "RAM, 6 glimpses, 12×12, 3 scales: random first glimpse, REINFORCE × 0.01, 100,000 updates",
                "ram-60-cluttered-6g@random-start-100k",
            ),
            Row(
                "60×60 cluttered, fresh clutter every batch: 140,000 updates of 64 on one CPU thread (the same settings, "
                "validation every 1,000 updates, so the plateau schedule halves the rate after 4,000 updates without "
                "a better validation error instead of 8,000; the best checkpoint scored)",
                section=True,
            ),
            *_ram_cluttered_with_mc(
                "RAM, 6 glimpses, 12×12, 3 scales: random first glimpse, REINFORCE × 0.01, 140,000 updates",
                "ram-60-cluttered-6g@random-start-140k",
            ),
            Row("5.3 minutes on one H200 GPU (scripts/gpu_session.sh, PLAN=vision)", section=True),
            Row(
                "RAM, 6 glimpses, 8×8, 1 scale",
                paper={"m28": 1.12},
                cells={"m28": _c("mnist", "ram-28-6g@gpu")},
                key="ram-28-6g@gpu",
            ),
        ),
        # Mnih et al. 2014 §4.1: RAM beats the FC and convolutional networks on every set, and the CNN the FC
        orders=(
            Order(
                "RAM (6 glimpses) < CNN on 28×28",
                ("RAM, 6 glimpses, 8×8, 1 scale", "m28"),
                "<",
                ("cnn", "m28"),
                why="6,001 updates each, the CNN's 7-minute budget: the CNN is near its final error within two "
                "epochs while REINFORCE is still training RAM's glimpse policy (the longer RAM rows below)",
            ),
            Order("CNN < FC on 28×28", ("cnn", "m28"), "<", ("fc", "m28")),
            Order(
                "RAM (6 glimpses) < CNN on 28×28, equal updates",
                ("ram-6g@78min", "m28"),
                "<",
                ("cnn@32811", "m28"),
                why="REINFORCE trains the glimpse policy far more slowly than backpropagation trains the CNN: at "
                "32,811 updates RAM's validation error had flattened at 2.5-2.8% after the plateau schedule cut the "
                "rate six times, five of them on stale scores (the old epoch-end stepping; once per validation it "
                "would have cut once, at 29,999: results/plateau-audit.md), where the paper's runs are several "
                "times longer",
            ),
            Order(
                "RAM (6 glimpses) < CNN on 28×28, the schedule stepped once per validation",
                ("ram-28-6g@32811steps", "m28"),
                "<",
                ("cnn@32811", "m28"),
                why="stepped once per validation the schedule halved the rate four times (after the validations at "
                "about 12,000, 20,000, 26,000 and 31,000 updates) and RAM's validation error flattened at 2.5-3.0% "
                "(best 2.48% at 26,998): the fixed schedule did not close the gap; the paper's runs are several "
                "times longer (docs/vision.md, RAM)",
            ),
            Order(
                "RAM (6 glimpses) < CNN on 28×28, equal updates: random first glimpses, Monte-Carlo evaluation",
                ("ram-28-6g-random-start+mc10", "m28"),
                "<",
                ("cnn@32811", "m28"),
                why="RAM with a re-implementation's protocol is below the paper's RAM (1.12%), but our CNN after the "
                "same 32,811 updates (0.68%) is far below the paper's CNN (1.21%: its sizes are not given); with one "
                "mean path (6 glimpses) RAM is at 2.07% (1.74% after 65,622 updates; docs/vision.md, RAM)",
            ),
            Order(
                "RAM (6 glimpses) < CNN on 60×60 translated",
                ("RAM, 6 glimpses, 12×12, 3 scales", "tr60"),
                "<",
                ("cnn", "tr60"),
            ),
            Order(
                "RAM (6 glimpses) < CNN on 60×60 cluttered",
                ("RAM, 6 glimpses, 12×12, 3 scales", "cl60"),
                "<",
                ("cnn", "cl60"),
            ),
        ),
        note="Ours: MNIST from the official idx files; translated/cluttered 60×60 generated by `attn prepare` "
        "(seed 1). The first rows ran 7 minutes each on a CPU (the FC and CNN rows one thread each, two runs at a "
        "time), except three re-run from committed code for an update budget: RAM 6 glimpses and FC on 28×28 for "
        "the CNN's 6,001 updates, RAM on 60×60 cluttered for its first record's 4,010 (fresh clutter); the CPU section "
        "60 minutes each (55k cluttered training images), side by side, one thread each (the plateau rows: 30 "
        "minutes). Each run's budget is in its record; see docs/vision.md for how far each got. A Monte-Carlo row "
        "averages the class probabilities of 10 trajectories sampled from the location policy (with 6 glimpses, 60 "
        "per image in all); the paper's rows name their glimpse counts and do not mention averaging over "
        "trajectories.",
    ),
)


STN_KEYS = ("r", "rts", "p", "e")


def _stn_row(label: str, prefix: str, paper: tuple[float, float, float, float]) -> Row:
    keys = STN_KEYS
    names = {k: f"{prefix}-{k}" for k in keys}
    # the RTS pair at equal updates: 20 epochs each on one GPU (17,200 updates); the headline recipe keeps the
    # long name the issue uses, stn-cnn-affine-rts
    names["rts"] = {"cnn": "cnn-rts@gpu", "stn-cnn-aff": "stn-cnn-affine-rts@gpu"}.get(prefix, names["rts"])
    return Row(label, paper=dict(zip(keys, paper)), cells={k: _c(f"mnist-{k}", names[k]) for k in keys})


def _stn_pair(section: str, suffix: str) -> tuple[Row, Row, Row]:
    """A section of RTS pairs: its title, then the records ``cnn-rts<suffix>`` and ``stn-cnn-affine-rts<suffix>``."""
    return (
        Row(section, section=True),
        Row("CNN", paper={"rts": 0.8}, cells={"rts": _c("mnist-rts", f"cnn-rts{suffix}")}, key=f"cnn{suffix}"),
        Row(
            "ST-CNN Aff",
            paper={"rts": 0.5},
            cells={"rts": _c("mnist-rts", f"stn-cnn-affine-rts{suffix}")},
            key=f"st-cnn{suffix}",
        ),
    )


STN_PAIRS = (  # same wall clock, not equal updates: each title gives both update counts
    (
        "Same wall clock: 48 minutes each on one CPU thread, side by side (CNN 5,464 updates, ST-CNN 6,781; the "
        "fixed training set, before the reshuffle fix)",
        "@48min",
    ),
    (
        "Same wall clock: fresh distortions every batch, 5.3 minutes on one H200 GPU, side by side (CNN 29,201 "
        "updates, ST-CNN 23,202: the CNN made more and still loses)",
        "@gpu2",
    ),
)


TABLES.add(
    "stn",
    Table(
        name="stn",
        title="Jaderberg et al. (2015) Table 1: distorted MNIST (error %)",
        source="Jaderberg, Simonyan, Zisserman & Kavukcuoglu, NIPS 2015, Table 1 (left)",
        ref=V,
        corner="Model",
        columns=tuple(Col(k, k.upper(), **ERR) for k in ("r", "rts", "p", "e")),
        rows=(
            _stn_row("FCN", "fcn", (2.1, 5.2, 3.1, 3.2)),
            _stn_row("CNN", "cnn", (1.2, 0.8, 1.5, 1.4)),
            _stn_row("ST-FCN Aff", "stn-fcn-aff", (1.2, 0.8, 1.5, 2.7)),
            _stn_row("ST-FCN Proj", "stn-fcn-proj", (1.3, 0.9, 1.4, 2.6)),
            _stn_row("ST-FCN TPS", "stn-fcn-tps", (1.1, 0.8, 1.4, 2.4)),
            _stn_row("ST-CNN Aff", "stn-cnn-aff", (0.7, 0.5, 0.8, 1.2)),
            _stn_row("ST-CNN Proj", "stn-cnn-proj", (0.8, 0.6, 0.8, 1.3)),
            _stn_row("ST-CNN TPS", "stn-cnn-tps", (0.7, 0.5, 0.8, 1.1)),
            *(row for section, suffix in STN_PAIRS for row in _stn_pair(section, suffix)),
        ),
        # Jaderberg et al. 2015 §4.1: a spatial transformer lowers the error of its network on every distortion
        orders=(
            *(Order(f"ST-CNN Aff < CNN on {k.upper()}", ("ST-CNN Aff", k), "<", ("CNN", k)) for k in STN_KEYS),
            *(Order(f"ST-FCN Aff < FCN on {k.upper()}", ("ST-FCN Aff", k), "<", ("FCN", k)) for k in STN_KEYS),
            *(
                Order(
                    f"ST-CNN Aff < CNN on RTS, same wall clock ({s[1:]})",
                    (f"st-cnn{s}", "rts"),
                    "<",
                    (f"cnn{s}", "rts"),
                    budget="wall clock",
                )
                for _, s in STN_PAIRS
            ),
        ),
        note="Ours: distorted MNIST generated by `attn prepare mnist-{r,rts,p,e}` (seed 1); budgets in each "
        "record. The first block's RTS pair is at equal updates: 20 epochs (17,200 updates of 64) of the fixed "
        "training set each, side by side on one H200 GPU. The other pairs had equal wall time, not equal updates "
        "(their section titles give both counts). The last pair trains on a new draw of the RTS distortions every "
        "batch (data.resample, as the paper's on-line generation) and is scored on the fixed test set.",
    ),
)

TABLES.add(
    "stn-addition",
    Table(
        name="stn-addition",
        title="Jaderberg et al. (2015) MNIST addition: two independently distorted digits, label = their sum (error %)",
        source="Jaderberg et al. 2015, Appendix A (no paper number is compared here: ours only)",
        ref=Ref(task="vision", dataset="mnist-addition", split="test", metric="error"),
        corner="Model",
        columns=(Col("err", "error", better="min", digits=2, paper=False),),
        rows=(
            Row("Equal updates: 5,250 each on one CPU thread, fresh pairs every batch", section=True),
            Row("CNN, 2 input channels", Ref(recipe="cnn-addition@5250steps-resample"), key="cnn@5250"),
            Row("2×ST-CNN Aff (two parallel transformers)", Ref(recipe="stn-addition@35min-resample"), key="2st@5250"),
            Row(
                "Same wall clock: 35 minutes each on one CPU thread, side by side, fresh pairs every batch (CNN "
                "13,721 updates, 2×ST-CNN 5,250)",
                section=True,
            ),
            Row("CNN, 2 input channels", Ref(recipe="cnn-addition@35min-resample"), key="cnn@35min"),
            Row("2×ST-CNN Aff (two parallel transformers)", Ref(recipe="stn-addition@35min-resample"), key="2st@35min"),
        ),
        # Jaderberg et al. 2015 Appendix A: the two-transformer network adds better than the plain CNN
        orders=(
            Order("2×ST-CNN < CNN (equal updates, fresh pairs)", ("2st@5250", "err"), "<", ("cnn@5250", "err")),
            Order(
                "2×ST-CNN < CNN (35 minutes, fresh pairs)",
                ("2st@35min", "err"),
                "<",
                ("cnn@35min", "err"),
                budget="wall clock",
            ),
        ),
        note=(
            "Both pairs train on fresh distortions and partners every batch (data.resample). The first is at equal "
            "updates: the CNN stopped at the 2×ST-CNN's 5,250 (train.max_steps). The second has equal wall time, "
            "in which the 2×ST-CNN makes far fewer updates (it runs two localisation nets besides the "
            "classifier). The earlier 7-minute pair (unequal CPU shares, 4,286 vs 392 updates) is no longer shown; "
            "its records stay in results/. Each record's learning curve: docs/vision.md."
        ),
    ),
)


def _draw_pair(section: str, suffix: str) -> tuple[Row, Row, Row]:
    """A section of DRAW Table 2: its title, then the records ``draw-gen-noattn<suffix>`` and ``draw-gen<suffix>``."""
    return (
        Row(section, section=True),
        Row(
            "DRAW without attention",
            paper={"nll": 87.40},
            cells={"nll": _c("mnist", f"draw-gen-noattn{suffix}")},
            key=f"noattn{suffix}",
        ),
        Row(
            "DRAW (read/write attention)",
            paper={"nll": 80.97},
            cells={"nll": _c("mnist", f"draw-gen{suffix}")},
            key=f"attn{suffix}",
        ),
    )


DRAW_WHY = (
    "at T = 16 the 2×2 read window lets the encoder see 128 filtered values over the whole sequence against "
    "2·784 pixels per step without attention; the gap shrinks with updates (52 → 4 nats from 300 to 7,000) and at "
    "T = 64 (docs/vision.md, 'Equal updates')"
)
DRAW_WHY_25K = (
    "at T = 16 the 2×2 read lets the encoder see 128 filtered values over the whole sequence against 2·784 pixels "
    "per step without attention; at equal updates the gap on validation fell from 52 nats at 300 updates to 15 at "
    "3,000, 4 at 7,000 and 1.3 at 24,000, attention's curve falling twice as fast over the last 6,000 updates "
    "(0.27 against 0.13 nats per 1,000): neither has flattened (docs/vision.md, 'Equal updates'); the paper's "
    "T = 64 needs the GPU"
)
DRAW_PAIRS = (  # (suffix, what the section is, the budget compared at, why the ordering fails where it does)
    ("@25000steps", "T = 16, binarised, 25,000 updates each", "updates", DRAW_WHY_25K),
    ("@2000steps", "T = 16, binarised, 2,000 updates each", "updates", DRAW_WHY),
    ("@50min-fixedbin", "T = 16, binarised, 50 minutes each", "wall clock", ""),
    (
        "@gpu2",
        "T = 64, binarised, GPU, 9.3 minutes each",
        "wall clock",
        "in the same 9.3 minutes attention made 1,532 updates against 4,204 without (an update costs 2.7× on the "
        "GPU at T = 64); at equal updates the gap is 20 nats at 1,500 (docs/vision.md, 'Equal updates')",
    ),
    ("@18min", "T = 16, thresholded, 18 minutes each", "wall clock", DRAW_WHY),
    ("@gpu", "T = 64, thresholded, GPU", "updates", ""),
)


TABLES.add(
    "draw",
    Table(
        name="draw",
        title="Gregor et al. (2015) Tables 1-2: MNIST NLL bound with/without attention; cluttered 100×100 classification",
        source="Gregor, Danihelka, Graves, Rezende & Wierstra, ICML 2015, Table 2 (NLL, nats) and Table 1 (error %)",
        ref=Ref(task="vision", split="test"),
        corner="Model",
        columns=(
            Col("nll", "−log p(x) ≤ (nats)", Ref(metric="nll"), better="min", digits=2),
            Col("err", "100×100 cluttered error (%)", Ref(metric="error"), better="min", digits=2),
        ),
        rows=(
            *_draw_pair(
                "Stochastically binarised (one fixed draw, as the paper's data), equal updates: T = 16, 25,000 "
                "updates each (train.max_steps), one CPU thread each, side by side",
                "@25000steps",
            ),
            *_draw_pair(
                "Stochastically binarised (one fixed draw, as the paper's data), equal updates: T = 16, 2,000 "
                "updates each (train.max_steps), one CPU thread each, side by side",
                "@2000steps",
            ),
            *_draw_pair(
                "Stochastically binarised, same wall clock: T = 16, 50 minutes each on one CPU thread, side by "
                "side (7,013 updates without attention, 11,938 with)",
                "@50min-fixedbin",
            ),
            *_draw_pair(
                "Stochastically binarised, same wall clock: T = 64 (the paper's), 9.3 minutes on one H200 GPU, "
                "side by side (4,204 updates without attention, 1,532 with)",
                "@gpu2",
            ),
            *_draw_pair(
                "Thresholded at 0.5 (bounds not comparable with the paper's), same wall clock: T = 16, 18 minutes "
                "each on one CPU thread, side by side (2,904 updates without attention, 5,101 with)",
                "@18min",
            ),
            *_draw_pair("Thresholded at 0.5: T = 64, 3.2 minutes on one H200 GPU", "@gpu"),
            Row(
                "Classification of 100×100 cluttered MNIST: 2,029 updates of 64 each (the DRAW row's budget), one CPU "
                "thread; RAM on fresh clutter every batch, DRAW and the CNN on the 55,000 fixed training images",
                section=True,
            ),
            Row(
                "Convolutional, 2 layers",
                paper={"err": 14.35},
                cells={"err": _c("mnist-cluttered-100", "cnn-100-cluttered")},
            ),
            Row("RAM, 4 glimpses, 12×12, 4 scales", paper={"err": 9.41}),
            Row(
                "RAM, 8 glimpses, 12×12, 4 scales",
                paper={"err": 8.11},
                cells={"err": _c("mnist-cluttered-100", "ram-100-cluttered-8g")},
            ),
            Row("Differentiable RAM (DRAW read), 4 glimpses, 12×12", paper={"err": 4.18}),
            Row(
                "Differentiable RAM (DRAW read), 8 glimpses, 12×12",
                paper={"err": 3.36},
                cells={"err": _c("mnist-cluttered-100", "draw-cluttered-100")},
            ),
        ),
        # Gregor et al. 2015 Table 2: attention lowers the bound (80.97 vs 87.40); Table 1: DRAM < RAM < CNN
        orders=(
            *(
                Order(
                    f"attention ≤ no attention ({what})",
                    (f"attn{s}", "nll"),
                    "<=",
                    (f"noattn{s}", "nll"),
                    budget=budget,
                    why=why,
                )
                for s, what, budget, why in DRAW_PAIRS
            ),
            Order(
                "differentiable RAM < RAM (8 glimpses)",
                ("Differentiable RAM (DRAW read), 8 glimpses, 12×12", "err"),
                "<",
                ("RAM, 8 glimpses, 12×12, 4 scales", "err"),
            ),
            Order(
                "RAM (8 glimpses) < CNN",
                ("RAM, 8 glimpses, 12×12, 4 scales", "err"),
                "<",
                ("Convolutional, 2 layers", "err"),
                why="2,029 updates are 2.4 epochs: REINFORCE has not yet taught RAM's glimpse policy to find the digit "
                "among eight distractors (validation error 84.5% at 400 updates, 79.5% at 2,000), while the CNN left "
                "chance between 1,600 and 2,000; on 60×60 clutter RAM needed tens of thousands of updates "
                "(docs/vision.md, RAM)",
            ),
        ),
        note="Ours: T = 16 steps on a CPU, T = 64 (the paper's) on a GPU; the bound is a one-sample estimate per "
        "test image, in nats. The paper's binarised MNIST is one fixed stochastic draw (Salakhutdinov & Murray "
        "2008); ours is our own fixed draw (data.binarize: fixed), so the first four sections compare with the "
        "paper up to the draw. Only the first two sections are at equal updates; the same-wall-clock sections give "
        "each side's update count (an update with attention costs about half one without on a CPU at T = 16, "
        "2.7× on the GPU at T = 64). The 18-minute fixed-draw pair is shown continued to 50 minutes and the "
        "7-minute thresholded pair is superseded (their records stay in results/). The thresholded sections are "
        "easier data (fewer uncertain pixels) and lower bounds.",
    ),
)
