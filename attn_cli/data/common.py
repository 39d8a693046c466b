"""Batching shared by every datamodule: resumable, distributed-aware, deterministic.

Lightning's own DistributedSampler injection is switched off (``use_distributed_sampler=False``)
because these samplers shard by rank themselves:

* :class:`TrainBatches` draws a permutation from ``(seed, epoch)`` only, so every rank
  agrees on it, and rank ``r`` takes batches ``r, r + W, ...``. Its state (epoch and
  batches consumed) is saved in Lightning checkpoints (the loader is ``_Stateful``), so a
  run killed mid-epoch resumes at the next unseen batch, not at the epoch start.
* :class:`EvalBatches` cuts fixed batches first and deals them to ranks, padding with
  repeated batches like ``DistributedSampler`` pads examples; predictions carry example
  ids and :func:`attn_cli.tasks.base.gather_rows` drops the repeats before scoring.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from attn_cli.data.base import AttnDataModule


def _world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class TrainBatches(Sampler[list[int]]):
    """Shuffled batches of indices; ``lengths`` (optional) enables length bucketing.

    With bucketing, examples are shuffled, cut into pools of ``pool`` batches, sorted by
    length inside each pool and batched, then the batches are shuffled: little padding,
    still random. Without it, batches are plain random draws.

    ``tokens`` > 0 (needs ``lengths``) cuts each sorted pool into batches of up to ``tokens``
    padded tokens (examples × the longest ``lengths`` in the batch; one longer example makes a batch
    alone) instead of ``batch_size`` examples: fairseq's ``max_tokens``, JoeyNMT's token batches. Every
    epoch is cut to the first epoch's number of batches (Lightning counts a loader's batches once and
    stops each epoch there): a shorter cut splits its largest batches, a longer one merges its two
    smallest (that update may then hold more than ``tokens``; on Multi30k one merge in some epochs). With
    a per-token mean loss every token then weighs about the same in every update, as in random
    batches; a bucketed batch of ``batch_size`` short sentences weighs its few tokens as much as a
    batch of long ones, which on Multi30k halves what an update teaches (docs/nmt.md).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        lengths: Sequence[int] | None = None,
        pool: int = 50,
        drop_last: bool = False,
        epoch_ids: bool = False,
        tokens: int = 0,
    ) -> None:
        if tokens and lengths is None:
            raise ValueError("token batches need the examples' lengths")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.lengths, self.pool, self.drop_last, self.tokens = lengths, pool, drop_last, tokens
        self._cut: tuple[int, list[list[int]]] | None = None  # (epoch, its batches before sharding)
        self._count: int | None = None  # token batches per epoch (the first epoch's cut)
        self.epoch_ids = epoch_ids  # hand out epoch * n + i: the dataset can tell the epochs apart
        self.epoch = 0
        self.consumed = 0  # batches of this epoch already trained on (restored on resume)
        self._yielded = 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.consumed = epoch, 0

    def _epoch_batches(self) -> list[list[int]]:
        """This epoch's batches, shuffled, before sharding: a function of (seed, epoch) alone."""
        if self._cut is not None and self._cut[0] == self.epoch:
            return self._cut[1]
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = self._order(gen)
        if self.tokens:
            batches = self._to_count(self._token_batches(order), self._token_count())
        else:
            batches = [order[i : i + self.batch_size] for i in range(0, self.n, self.batch_size)]
            if self.drop_last and batches and len(batches[-1]) < self.batch_size:
                batches.pop()
        if self.lengths is not None:
            perm = torch.randperm(len(batches), generator=gen).tolist()
            batches = [batches[i] for i in perm]
        self._cut = (self.epoch, batches)
        return batches

    def _token_count(self) -> int:
        """The number of token batches every epoch has: the first epoch's cut."""
        if self._count is None:
            self._count = len(self._token_batches(self._order(torch.Generator().manual_seed(self.seed * 100_003))))
        return self._count

    def _order(self, gen: torch.Generator) -> list[int]:
        """A permutation drawn from ``gen``; with lengths, sorted by length within each pool."""
        order = torch.randperm(self.n, generator=gen).tolist()
        if self.lengths is None:
            return order
        lengths, size = self.lengths, self.batch_size * self.pool
        return [
            i for start in range(0, self.n, size) for i in sorted(order[start : start + size], key=lengths.__getitem__)
        ]

    def _to_count(self, batches: list[list[int]], count: int) -> list[list[int]]:
        """Split the batches with the most examples, or merge the two with the fewest padded tokens, until
        there are ``count``: every example stays in exactly one batch."""
        assert self.lengths is not None
        lengths = self.lengths
        while len(batches) < count:
            i = max(range(len(batches)), key=lambda j: len(batches[j]))
            half = len(batches[i]) // 2
            batches[i : i + 1] = [batches[i][:half], batches[i][half:]]
        while len(batches) > count:
            grid = sorted(range(len(batches)), key=lambda j: len(batches[j]) * max(lengths[k] for k in batches[j]))
            a, b = sorted(grid[:2])
            merged = batches[a] + batches[b]
            batches = [x for j, x in enumerate(batches) if j not in (a, b)] + [merged]
        return batches

    def _token_batches(self, order: list[int]) -> list[list[int]]:
        """Cut ``order`` (sorted by length within each pool) into batches of at most ``self.tokens`` padded
        tokens; a batch never spans two pools, so its examples come from one random draw."""
        assert self.lengths is not None
        size = self.batch_size * self.pool
        batches: list[list[int]] = []
        for start in range(0, self.n, size):
            batch: list[int] = []
            longest = 0
            for i in order[start : start + size]:
                width = max(longest, self.lengths[i])
                if batch and (len(batch) + 1) * width > self.tokens:
                    batches.append(batch)
                    batch, width = [], self.lengths[i]
                batch.append(i)
                longest = width
            if batch:
                batches.append(batch)
        return batches

    def _batches(self) -> list[list[int]]:
        batches = list(self._epoch_batches())
        rank, world = _world()
        per_rank = math.ceil(len(batches) / world)
        batches += batches[: per_rank * world - len(batches)]
        return batches[rank::world]

    def __len__(self) -> int:
        _, world = _world()
        if self.tokens:
            full = len(self._epoch_batches())
        else:
            full = self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)
        return math.ceil(full / world)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches()
        skip, self.consumed = self.consumed, 0
        self._yielded = skip
        offset = self.epoch * self.n if self.epoch_ids else 0
        for batch in batches[skip:]:
            self._yielded += 1
            yield [i + offset for i in batch] if offset else batch

    def state_dict(self) -> dict[str, int]:
        # On load, attn_cli.tasks.base.resume_after_processed_batches replaces "consumed" with
        # Lightning's count of processed batches, which is exact whatever the fetcher prefetched.
        return {"epoch": self.epoch, "consumed": self._yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.consumed = int(state["epoch"]), int(state["consumed"])


class EvalBatches(Sampler[list[int]]):
    """Fixed batches (longest first when ``lengths`` are given), dealt to ranks round-robin.

    The batches are cut before sharding, so every example sits in the same batch, with the
    same batch-mates and padding, whatever the number of processes: N processes compute
    bit-for-bit what one does. The batch list is padded with repeats to a multiple of the
    world size (like ``DistributedSampler``); the repeats are dropped by id when gathering.
    """

    def __init__(self, n: int, batch_size: int, lengths: Sequence[int] | None = None) -> None:
        self.n, self.batch_size, self.lengths = n, batch_size, lengths

    def _batches(self) -> list[list[int]]:
        order = list(range(self.n))
        if self.lengths is not None:
            order.sort(key=lambda j: -self.lengths[j])
        batches = [order[i : i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        rank, world = _world()
        per_rank = math.ceil(len(batches) / world)
        batches += batches[: per_rank * world - len(batches)]
        return batches[rank::world]

    def __len__(self) -> int:
        _, world = _world()
        return math.ceil(math.ceil(self.n / self.batch_size) / world)

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._batches()


class ResumableLoader(DataLoader):
    """A DataLoader whose batch order survives a checkpoint (Lightning sees it as ``_Stateful``)."""

    def state_dict(self) -> dict[str, Any]:
        sampler = self.batch_sampler
        return sampler.state_dict() if hasattr(sampler, "state_dict") else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state and hasattr(self.batch_sampler, "load_state_dict"):
            self.batch_sampler.load_state_dict(state)


def train_loader(
    dataset: Dataset,
    batch_size: int,
    seed: int,
    collate: Callable,
    lengths: Sequence[int] | None = None,
    num_workers: int = 0,
    drop_last: bool = False,
    epoch_ids: bool = False,
    tokens: int = 0,
) -> ResumableLoader:
    sampler = TrainBatches(
        len(dataset), batch_size, seed, lengths=lengths, drop_last=drop_last, epoch_ids=epoch_ids, tokens=tokens
    )
    return ResumableLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )


def eval_loader(
    dataset: Dataset,
    batch_size: int,
    collate: Callable,
    lengths: Sequence[int] | None = None,
    num_workers: int = 0,
) -> DataLoader:
    return DataLoader(
        dataset,
        batch_sampler=EvalBatches(len(dataset), batch_size, lengths),
        collate_fn=collate,
        num_workers=num_workers,
    )


class FixedItems(Dataset[dict[str, Any]]):
    """A split generated once and kept (the NTM tasks' and the patterns' val/test sets): item i with its id."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**self.items[i], "id": i}


class GeneratedDataModule(AttnDataModule):
    """A datamodule whose splits are generated, not read (``patterns``, ``tapes``): :meth:`setup` fills
    ``self.splits`` once; training batches come from a resumable sampler whose ids grow with the epoch (a fresh
    example per id and epoch), evaluation batches are fixed. A subclass names its two collate functions and has
    ``cfg.eval_batch_size``, ``batch_size``, ``seed`` and ``num_workers``."""

    splits: dict[str, Dataset[dict[str, Any]]]
    cfg: Any
    batch_size: int
    seed: int
    num_workers: int
    train_collate: Callable[[list[dict[str, Any]]], Any]
    eval_collate: Callable[[list[dict[str, Any]]], Any]

    def train_dataloader(self) -> Any:
        return train_loader(
            self.splits["train"], self.batch_size, self.seed, type(self).train_collate, num_workers=self.num_workers,
            epoch_ids=True,
        )  # fmt: skip

    def val_dataloader(self) -> Any:
        return self.split_loader("val")

    def dataset(self, split: str) -> Dataset[dict[str, Any]]:
        """Split ``split`` as a dataset (made by :meth:`setup`)."""
        return self.splits[split]

    def split_loader(self, split: str) -> Any:
        return eval_loader(
            self.splits[split], self.cfg.eval_batch_size, type(self).eval_collate, num_workers=self.num_workers
        )
