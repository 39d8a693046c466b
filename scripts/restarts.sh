#!/usr/bin/env bash
# Restarts of any recipe: the recipe trained again under each seed, each run recorded on test
# (results/TASK/DATASET/RECIPE-seedS) and on validation (RECIPE-seedS-val), so that a table's best-of-N cell
# (attn_cli.tables.base.pick_lowest) can pick the restart by its validation score, never by test.
#
#   scripts/restarts.sh TASK RECIPE SEEDS          e.g. scripts/restarts.sh patterns list-rnn-anb2n "1 2 3 4 5"
#
# TRAIN_ARGS replaces the extra `attn train` arguments (default "--set train.threads=1"). A restart with both
# records is skipped; one killed part-way resumes from its last checkpoint (`attn train --resume`). bAbI's
# per-task restarts have their own script (scripts/babi_seeds.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 3 ] || { echo "usage: scripts/restarts.sh TASK RECIPE SEEDS" >&2; exit 2; }
attn=${ATTN_BIN:-$(command -v attn || echo .venv/bin/attn)}
runs=${ATTN_RUNS:-runs}
task=$1 recipe=$2 seeds=$3
targs=${TRAIN_ARGS:---set train.threads=1}
for s in $seeds; do
  name="${recipe//\//-}-seed$s"  # tiny/x -> tiny-x-seed1, as attn record names a recipe
  run="$runs/$task/restarts/$name"
  if [ -f "$run/recorded" ]; then
    echo "$name: recorded already"
    continue
  fi
  if [ -f "$run/train_done.json" ]; then
    echo "$name: trained already ($run)"
  elif [ -f "$run/checkpoints/last.ckpt" ]; then
    # shellcheck disable=SC2086  # TRAIN_ARGS is a list of words
    "$attn" train "$task" --resume "$run" $targs
  else
    fresh=()
    [ -d "$run" ] && fresh=(--overwrite)  # killed before its first checkpoint: nothing to resume
    # shellcheck disable=SC2086
    "$attn" train "$task" --recipe "$recipe" --run-dir "$run" --set train.seed="$s" ${fresh[@]+"${fresh[@]}"} $targs
  fi
  "$attn" eval "$task" --run "$run" --record --name "$name"
  "$attn" eval "$task" --run "$run" --split val --record --name "$name"
  touch "$run/recorded"
done
