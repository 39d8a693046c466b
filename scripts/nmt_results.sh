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

if [ "$what" = train ] || [ "$what" = all ]; then
  bash scripts/sweep.sh --local --train-args "$targs" nmt \
    ladder-base ladder-reverse ladder-dropout ladder-global-location ladder-feed ladder-local-p \
    luong-global-dot luong-global-location &
  bash scripts/sweep.sh --local --train-args "$targs" nmt \
    luong-global-general seq2seq rnnencdec bahdanau luong-local-p luong-local-m luong-local-m-dot luong-local-p-dot
  wait
  # global (general) at the 500-step budget of the other attention rows (the recipe itself has 30 minutes)
  run="$runs/nmt/luong-global-general@500/$(date +%Y%m%d-%H%M%S)"
  "$attn" train nmt --recipe luong-global-general --run-dir "$run" $targs \
    --set train.max_steps=500 --set train.max_time_min=null
  "$attn" eval nmt --run "$run" --beam 5 --record --name luong-global-general@500
fi

if [ "$what" = extras ] || [ "$what" = all ]; then
  # Luong et al. §4: unk replacement from the attention weights (BLEU "+unk" columns)
  for r in luong-global-location luong-global-dot luong-global-general@500 luong-local-m-dot luong-local-m \
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
