"""Time the NTM's training step alone (no data, no Lightning): forward, BCE, backward and an Adam step of the copy
recipe's model (`NTM.Config()`: 100-unit LSTM controller, 128 × 20 memory, one head) on a (16, 43, 10) batch, one
torch thread, CPU seconds per update (`time.process_time`) over 30 updates after 5. Each ROOT is a checkout whose
``attn_cli`` is imported in its own process, so two commits are timed side by side, alternating, REPEATS times.

    python scripts/bench_ntm_step.py OUT.json ROOT_BEFORE ROOT_AFTER [REPEATS]
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

CHILD = """
import sys, time, torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
from attn_cli.models.ntm import NTM
torch.manual_seed(0)
m = NTM(NTM.Config(), in_width=10, out_width=8)
opt = torch.optim.Adam(m.parameters(), 1e-3)
x, y = torch.rand(16, 43, 10), torch.rand(16, 43, 8)
def step():
    loss = torch.nn.functional.binary_cross_entropy_with_logits(m(x)["logits"], y)
    opt.zero_grad(); loss.backward(); opt.step()
for _ in range(5): step()
t = time.process_time()
for _ in range(30): step()
print((time.process_time() - t) / 30 * 1000)
"""


def main() -> None:
    out, roots = Path(sys.argv[1]), [Path(r).resolve() for r in sys.argv[2:4]]
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    sha = {
        str(r): subprocess.run(["git", "rev-parse", "HEAD"], cwd=r, capture_output=True, text=True).stdout.strip()
        for r in roots
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = []
    for i in range(repeats):
        load = os.getloadavg()[0]
        ms = [float(subprocess.run([sys.executable, "-c", CHILD, str(r)], env=env, capture_output=True, text=True,
                                   check=True).stdout) for r in roots]  # fmt: skip
        runs.append({"pair": i + 1, "before_ms": round(ms[0], 1), "after_ms": round(ms[1], 1),
                     "ratio": round(ms[0] / ms[1], 2), "load_avg_1min": round(load, 2)})  # fmt: skip
    result = {
        "command": "python " + " ".join(sys.argv),
        "before": sha[str(roots[0])],
        "after": sha[str(roots[1])],
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": 1,
        "ms_per_update_cpu": runs,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
