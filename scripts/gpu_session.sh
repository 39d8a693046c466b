#!/usr/bin/env bash
# One call on a lent GPU (the device machine runs a copy of the tree, no .git, no install):
#   1. `attn bench nmt` on the GPU (results/bench/<recipe>-gpu.json);
#   2. the Luong ladder (the six `ladder-*` recipes) trained side by side on the one GPU, 12 epochs each
#      (the paper's count) under a wall-clock cap, each evaluated with beam 5 and recorded as `<recipe>@gpu`,
#      plus `ladder-local-p@gpu+unk` and `ensemble@gpu+unk` (the three attention models, averaged).
# Everything it made is packed into $OUT/results.tgz (records + bench) and $OUT/logs.tgz; unpack
# results.tgz in the repository root and regenerate the tables (`attn table --all`).
#
#   ATTN_GIT_SHA=$(git rev-parse HEAD) OUT=/tmp/gpu-out bash scripts/gpu_session.sh
#
# Knobs (environment): BENCH_STEPS (500), LADDER_MIN (minutes of training per row, 4.5), LADDER_EPOCHS (12),
# DEADLINE_S (seconds the whole script may take: the ladder's minutes shrink to fit), LADDER (the recipes),
# EXTRA_TRAIN_ARGS (appended to each `attn train`), ATTN_BIN (default: python3 -m attn_cli), SKIP_BENCH=1.
# Data first (on this machine; the prepared folder travels): attn prepare nmt --dataset multi30k ...
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-out}
mkdir -p "$out"
read -r -a attn <<<"${ATTN_BIN:-python3 -m attn_cli}"
bench_steps=${BENCH_STEPS:-500}
minutes=${LADDER_MIN:-4.5}
epochs=${LADDER_EPOCHS:-12}
ladder=${LADDER:-ladder-base ladder-reverse ladder-dropout ladder-global-location ladder-feed ladder-local-p}
log="$out/session.log"
t0=$(date +%s)
say() { echo "[$(($(date +%s) - t0))s] $*" | tee -a "$log"; }
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
ts=$(date +%Y%m%d-%H%M%S)
logs=runs/gpu-session-$ts
mkdir -p "$logs"

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"; } | tee -a "$log"
say "git ${ATTN_GIT_SHA:-unknown}; python $(python3 --version 2>&1)"

if [ -z "${SKIP_BENCH:-}" ]; then
  say "bench: ${bench_steps} updates each, default precision"
  timeout "${BENCH_TIMEOUT:-150}" "${attn[@]}" bench nmt --steps "$bench_steps" --out results/bench >"$logs/bench.log" 2>&1
  rc=$?
  say "bench rc=$rc"
  if [ $rc -ne 0 ]; then
    tail -5 "$logs/bench.log" | tee -a "$log"
    say "bench again in 32-true"
    timeout "${BENCH_TIMEOUT:-150}" "${attn[@]}" bench nmt --steps "$bench_steps" --set train.precision=32-true \
      >"$logs/bench-fp32.log" 2>&1
    say "bench (32-true) rc=$?"
  fi
fi

if [ -n "${DEADLINE_S:-}" ]; then  # fit the rest into the call's limit: evaluations and packing need ~2 minutes
  minutes=$(python3 -c "print(round(max(0.5, min(float('$minutes'), ($DEADLINE_S - $(($(date +%s) - t0)) - 200) / 60)), 2))")
fi
say "ladder: ${ladder} — ${epochs} epochs, at most ${minutes} min each, side by side, 32-true"
cap=$(python3 -c "print(int(float('$minutes') * 60 + 75))")
for r in $ladder; do
  timeout "$cap" "${attn[@]}" train nmt --recipe "$r" --run-dir "runs/nmt/$r@gpu/$ts" \
    --set train.max_epochs="$epochs" --set train.max_steps=-1 --set train.max_time_min="$minutes" \
    --set train.precision=32-true ${EXTRA_TRAIN_ARGS:-} >"$logs/train-$r.log" 2>&1 &
done
wait
say "ladder trained"
for r in $ladder; do
  say "$r: $(grep -ho '"steps": [0-9]*' "runs/nmt/$r@gpu/$ts/train_done.json" 2>/dev/null || echo 'no train_done.json')"
done

eval_cap=${EVAL_TIMEOUT:-150}
if [ -n "${DEADLINE_S:-}" ]; then
  eval_cap=$((DEADLINE_S - ($(date +%s) - t0) - 15))
  [ "$eval_cap" -gt 150 ] && eval_cap=150
  [ "$eval_cap" -lt 10 ] && eval_cap=10
fi
evaluate() {  # evaluate NAME RUN [args...]
  local name=$1 run=$2
  shift 2
  timeout "$eval_cap" "${attn[@]}" eval nmt --run "$run" --beam 5 --record --name "$name" \
    --set train.precision=32-true "$@" >"$logs/eval-$name.log" 2>&1
  say "eval $name rc=$?"
}
for r in $ladder; do
  evaluate "$r@gpu" "runs/nmt/$r@gpu/$ts" &
done
lp=runs/nmt/ladder-local-p@gpu/$ts
evaluate "ladder-local-p@gpu+unk" "$lp" --set eval.unk_replace=true &
evaluate "ensemble@gpu+unk" "$lp" --set eval.unk_replace=true \
  --ensemble "runs/nmt/ladder-feed@gpu/$ts/checkpoints/best.ckpt" \
  --ensemble "runs/nmt/ladder-global-location@gpu/$ts/checkpoints/best.ckpt" &
wait

tar czf "$out/results.tgz" results/bench/*-gpu.json results/nmt/multi30k-de-en/*@gpu* 2>>"$log"
tar czf "$out/logs.tgz" "$logs" runs/nmt/*@gpu/"$ts"/*.json runs/nmt/*@gpu/"$ts"/*.yaml \
  runs/nmt/*@gpu/"$ts"/eval 2>>"$log"
say "packed: $(ls "$out")"
