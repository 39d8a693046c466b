#!/usr/bin/env bash
# Restarts of a per-task bAbI recipe: scripts/babi_per_task.sh's column run again under other seeds, each
# restart recorded on test (results/memory/babi-1k-qaN/RECIPE-seedS) and on validation (.../RECIPE-seedS-val).
#
#   scripts/babi_seeds.sh RECIPE SEEDS [TASKS]      e.g. scripts/babi_seeds.sh dmn-supervised "1 2" "8 9 10 18"
#
# TRAIN_ARGS and DATASET as in scripts/babi_per_task.sh.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: scripts/babi_seeds.sh RECIPE SEEDS [TASKS]" >&2; exit 2; }
SEEDS=$2 exec bash "$(dirname "$0")/babi_per_task.sh" "$1" ${3:+"$3"}
