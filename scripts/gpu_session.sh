#!/usr/bin/env bash
# One call on a lent GPU (the device machine runs a copy of the tree, no .git, no install). PLAN picks the work:
#   nmt (default)  1. `attn bench nmt` on the GPU (results/bench/<recipe>-gpu.json);
#                  2. the Luong ladder (the six `ladder-*` recipes) side by side on the one GPU, 12 epochs each
#                     (the paper's count) under a wall-clock cap, recorded as `<recipe>@gpu`, plus
#                     `ladder-local-p@gpu+unk` and `ensemble@gpu+unk` (the three attention models, averaged).
#   vision         the visual-attention headline recipes at their own epoch budgets (STN Table 1's ST-CNN vs
#                  CNN on RTS on fresh distortions, RAM 6 glimpses on 28×28, DRAW with and without attention
#                  at the paper's T = 64),
#                  side by side under a wall-clock cap, recorded as `<recipe>@gpu`. Its datasets are prepared
#                  there from the raw MNIST files (MNIST_SRC, a folder the call carries: the prepared ones are
#                  too large to travel).
# The device copies the tracked tree (64 MiB with the carried paths); results/ travels with it, kept under 30 MB
# (tests/test_results_size.py; results/README.md), so nothing needs moving aside.
# Everything it made is packed into $OUT/results.tgz (records, bench) and $OUT/logs.tgz; unpack results.tgz in
# the repository root and regenerate the tables (`attn table --all`).
#
#   ATTN_GIT_SHA=$(git rev-parse HEAD) OUT=/tmp/gpu-out DEADLINE_S=555 bash scripts/gpu_session.sh
#   PLAN=vision MNIST_SRC=.gpu-carry/mnist ... bash scripts/gpu_session.sh
#
# Knobs (environment): DEADLINE_S (seconds the whole script may take: training minutes shrink to fit),
# TRAIN_MIN (cap per training, minutes; 4.5), EPOCHS (nmt: 12), RECIPES (the plan's recipes), STEPS (vision: stop
# every training at this many updates, for equal-update pairs; default: the time cap only), BENCH_STEPS (300),
# SKIP_BENCH=1, BENCH_VISION=1 (vision: DRAW eager vs train.compile first), TAG (records are named <recipe>@TAG; gpu), EXTRA_TRAIN_ARGS (appended to each `attn train`), ATTN_BIN (default: python3 -m attn_cli).
# Data for nmt first, here (the prepared folder travels): attn prepare nmt --dataset multi30k ...
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-out}
mkdir -p "$out"
read -r -a attn <<<"${ATTN_BIN:-python3 -m attn_cli}"
plan=${PLAN:-nmt}
tag=${TAG:-gpu}  # records and runs are named <recipe>@<tag>
minutes=${TRAIN_MIN:-4.5}
log="$out/session.log"
t0=$(date +%s)
say() { echo "[$(($(date +%s) - t0))s] $*" | tee -a "$log"; }
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
ts=$(date +%Y%m%d-%H%M%S)
logs=runs/gpu-session-$ts
mkdir -p "$logs"

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"; } | tee -a "$log"
say "plan $plan; git ${ATTN_GIT_SHA:-unknown}; python $(python3 --version 2>&1)"

fit_minutes() {  # shrink the training cap so that evaluation and packing (~200 s) still fit the deadline
  if [ -n "${DEADLINE_S:-}" ]; then
    minutes=$(python3 -c "print(round(max(0.5, min(float('$minutes'), ($DEADLINE_S - $(($(date +%s) - t0)) - 200) / 60)), 2))")
  fi
}

recipe_sets() {  # extra `--set`s for one recipe: DRAW at the paper's T = 64 (its recipes use 16 to fit a CPU);
  # the RTS pair on fresh distortions every batch (20 epochs of the fixed set overfit: docs/vision.md)
  case $1 in
    draw-gen | draw-gen-noattn) echo "--set model.steps=64" ;;
    cnn-rts | stn-cnn-affine-rts) echo "--set data.resample=true --set train.max_epochs=60" ;;
  esac
}

train_all() {  # train_all TASK RECIPE... : side by side, each `--set`s from TRAIN_SETS, recorded later as RECIPE@$tag
  local task=$1 r
  shift
  local cap
  cap=$(python3 -c "print(int(float('$minutes') * 60 + 75))")
  say "$task: $* — at most $minutes min each, side by side"
  for r in "$@"; do
    # shellcheck disable=SC2086  # TRAIN_SETS and EXTRA_TRAIN_ARGS are lists of words
    timeout "$cap" "${attn[@]}" train "$task" --recipe "$r" --run-dir "runs/$task/$r@$tag/$ts" \
      --set train.max_time_min="$minutes" ${TRAIN_SETS:-} $(recipe_sets "$r") ${EXTRA_TRAIN_ARGS:-} \
      >"$logs/train-$r.log" 2>&1 &
  done
  wait
  for r in "$@"; do
    say "$r: $(grep -ho '"\(steps\|epochs\)": [0-9]*' "runs/$task/$r@$tag/$ts/train_done.json" 2>/dev/null | tr '\n' ' ' ||
      echo 'no train_done.json')"
  done
}

eval_cap=150
set_eval_cap() {
  if [ -n "${DEADLINE_S:-}" ]; then
    eval_cap=$((DEADLINE_S - ($(date +%s) - t0) - 15))
    [ "$eval_cap" -gt 150 ] && eval_cap=150
    [ "$eval_cap" -lt 10 ] && eval_cap=10
  fi
}
evaluate() {  # evaluate TASK NAME RUN [args...]  (a named evaluation: several of one run can run at once)
  local task=$1 name=$2 run=$3
  shift 3
  timeout "$eval_cap" "${attn[@]}" eval "$task" --run "$run" --record --name "$name" "$@" >"$logs/eval-$name.log" 2>&1
  say "eval $name rc=$?"
}

pack() {  # pack TASK RESULT_GLOB...
  local task=$1
  shift
  tar czf "$out/results.tgz" "$@" 2>>"$log"
  tar czf "$out/logs.tgz" "$logs" runs/"$task"/*@$tag/"$ts"/*.json runs/"$task"/*@$tag/"$ts"/*.yaml \
    runs/"$task"/*@$tag/"$ts"/logs runs/"$task"/*@$tag/"$ts"/eval 2>>"$log"
  say "packed: $(ls "$out" | tr '\n' ' ')"
}

plan_nmt() {
  local ladder r lp
  ladder=${RECIPES:-ladder-base ladder-reverse ladder-dropout ladder-global-location ladder-feed ladder-local-p}
  if [ -z "${SKIP_BENCH:-}" ]; then
    say "bench: ${BENCH_STEPS:-300} updates each, default precision"
    timeout "${BENCH_TIMEOUT:-150}" "${attn[@]}" bench nmt --steps "${BENCH_STEPS:-300}" --out results/bench \
      >"$logs/bench.log" 2>&1
    local rc=$?
    say "bench rc=$rc"
    if [ $rc -ne 0 ]; then
      tail -5 "$logs/bench.log" | tee -a "$log"
      timeout "${BENCH_TIMEOUT:-150}" "${attn[@]}" bench nmt --steps "${BENCH_STEPS:-300}" --out results/bench \
        --set train.precision=32-true >"$logs/bench-fp32.log" 2>&1
      say "bench (32-true) rc=$?"
    fi
  fi
  fit_minutes
  TRAIN_SETS="--set train.max_epochs=${EPOCHS:-12} --set train.max_steps=-1 --set train.precision=32-true" \
    train_all nmt $ladder
  set_eval_cap
  for r in $ladder; do
    evaluate nmt "$r@$tag" "runs/nmt/$r@$tag/$ts" --beam 5 --set train.precision=32-true &
  done
  lp=runs/nmt/ladder-local-p@$tag/$ts
  evaluate nmt "ladder-local-p@$tag+unk" "$lp" --beam 5 --set train.precision=32-true --set eval.unk_replace=true &
  evaluate nmt "ensemble@$tag+unk" "$lp" --beam 5 --set train.precision=32-true --set eval.unk_replace=true \
    --ensemble "runs/nmt/ladder-feed@$tag/$ts/checkpoints/best.ckpt" \
    --ensemble "runs/nmt/ladder-global-location@$tag/$ts/checkpoints/best.ckpt" &
  wait
  pack nmt results/bench/*-gpu.json results/nmt/multi30k-de-en/*@$tag*
}

plan_vision() {
  local recipes r d
  recipes=${RECIPES:-stn-cnn-affine-rts cnn-rts ram-28-6g draw-gen draw-gen-noattn}
  local src=${MNIST_SRC:-../shared/data/mnist}
  for d in mnist mnist-rts; do
    "${attn[@]}" prepare vision --dataset "$d" --source "$src" >"$logs/prepare-$d.log" 2>&1
    say "prepare $d rc=$?"
  done
  if [ -n "${BENCH_VISION:-}" ]; then  # DRAW at T = 64 eager vs compiled (one time step compiled), back to back
    timeout "${BENCH_TIMEOUT:-240}" "${attn[@]}" bench vision --recipe draw-gen --set model.steps=64 --steps 60 \
      --warmup 6 --compare train.compile=true --out results/bench >"$logs/bench-vision.log" 2>&1
    say "bench vision (draw-gen, compile) rc=$?"
  fi
  fit_minutes
  # every recipe keeps its own epochs; DRAW runs at T = 64 (recipe_sets); STEPS=N stops every training at N
  # updates, so that each pair is compared at equal updates (the time cap stays, as a safety net)
  TRAIN_SETS="--set train.max_steps=${STEPS:--1}" train_all vision $recipes
  set_eval_cap
  for r in $recipes; do
    evaluate vision "$r@$tag" "runs/vision/$r@$tag/$ts" &
  done
  wait
  pack vision results/vision/*/*@$tag results/bench/*-train-gpu*.json
}

"plan_$plan"
