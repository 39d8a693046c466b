#!/usr/bin/env bash
# One column of `attn table memn2n` / `dmn` trained per task (the papers' non-joint columns): the recipe is
# trained on each bAbI task alone (`--set data.tasks=N`), evaluated on that task's test set and recorded
# under dataset babi-1k-qaN; the table's mean and failed-task rows are computed from the 20 records once
# all exist. A task whose record already exists is skipped (re-running resumes the column).
#
#   scripts/babi_per_task.sh RECIPE [TASKS]      e.g. scripts/babi_per_task.sh memn2n-pe-ls-rn "1 2 3"
#
# SEEDS="1 2" trains restarts instead (scripts/babi_seeds.sh): each task under each seed
# (`--set train.seed=S`), its best checkpoint recorded twice as RECIPE-seedS, on test and on validation
# (RECIPE-seedS-val), so that a pick among restarts can go by validation error, never by test; a (task, seed)
# whose two records exist is skipped.
# TRAIN_ARGS replaces the extra `attn train` arguments (default "--set train.threads=1"); DATASET names the
# recipe's prepared set, where the records land as DATASET-qaN (default babi-1k).
# Data first: attn prepare babi --source ../shared/data/babi/tasks_1-20_v1-2.tar.gz
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/babi_per_task.sh RECIPE [TASKS]" >&2; exit 2; }
attn=${ATTN_BIN:-$(command -v attn || echo .venv/bin/attn)}
runs=${ATTN_RUNS:-runs}
results=${ATTN_RESULTS:-results}
recipe=$1
tasks=${2:-$(seq 1 20)}
targs=${TRAIN_ARGS:---set train.threads=1}
dataset=${DATASET:-babi-1k}
seeds=${SEEDS:-}
for n in $tasks; do
  if [ -z "$seeds" ]; then
    dest="$results/memory/$dataset-qa$n/${recipe//\//-}"  # tiny/dmn -> tiny-dmn, as attn record names a recipe
    if [ -f "$dest/result.json" ]; then
      echo "qa$n: recorded already ($dest)"
      continue
    fi
    run="$runs/memory/$recipe-qa$n/$(date +%Y%m%d-%H%M%S)"
    # shellcheck disable=SC2086  # TRAIN_ARGS is a list of words
    "$attn" train memory --recipe "$recipe" --run-dir "$run" --set data.tasks="$n" $targs
    "$attn" eval memory --run "$run" --record
    continue
  fi
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
