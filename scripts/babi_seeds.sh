#!/usr/bin/env bash
# Restarts of a bAbI recipe: scripts/babi_per_task.sh's column (or, with TASKS "joint", its one run on all
# tasks) run again under other seeds, each restart recorded on test (results/memory/babi-1k-qaN/RECIPE-seedS;
# joint: results/memory/babi-1k/RECIPE-seedS), on validation (RECIPE-seedS-val) and on training
# (RECIPE-seedS-train); scripts/babi_best_of.py then picks among them from the records.
#
#   scripts/babi_seeds.sh RECIPE SEEDS [TASKS]      e.g. scripts/babi_seeds.sh dmn-supervised "1 2" "8 9 10 18"
#                                                        scripts/babi_seeds.sh memn2n-pe-ls-rn-joint-sgd "1 2" joint
#
# TRAIN_ARGS and DATASET as in scripts/babi_per_task.sh.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: scripts/babi_seeds.sh RECIPE SEEDS [TASKS]" >&2; exit 2; }
SEEDS=$2 exec bash "$(dirname "$0")/babi_per_task.sh" "$1" ${3:+"$3"}
