#!/usr/bin/env bash
# Restarts of a per-task bAbI recipe (the column scripts/babi_per_task.sh makes, run again under other seeds):
# for each task N and seed S the recipe is trained on task N alone with `--set train.seed=S`, and its best
# checkpoint (the lowest validation error) is recorded twice under the name RECIPE-seedS, on the test set
# (results/memory/babi-1k-qaN/RECIPE-seedS) and on validation (.../RECIPE-seedS-val): how much a task's test
# error moves with the seed, and what a pick among restarts by validation error (never by test) would choose.
# A (task, seed) whose two records exist is skipped (re-running resumes).
#
#   scripts/babi_seeds.sh RECIPE SEEDS [TASKS]      e.g. scripts/babi_seeds.sh dmn-supervised "1 2" "8 9 10 18"
#
# TRAIN_ARGS replaces the extra `attn train` arguments (default "--set train.threads=1"); DATASET names the
# recipe's prepared set, where the records land as DATASET-qaN (default babi-1k).
# Data first: attn prepare babi --source ../shared/data/babi/tasks_1-20_v1-2.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: scripts/babi_seeds.sh RECIPE SEEDS [TASKS]" >&2; exit 2; }
attn=${ATTN_BIN:-$(command -v attn || echo .venv/bin/attn)}
runs=${ATTN_RUNS:-runs}
results=${ATTN_RESULTS:-results}
recipe=$1
seeds=$2
tasks=${3:-$(seq 1 20)}
targs=${TRAIN_ARGS:---set train.threads=1}
dataset=${DATASET:-babi-1k}
for n in $tasks; do
  for s in $seeds; do
    name="${recipe//\//-}-seed$s"  # tiny/dmn -> tiny-dmn-seed1, as attn record names a recipe
    dest="$results/memory/$dataset-qa$n/$name"
    if [ -f "$dest/result.json" ] && [ -f "$dest-val/result.json" ]; then
      echo "qa$n seed $s: recorded already ($dest, $dest-val)"
      continue
    fi
    run="$runs/memory/$recipe-qa$n/seed$s-$(date +%Y%m%d-%H%M%S)"
    # shellcheck disable=SC2086  # TRAIN_ARGS is a list of words
    "$attn" train memory --recipe "$recipe" --run-dir "$run" --set data.tasks="$n" --set train.seed="$s" $targs
    for split in test val; do
      "$attn" eval memory --run "$run" --split "$split" --record --name "$name"
    done
  done
done
