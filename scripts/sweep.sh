#!/usr/bin/env bash
# Train (then evaluate and record) a list of recipes: on SLURM when sbatch exists, else locally,
# one after another.
#
#   scripts/sweep.sh [options] TASK RECIPE [RECIPE ...]
#
#   --dry-run          print what would run (sbatch lines or local commands), run nothing
#   --local            run locally even when sbatch exists
#   --nodes N          SLURM nodes per job (default 1)
#   --gpus G           GPUs per node (default 1)
#   --time T           SLURM time limit per job (default 24:00:00)
#   --partition P      SLURM partition
#   --train-args "..." extra arguments for `attn train` (e.g. "--set train.max_epochs=2")
#   --eval-args "..."  arguments for `attn eval` (default "--beam 5"); "none" skips evaluation
#
# Local runs write runs/TASK/RECIPE/sweep-<stamp>/ and record results/TASK/... after each eval.
set -euo pipefail

dry=0 local=0 nodes=1 gpus=1 time_limit=24:00:00 partition="" train_args="" eval_args="--beam 5"
usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --local) local=1 ;;
    --nodes) nodes=$2; shift ;;
    --gpus) gpus=$2; shift ;;
    --time) time_limit=$2; shift ;;
    --partition) partition=$2; shift ;;
    --train-args) train_args=$2; shift ;;
    --eval-args) eval_args=$2; shift ;;
    -h|--help) usage ;;
    --*) echo "error: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
[ $# -ge 2 ] || { echo "error: give a TASK and at least one RECIPE (see --help)" >&2; exit 2; }
task=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
stamp=$(date +%Y%m%d-%H%M%S)
runs=${ATTN_RUNS:-runs}
# the attn console script: $ATTN_BIN, else the one on PATH, else the repository's .venv (as `make install` makes it)
attn=${ATTN_BIN:-$(command -v attn || true)}
[ -n "$attn" ] || attn="$here/../.venv/bin/attn"

if [ $local -eq 0 ] && command -v sbatch >/dev/null 2>&1 || { [ $dry -eq 1 ] && [ $local -eq 0 ]; }; then
  for recipe in "$@"; do
    export_list="ALL,TASK=$task,RECIPE=$recipe,ATTN_TRAIN_ARGS=$train_args"
    [ "$eval_args" = none ] || export_list="$export_list,ATTN_EVAL_ARGS=$eval_args"
    cmd=(sbatch --job-name="attn-$task-${recipe//\//-}" --nodes="$nodes" --ntasks-per-node="$gpus"
         --gpus-per-node="$gpus" --time="$time_limit")
    [ -n "$partition" ] && cmd+=(--partition="$partition")
    cmd+=(--export="$export_list" "$here/slurm/train.sbatch")
    if [ $dry -eq 1 ]; then printf '%q ' "${cmd[@]}"; echo; else "${cmd[@]}"; fi
  done
  exit 0
fi

for recipe in "$@"; do
  run_dir="$runs/$task/$recipe/sweep-$stamp"
  # shellcheck disable=SC2206
  train=("$attn" train "$task" --recipe "$recipe" --run-dir "$run_dir" $train_args)
  # shellcheck disable=SC2206
  evaluate=("$attn" eval "$task" --run "$run_dir" $eval_args --record)
  if [ $dry -eq 1 ]; then
    printf '%q ' "${train[@]}"; echo
    [ "$eval_args" = none ] || { printf '%q ' "${evaluate[@]}"; echo; }
    continue
  fi
  echo "== $task/$recipe -> $run_dir"
  "${train[@]}"
  [ "$eval_args" = none ] || "${evaluate[@]}"
done
