#!/usr/bin/env bash
# One column of `attn table memn2n` / `dmn` trained per task (the papers' non-joint columns): the recipe is
# trained on each bAbI task alone (`--set data.tasks=N`), evaluated on that task's test set and recorded
# under dataset babi-1k-qaN; the table's mean and failed-task rows are computed from the 20 records once
# all exist. A task whose record already exists is skipped (re-running resumes the column). The task
# `joint` is one run on the recipe's own tasks (all twenty), recorded under DATASET itself.
#
#   scripts/babi_per_task.sh RECIPE [TASKS]      e.g. scripts/babi_per_task.sh memn2n-pe-ls-rn "1 2 3"
#
# SEEDS="1 2" trains restarts instead (scripts/babi_seeds.sh): each task under each seed
# (`--set train.seed=S`, run directory .../seedS), its best checkpoint recorded three times as RECIPE-seedS,
# on test, on validation (RECIPE-seedS-val) and on training (RECIPE-seedS-train), so that a pick among
# restarts can go by validation error (never by test) or by training error (Sukhbaatar et al. 2015, §4.2);
# scripts/babi_best_of.py makes the pick from the records. A (task, seed) with its three records is skipped;
# a run killed part-way resumes from its last checkpoint (`attn train --resume`, docs/reliability.md) when the
# script is run again, and only the missing records are made.
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
  if [ "$n" = joint ]; then
    label=joint where=$dataset base="$runs/memory/$recipe" only=()
  else
    label=qa$n where=$dataset-qa$n base="$runs/memory/$recipe-qa$n" only=(--set data.tasks="$n")
  fi
  if [ -z "$seeds" ]; then
    dest="$results/memory/$where/${recipe//\//-}"  # tiny/dmn -> tiny-dmn, as attn record names a recipe
    if [ -f "$dest/result.json" ]; then
      echo "$label: recorded already ($dest)"
      continue
    fi
    run="$base/$(date +%Y%m%d-%H%M%S)"
    # shellcheck disable=SC2086  # TRAIN_ARGS is a list of words
    "$attn" train memory --recipe "$recipe" --run-dir "$run" ${only[@]+"${only[@]}"} $targs
    "$attn" eval memory --run "$run" --record
    continue
  fi
  for s in $seeds; do
    name="${recipe//\//-}-seed$s"  # tiny/dmn -> tiny-dmn-seed1, as attn record names a recipe
    dest="$results/memory/$where/$name"
    missing=()
    for split in test val train; do
      suffix=${split/#test/}
      [ -f "$dest${suffix:+-$suffix}/result.json" ] || missing+=("$split")
    done
    if [ ${#missing[@]} -eq 0 ]; then
      echo "$label seed $s: recorded already ($dest, $dest-val, $dest-train)"
      continue
    fi
    run="$base/seed$s"
    if [ -f "$run/train_done.json" ]; then
      echo "$label seed $s: trained already ($run)"
    elif [ -f "$run/checkpoints/last.ckpt" ]; then
      # shellcheck disable=SC2086
      "$attn" train memory --resume "$run" $targs
    else
      fresh=()
      [ -d "$run" ] && fresh=(--overwrite)  # killed before its first checkpoint: nothing to resume
      # shellcheck disable=SC2086
      "$attn" train memory --recipe "$recipe" --run-dir "$run" ${only[@]+"${only[@]}"} --set train.seed="$s" \
        ${fresh[@]+"${fresh[@]}"} $targs
    fi
    for split in "${missing[@]}"; do
      "$attn" eval memory --run "$run" --split "$split" --record --name "$name"
    done
  done
done
