"""Training-spine behaviour that only shows over several epochs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from attn_cli import run


def _tiny_nmt(data: Path, runs: Path, overrides: list[str]) -> dict:
    return run.train(
        "nmt", "tiny/luong-global-general", runs_dir=runs, data_dir=data, progress=False, overrides=overrides
    )


def test_plateau_schedule_with_step_validation_crossing_epochs(generated_data: Path, tmp_path: Path) -> None:
    """An epoch that ends before the first step-based validation must not crash the LR plateau schedule."""
    summary = run.train(
        "nmt",
        "tiny/luong-global-general",
        runs_dir=tmp_path,
        data_dir=generated_data,
        progress=False,
        overrides=[
            "train.lr_schedule=plateau",
            "train.max_steps=-1",
            "train.max_epochs=2",
            "train.batch_size=64",
            "train.val_every_steps=100",
            "train.threads=1",
        ],
    )
    assert summary["epochs"] == 2 and summary["best_score"] is not None


def test_time_budget_stops_and_still_scores(generated_data: Path, tmp_path: Path) -> None:
    summary = _tiny_nmt(
        generated_data,
        tmp_path,
        ["train.max_time_min=0.02", "train.max_steps=-1", "train.max_epochs=100", "train.threads=1"],
    )
    assert summary["epochs"] < 100 and summary["best_score"] is not None
    assert Path(summary["best_checkpoint"]).is_file()


def test_a_finished_run_continues_under_a_larger_budget(generated_data: Path, tmp_path: Path) -> None:
    """--resume on a finished run: refused without a larger budget, continued (same run, new segment) with one."""
    import json

    import pytest

    from attn_cli.errors import AttnError

    common = ["train.max_time_min=null", "train.max_epochs=100", "train.val_every_steps=4", "train.threads=1"]
    first = run.train(
        "nmt",
        "tiny/luong-global-general",
        runs_dir=tmp_path,
        data_dir=generated_data,
        progress=False,
        overrides=["train.max_steps=4", *common],
    )
    run_dir = Path(first["run_dir"])
    with pytest.raises(AttnError, match="larger budget"):
        run.train("nmt", None, runs_dir=tmp_path, data_dir=generated_data, resume=run_dir)
    with pytest.raises(AttnError, match="already trained 4 steps; raise train.max_steps above 4"):
        run.train(
            "nmt", None, runs_dir=tmp_path, data_dir=generated_data, resume=run_dir, overrides=["train.max_steps=4"]
        )
    with pytest.raises(AttnError, match="train.max_epochs=0 is invalid"):
        run.train(
            "nmt",
            None,
            runs_dir=tmp_path,
            data_dir=generated_data,
            resume=run_dir,
            overrides=["train.max_steps=-1", "train.max_epochs=0"],
        )
    assert (run_dir / "train_done.json").is_file()  # a refused extension leaves the run as it was
    second = run.train(
        "nmt",
        None,
        runs_dir=tmp_path,
        data_dir=generated_data,
        progress=False,
        resume=run_dir,
        overrides=["train.max_steps=8"],
    )
    assert second["run_dir"] == str(run_dir) and second["steps"] == 8
    info = json.loads((run_dir / "run.json").read_text())
    assert len(info["segments"]) == 2 and "--resume" not in info["segments"][0]["command"]
    assert json.loads((run_dir / "train_done.previous.json").read_text())["steps"] == 4
    # the first segment's learning curve survives the second (Lightning's CSVLogger would delete it)
    earlier = (run_dir / "logs" / "metrics.segment-1.csv").read_text().splitlines()
    later = (run_dir / "logs" / "metrics.csv").read_text().splitlines()
    step = earlier[0].split(",").index("step")
    assert {int(r.split(",")[step]) for r in earlier[1:]} <= set(range(4))
    assert max(int(r.split(",")[later[0].split(",").index("step")]) for r in later[1:]) >= 4


def epochs_seen(n: int, epochs: int, **loader: Any) -> dict[int, list[int]]:
    """Train a probe module for ``epochs`` epochs of a real Trainer on ``train_loader`` over the ids 0..n-1
    (``loader``: its keyword arguments); the ids each epoch's training steps received."""
    import lightning as L
    import torch

    from attn_cli.data.common import train_loader
    from attn_cli.tasks.base import AttnModule

    class Ids(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return n

        def __getitem__(self, v: int) -> int:
            return v

    class Probe(L.LightningModule):
        on_train_epoch_start = AttnModule.on_train_epoch_start

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.seen: dict[int, list[int]] = {}

        def training_step(self, batch: torch.Tensor, _: int) -> torch.Tensor:
            self.seen.setdefault(self.current_epoch, []).extend(batch.tolist())
            return (self.w**2).sum()

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self) -> torch.utils.data.DataLoader:
            return train_loader(Ids(), seed=0, collate=torch.tensor, **loader)

    probe = Probe()
    trainer = L.Trainer(
        max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
    )  # fmt: skip
    trainer.fit(probe)
    return probe.seen


def test_every_epoch_draws_a_new_batch_order() -> None:
    """Lightning calls set_epoch on a loader's sampler, never on its batch_sampler: our module's
    on_train_epoch_start must, or every epoch repeats the first one's batches (and data.resample
    repeats the first epoch's distortions)."""
    seen = epochs_seen(12, 3, batch_size=4, epoch_ids=True)
    orders = [seen[e] for e in range(3)]
    # epoch_ids: epoch e hands out e * 12 + i, so each epoch is a permutation of its own id range
    assert [sorted(o) for o in orders] == [list(range(e * 12, e * 12 + 12)) for e in range(3)]
    offsets = [[i - e * 12 for i in o] for e, o in enumerate(orders)]
    assert offsets[0] != offsets[1] and offsets[1] != offsets[2]


def test_the_checkpointed_loader_state_follows_the_epoch(generated_data: Path, tmp_path: Path) -> None:
    import torch

    summary = _tiny_nmt(
        generated_data, tmp_path, ["train.max_steps=-1", "train.max_epochs=2", "train.batch_size=64", "train.threads=1"]
    )
    ckpt = torch.load(Path(summary["run_dir"]) / "checkpoints" / "last.ckpt", weights_only=False)
    states = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert [s["epoch"] for s in states] == [1]


def test_min_lr_floors_both_schedules() -> None:
    import pytest

    from attn_cli.config import load_recipe
    from attn_cli.tasks.vision import VisionModule

    meta = {"image_shape": [1, 28, 28], "classes": 10}
    common = ["train.lr=1e-3", "train.min_lr=1e-4", "train.lr_decay=0.5"]
    module = VisionModule(
        load_recipe("vision", "tiny/fc", [*common, "train.lr_schedule=plateau", "train.lr_patience=0"]), meta
    )
    conf = module.configure_optimizers()
    for _ in range(20):  # a metric that never improves
        conf["lr_scheduler"]["scheduler"].step(1.0)
    assert conf["optimizer"].param_groups[0]["lr"] == pytest.approx(1e-4)
    module = VisionModule(load_recipe("vision", "tiny/fc", [*common, "train.lr_schedule=halve_after"]), meta)
    conf = module.configure_optimizers()
    lrs = []
    for _ in range(20):
        conf["lr_scheduler"]["scheduler"].step()
        lrs.append(conf["optimizer"].param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(2.5e-4) and lrs[-1] == pytest.approx(1e-4) and min(lrs) >= 1e-4 - 1e-12
