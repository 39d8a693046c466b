#!/usr/bin/env bash
# Every NMT result behind `attn table luong`, `luong-attention` and `bahdanau`, one command each:
# train + beam-5 test evaluation + record (scripts/sweep.sh), then the unk-replacement and ensemble
# rows from the finished runs. Two sweeps run side by side, one thread each (a 2-core machine).
#
#   scripts/nmt_results.sh [train|extras|all]     (default: all)
#
# TRAIN_ARGS replaces the extra `attn train` arguments (default "--set train.threads=1"), e.g. on a GPU:
#   TRAIN_ARGS="--accelerator gpu --set train.max_steps=-1 --set train.max_epochs=12" scripts/nmt_results.sh
#
# Data first: attn prepare nmt --dataset multi30k --source ../shared/data/multi30k/task1
set -euo pipefail
cd "$(dirname "$0")/.."
attn=${ATTN_BIN:-$(command -v attn || echo .venv/bin/attn)}
runs=${ATTN_RUNS:-runs}
what=${1:-all}
targs=${TRAIN_ARGS:---set train.threads=1}

latest() {  # newest finished run of a recipe (or name under runs/nmt/)
  local d best=""
  for d in "$runs"/nmt/"$1"/*/; do [ -f "$d/train_done.json" ] && best=${d%/}; done
  [ -n "$best" ] || { echo "error: no finished run of $1 under $runs/nmt/$1" >&2; return 1; }
  echo "$best"
}

named() {  # named NAME RECIPE [attn train args...]: a recipe under another budget, recorded as NAME
  local name=$1 recipe=$2; shift 2
  local run="$runs/nmt/$name/$(date +%Y%m%d-%H%M%S)"
  "$attn" train nmt --recipe "$recipe" --run-dir "$run" "$@"
  "$attn" eval nmt --run "$run" --beam 5 --record --name "$name"
}
steps() { echo --set train.max_steps="$1" --set train.max_time_min=null; }
minutes() { echo --set train.max_steps=-1 --set train.max_time_min="$1" --set train.max_epochs=30; }

if [ "$what" = train ] || [ "$what" = all ]; then
  # the recipes' own budgets: 1,500 updates (ladder), 500 (bahdanau table), 2,500 (luong-attention table)
  bash scripts/sweep.sh --local --train-args "$targs" nmt \
    ladder-base ladder-reverse ladder-dropout ladder-global-location ladder-feed ladder-local-p \
    luong-global-location luong-local-p luong-local-m &
  bash scripts/sweep.sh --local --train-args "$targs" nmt \
    seq2seq rnnencdec bahdanau luong-global-dot luong-local-p-dot luong-local-m-dot
  wait
  # global (general) at the other rows' budgets (the recipe itself trains for 30 minutes)
  named luong-global-general@500 luong-global-general $targs $(steps 500) &
  named luong-global-general@2500 luong-global-general $targs $(steps 2500)
  wait
  # 30 minutes of training: RNNsearch and seq2seq side by side (one thread each), then seq2seq alone
  named bahdanau@30min bahdanau $targs $(minutes 30) &
  named seq2seq@30min seq2seq $targs $(minutes 30)
  wait
  named seq2seq@30min-alone seq2seq ${TRAIN_ARGS:-} $(minutes 30)
  # RNNencdec for 30 minutes, one thread (recorded beside a 30-minute DMN training, one thread each)
  named rnnencdec@30min rnnencdec $targs $(minutes 30)
  # the headline: the luong-global-general recipe as it is (30 minutes, two threads, nothing beside it)
  named luong-global-general luong-global-general ${TRAIN_ARGS:-}
fi

if [ "$what" = extras ] || [ "$what" = all ]; then
  # Luong et al. §4: unk replacement from the attention weights (BLEU "+unk" columns)
  for r in luong-global-location luong-global-dot luong-global-general@2500 luong-local-m-dot luong-local-m \
           luong-local-p-dot luong-local-p ladder-local-p; do
    run=$(latest "$r") || continue
    "$attn" eval nmt --run "$run" --beam 5 --set eval.unk_replace=true --record --name "$r+unk"
  done
  # the ladder's last row: the attention models of the ladder, probabilities averaged, + unk replacement
  lp=$(latest ladder-local-p) && fd=$(latest ladder-feed) && gl=$(latest ladder-global-location) &&
    "$attn" eval nmt --run "$lp" --beam 5 --ensemble "$fd/checkpoints/best.ckpt" --ensemble "$gl/checkpoints/best.ckpt" \
      --set eval.unk_replace=true --record --name ensemble+unk
  "$attn" table --all
fi
