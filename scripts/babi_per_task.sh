#!/usr/bin/env bash
# One column of `attn table memn2n` trained per task (the paper's non-joint columns): the recipe is
# trained on each bAbI task alone (`--set data.tasks=N`), evaluated on that task's test set and recorded
# under dataset babi-1k-qaN; the table's mean and failed-task rows are computed from the 20 records once
# all exist. A task whose record already exists is skipped (re-running resumes the column).
#
#   scripts/babi_per_task.sh RECIPE [TASKS]      e.g. scripts/babi_per_task.sh memn2n-pe-ls-rn "1 2 3"
#
# TRAIN_ARGS replaces the extra `attn train` arguments (default "--set train.threads=1").
# Data first: attn prepare memory --dataset babi --source ../shared/data/babi/tasks_1-20_v1-2.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/babi_per_task.sh RECIPE [TASKS]" >&2; exit 2; }
attn=${ATTN_BIN:-$(command -v attn || echo .venv/bin/attn)}
runs=${ATTN_RUNS:-runs}
results=${ATTN_RESULTS:-results}
recipe=$1
tasks=${2:-$(seq 1 20)}
targs=${TRAIN_ARGS:---set train.threads=1}
for n in $tasks; do
  if [ -f "$results/memory/babi-1k-qa$n/$recipe/result.json" ]; then
    echo "qa$n: recorded already ($results/memory/babi-1k-qa$n/$recipe)"
    continue
  fi
  run="$runs/memory/$recipe-qa$n/$(date +%Y%m%d-%H%M%S)"
  # shellcheck disable=SC2086  # TRAIN_ARGS is a list of words
  "$attn" train memory --recipe "$recipe" --run-dir "$run" --set data.tasks="$n" $targs
  "$attn" eval memory --run "$run" --record
done
