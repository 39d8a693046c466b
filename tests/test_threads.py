"""CPU thread counts from what the process is really given (affinity, cgroup quota, SLURM), and the
OpenMP wait policy set before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from attn_cli.threads import CpuShare, available_cpus, cgroup_cpus, quiet_thread_pools, thread_count, use_available_cpus

REPO = Path(__file__).resolve().parent.parent


def cgroup_tree(tmp_path: Path, proc_line: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A cgroup mount under ``tmp_path/cg`` holding ``files`` (relative path -> text), and a
    ``/proc/self/cgroup`` stand-in with ``proc_line``."""
    root = tmp_path / "cg"
    root.mkdir()
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp_path / "proc-cgroup"
    proc.write_text(proc_line + "\n")
    return root, proc


def test_cgroup_v2_quota_rounds_down_and_takes_the_tightest_ancestor(tmp_path: Path) -> None:
    root, proc = cgroup_tree(
        tmp_path,
        "0::/user.slice/job-7",
        {"user.slice/cpu.max": "300000 100000\n", "user.slice/job-7/cpu.max": "max 100000\n"},
    )
    assert cgroup_cpus(root, proc) == 3  # the leaf is unlimited, its parent allows 3 CPUs
    (root / "user.slice/job-7/cpu.max").write_text("250000 100000\n")
    assert cgroup_cpus(root, proc) == 2  # 2.5 CPUs: a third thread would be throttled every period
    (root / "user.slice/job-7/cpu.max").write_text("50000 100000\n")
    assert cgroup_cpus(root, proc) == 1  # never below one


def test_cgroup_v2_without_a_limit(tmp_path: Path) -> None:
    root, proc = cgroup_tree(tmp_path, "0::/a", {"a/cpu.max": "max 100000\n"})
    assert cgroup_cpus(root, proc) is None
    assert cgroup_cpus(root, tmp_path / "no-such-proc-file") is None


def test_cgroup_inside_a_container_reads_the_mount_itself(tmp_path: Path) -> None:
    # the path in /proc/self/cgroup is the host's; the container sees its own cgroup at the mount point
    root, proc = cgroup_tree(tmp_path, "0::/kubepods/pod-1/abc", {"cpu.max": "400000 100000\n"})
    assert cgroup_cpus(root, proc) == 4


def test_cgroup_v1_cfs_quota(tmp_path: Path) -> None:
    files = {
        "cpu,cpuacct/slurm/job1/cpu.cfs_quota_us": "200000\n",
        "cpu,cpuacct/slurm/job1/cpu.cfs_period_us": "100000\n",
    }
    root, proc = cgroup_tree(tmp_path, "4:cpu,cpuacct:/slurm/job1", files)
    assert cgroup_cpus(root, proc) == 2
    (root / "cpu,cpuacct/slurm/job1/cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpus(root, proc) is None
    # the v1 hierarchy mounted as plain "cpu"


def test_cgroup_v1_mounted_as_cpu(tmp_path: Path) -> None:
    files = {"cpu/j/cpu.cfs_quota_us": "150000", "cpu/j/cpu.cfs_period_us": "50000"}
    root, proc = cgroup_tree(tmp_path, "3:cpu,cpuacct:/j", files)
    assert cgroup_cpus(root, proc) == 3


def test_available_cpus_takes_the_smallest_limit(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    root, proc = cgroup_tree(tmp_path, "0::/", {"cpu.max": "max 100000"})
    assert available_cpus({}, root=root, proc_cgroup=proc).count == affinity
    (root / "cpu.max").write_text("100000 100000")
    share = available_cpus({}, root=root, proc_cgroup=proc)
    assert share.count == 1 and share.source in ("cgroup quota", "affinity")
    (root / "cpu.max").write_text("max 100000")
    share = available_cpus({"SLURM_CPUS_PER_TASK": "1"}, root=root, proc_cgroup=proc)
    assert share.count == 1 and share.source in ("SLURM_CPUS_PER_TASK", "affinity")
    more = {"SLURM_CPUS_PER_TASK": str(affinity + 5)}  # an allocation larger than the mask cannot add CPUs
    assert available_cpus(more, root=root, proc_cgroup=proc).count == affinity
    assert available_cpus({"SLURM_CPUS_PER_TASK": "zero"}, root=root, proc_cgroup=proc).count == affinity


def test_affinity_mask_of_a_pinned_process(tmp_path: Path) -> None:
    """A process pinned to one CPU (as taskset or a batch system would) sizes for one CPU."""
    cpu = min(os.sched_getaffinity(0))
    code = (
        "from pathlib import Path; from attn_cli.threads import available_cpus; "
        "s = available_cpus({}, proc_cgroup=Path('/nonexistent')); print(s.count, s.source)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1", "affinity"]


def test_explicit_threads_win(tmp_path: Path) -> None:
    root, proc = cgroup_tree(tmp_path, "0::/", {"cpu.max": "100000 100000"})
    where = {"root": root, "proc_cgroup": proc}
    env = {"SLURM_CPUS_PER_TASK": "1", "OMP_NUM_THREADS": "3"}
    assert thread_count(5, env, **where) == CpuShare(5, "train.threads")
    assert thread_count(0, env, **where) == CpuShare(3, "OMP_NUM_THREADS")
    assert thread_count(0, {"OMP_NUM_THREADS": "0"}, **where).count == 1  # not a choice: the cgroup decides


def test_use_available_cpus_sizes_torch() -> None:
    before = torch.get_num_threads()
    try:
        assert use_available_cpus(1).count == 1 and torch.get_num_threads() == 1
        share = use_available_cpus(0)
        assert torch.get_num_threads() == share.count >= 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("env", "policy"),
    [({}, "PASSIVE"), ({"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE"), ({"GOMP_SPINCOUNT": "10000"}, None)],
)
def test_quiet_thread_pools_respects_the_user(env: dict[str, str], policy: str | None) -> None:
    quiet_thread_pools(env)
    assert env.get("OMP_WAIT_POLICY") == policy


def test_entry_point_sets_the_policy_before_torch_loads() -> None:
    """The OpenMP runtime reads its environment when torch loads it: the entry point must set it first."""
    code = (
        "import os, sys, runpy\n"
        "import attn_cli.__main__\n"
        "assert 'torch' not in sys.modules, 'importing the entry point loaded torch'\n"
        "sys.argv = ['attn', '--help']\n"
        "try:\n"
        "    runpy.run_module('attn_cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('policy', os.environ.get('OMP_WAIT_POLICY'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "policy PASSIVE" in proc.stdout
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'attn = "attn_cli.__main__:main"' in pyproject  # the console script goes through it too


def test_records_name_a_onednn_primitive_cache_the_user_sized(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bf16 run's speed on a CPU depends on oneDNN's primitive cache (results/bench/bf16-primitive-cache): a
    record says when the user sized it, and the peer report prints it with the other runtime settings."""
    from attn_cli.bench import runtime_text
    from attn_cli.runs import cpu_runtime

    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    assert "ONEDNN_PRIMITIVE_CACHE_CAPACITY" not in cpu_runtime()
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "65536")
    runtime = cpu_runtime()
    assert runtime["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "65536"
    assert "ONEDNN_PRIMITIVE_CACHE_CAPACITY=65536" in runtime_text(runtime)
