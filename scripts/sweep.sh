#!/usr/bin/env bash
# Train (then evaluate and record) a list of recipes: on SLURM when sbatch exists, else locally,
# one after another.
#
#   scripts/sweep.sh [options] TASK RECIPE [RECIPE ...]
#
#   --dry-run          print what would run (sbatch lines or local commands), run nothing
#   --local            run locally even when sbatch exists
#   --nodes N          SLURM nodes per job (default 1)
#   --gpus G           GPUs per node, one task each (default 1)
#   --time T           SLURM time limit per job (default 24:00:00)
#   --partition P      SLURM partition
#   --train-args "..." extra arguments for `attn train` (e.g. "--set train.max_epochs=2"), split at whitespace
#   --eval-args "..."  arguments for `attn eval`; default per task: nmt "--beam 5", others none (the recipe's
#                      eval settings: caption decodes with its eval.beam); "none" skips evaluation
#
# ATTN names the attn command (default: attn on PATH, else the repository's .venv, else python3 -m attn_cli).
# SLURM jobs get their settings through the environment (sbatch --export=ALL), so arguments may hold commas.
# Local runs write runs/TASK/RECIPE/sweep-<stamp>/ and record results/TASK/... after each eval.
set -euo pipefail

dry=0 local=0 nodes=1 gpus=1 time_limit=24:00:00 partition="" train_args="" eval_args=default
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
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
if [ "$eval_args" = default ]; then
  # only nmt takes a beam from here: memory and reader have no eval options at all, vision none for beams,
  # and caption recipes carry their own eval.beam
  case "$task" in nmt) eval_args="--beam 5" ;; *) eval_args="" ;; esac
fi
here=$(cd "$(dirname "$0")" && pwd)
stamp=$(date +%Y%m%d-%H%M%S)
runs=${ATTN_RUNS:-runs}
if [ -n "${ATTN:-}" ]; then
  attn_cmd=$ATTN
elif command -v attn >/dev/null 2>&1; then
  attn_cmd=$(command -v attn)
elif [ -x "$here/../.venv/bin/attn" ]; then
  attn_cmd=$(cd "$here/.." && pwd)/.venv/bin/attn
else
  attn_cmd="python3 -m attn_cli"
fi

if [ $local -eq 0 ] && command -v sbatch >/dev/null 2>&1 || { [ $dry -eq 1 ] && [ $local -eq 0 ]; }; then
  for recipe in "$@"; do
    job_env=("TASK=$task" "RECIPE=$recipe" "ATTN_TRAIN_ARGS=$train_args" "ATTN=$attn_cmd")
    if [ "$eval_args" = none ]; then
      job_env=(-u ATTN_EVAL_ARGS "${job_env[@]}")
    else
      job_env+=("ATTN_EVAL_ARGS=$eval_args")
    fi
    cmd=(sbatch --export=ALL --job-name="attn-$task-${recipe//\//-}" --nodes="$nodes" --ntasks-per-node="$gpus"
      --gpus-per-node="$gpus" --time="$time_limit")
    [ -n "$partition" ] && cmd+=(--partition="$partition")
    cmd+=("$here/slurm/train.sbatch")
    if [ $dry -eq 1 ]; then printf '%q ' env "${job_env[@]}" "${cmd[@]}"; echo; else env "${job_env[@]}" "${cmd[@]}"; fi
  done
  exit 0
fi

read -r -a attn <<<"$attn_cmd"
set -f # split the argument strings at whitespace, expanding no wildcards
extra_train=($train_args)
extra_eval=($eval_args)
set +f
for recipe in "$@"; do
  run_dir="$runs/$task/$recipe/sweep-$stamp"
  train=("${attn[@]}" train "$task" --recipe "$recipe" --run-dir "$run_dir" "${extra_train[@]}")
  evaluate=("${attn[@]}" eval "$task" --run "$run_dir" "${extra_eval[@]}" --record)
  if [ $dry -eq 1 ]; then
    printf '%q ' "${train[@]}"; echo
    [ "$eval_args" = none ] || { printf '%q ' "${evaluate[@]}"; echo; }
    continue
  fi
  echo "== $task/$recipe -> $run_dir"
  "${train[@]}"
  [ "$eval_args" = none ] || "${evaluate[@]}"
done
