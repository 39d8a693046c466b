"""CPU threads for torch: as many as the CPUs this process is actually given, and no busy-waiting.

Two things make a CPU training run fall apart on shared cores (a cluster node, a laptop, a CI
runner), and both are fixed here:

* **Too many threads.** torch sizes its intra-op pool from the machine's cores (or the affinity
  mask), not from the share a scheduler grants: under a cgroup quota (``docker --cpus 2``,
  Kubernetes CPU limits, cgroup v2 ``cpu.max`` / v1 ``cpu.cfs_quota_us``) or a SLURM allocation
  (``SLURM_CPUS_PER_TASK``) it starts more threads than it may run, and every parallel region
  waits for the thread that was throttled. :func:`available_cpus` takes the smallest of those
  limits; :func:`use_available_cpus` applies it, and an explicit ``train.threads`` (or the user's
  ``OMP_NUM_THREADS``) still wins.
* **Spinning threads.** OpenMP threads that finish their share of a parallel region spin for the
  next one (libgomp's default spin count is 300,000 iterations). On an idle machine that saves a
  wake-up; beside other busy processes the spinning thread burns the CPU time its sibling needed,
  and the same work costs far more CPU seconds. :func:`quiet_thread_pools` asks for
  ``OMP_WAIT_POLICY=PASSIVE`` (sleep at once) unless the user chose a policy; it must run before
  torch loads its OpenMP runtime, so the ``attn`` entry point (:mod:`attn_cli.__main__`) calls it
  before anything imports torch. ``results/bench/demo-load.md`` records what it changes. Sleeping at
  once has a price on an idle machine: every parallel region wakes the other threads with a system
  call, and an NMT update runs thousands of small operators. A short spin, ``GOMP_SPINCOUNT=10000``,
  trained the two NMT recipes 1.19× and 1.22× as fast as sleeping at once on the idle 2-core AMD EPYC (``results/bench/heap-ab.md``)
  but cost 2.29× the CPU seconds of the vision demo beside two busy loops (0.92× sleeping at once), so
  it stays the user's choice for a machine of their own, not the default.

torch's inter-op pool is left alone: it serves ``torch.jit.fork`` and similar asynchronous calls,
which no model here uses, so its threads sleep and cost nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class CpuShare:
    """A thread count and what decided it (for logs and benchmark records)."""

    count: int
    source: str


def _quota_cpus(quota: int, period: int) -> int | None:
    """CPUs a CFS quota of ``quota`` µs per ``period`` µs allows, rounded down but at least 1; None = no limit.

    Rounded down: a thread more than the quota pays for is throttled for the rest of every
    period, and the OpenMP barriers wait for it.
    """
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.floor(quota / period))


def _cgroup_dirs(root: Path, proc_cgroup: Path, controller: str | None) -> list[Path]:
    """This process's cgroup directory and its ancestors under ``root`` (v2: controller None).

    Inside a container the path in ``/proc/self/cgroup`` may be the host's while ``root`` is the
    container's own cgroup; then only ``root`` itself exists and is used.
    """
    try:
        lines = proc_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        names = controllers.split(",") if controllers else []
        if (controller is None and not names) or (controller is not None and controller in names):
            base = root if controller is None else root / controllers
            if controller is not None and not base.is_dir():
                base = root / controller  # mounted as "cpu" with "cpu,cpuacct" a symlink, or the reverse
            leaf = base / path.lstrip("/")
            return [d for d in [leaf, *leaf.parents] if d.is_relative_to(base) and d.is_dir()]
    return []


def cgroup_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int | None:
    """CPUs the cgroup CPU quota allows this process (the tightest along its hierarchy); None = no quota.

    cgroup v2: ``cpu.max`` holds ``"$MAX $PERIOD"`` (``max`` = unlimited); v1: ``cpu.cfs_quota_us``
    (-1 = unlimited) over ``cpu.cfs_period_us``.
    """
    limits: list[int] = []
    for d in _cgroup_dirs(root, proc_cgroup, None):
        text = (d / "cpu.max").read_text(encoding="utf-8").split() if (d / "cpu.max").is_file() else []
        if len(text) == 2 and text[0] != "max":
            limit = _quota_cpus(int(text[0]), int(text[1]))
            if limit is not None:
                limits.append(limit)
    for d in _cgroup_dirs(root, proc_cgroup, "cpu"):
        quota, period = d / "cpu.cfs_quota_us", d / "cpu.cfs_period_us"
        if quota.is_file() and period.is_file():
            limit = _quota_cpus(int(quota.read_text().strip()), int(period.read_text().strip()))
            if limit is not None:
                limits.append(limit)
    return min(limits) if limits else None


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    try:
        value = int(env.get(name, ""))
    except ValueError:
        return None
    return value if value > 0 else None


def available_cpus(
    env: Mapping[str, str] | None = None, *, root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
) -> CpuShare:
    """The CPUs this process may really run on: the smallest of its affinity mask, its cgroup quota
    and its SLURM allocation (``SLURM_CPUS_PER_TASK``)."""
    env = os.environ if env is None else env
    candidates = [CpuShare(len(os.sched_getaffinity(0)), "affinity")]
    quota = cgroup_cpus(root, proc_cgroup)
    if quota is not None:
        candidates.append(CpuShare(quota, "cgroup quota"))
    slurm = _positive_int(env, "SLURM_CPUS_PER_TASK")
    if slurm is not None:
        candidates.append(CpuShare(slurm, "SLURM_CPUS_PER_TASK"))
    return min(candidates, key=lambda c: c.count)


def thread_count(requested: int, env: Mapping[str, str] | None = None, **where: Path) -> CpuShare:
    """``requested`` (``train.threads``) when positive, else the user's ``OMP_NUM_THREADS``, else
    :func:`available_cpus`."""
    env = os.environ if env is None else env
    if requested > 0:
        return CpuShare(requested, "train.threads")
    omp = _positive_int(env, "OMP_NUM_THREADS")
    if omp is not None:
        return CpuShare(omp, "OMP_NUM_THREADS")
    return available_cpus(env, **where)


def use_available_cpus(requested: int) -> CpuShare:
    """Size torch's intra-op thread pool by :func:`thread_count`; returns the choice."""
    import torch

    share = thread_count(requested)
    torch.set_num_threads(share.count)
    return share


def quiet_thread_pools(env: MutableMapping[str, str] | None = None) -> None:
    """Ask OpenMP to put idle threads to sleep at once (``OMP_WAIT_POLICY=PASSIVE``) unless the user
    set a wait policy or libgomp's spin count; call before torch is imported."""
    env = os.environ if env is None else env
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
