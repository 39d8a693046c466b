#!/usr/bin/env bash
# JoeyNMT 2.3 (the peer) and attn, side by side on this machine: same data, same model, same steps,
# REPEATS times (default 3), each repeat one peer run then ours for each model, back to back.
# Writes results/bench/peer-joeynmt.txt (the peer's summary lines, with rep=K and the load average),
# our figures results/bench/<recipe>-cpu-rK.json, and the comparison results/bench/README.md
# (median and min-max per figure). LIMIT=1 adds `--limit` to our last repeat (the FLOP census).
# PRECISIONS (default "32-true bf16-mixed"): ours once per precision after each peer run, bf16-mixed's figures
# as <recipe>-cpu-rK-bf16.json (the peer stays float32: its CPU autocast is float16 only).
# Measure on an otherwise idle machine: the load average is recorded beside every figure.
set -euo pipefail
cd "$(dirname "$0")/.."
PEER_DIR=${PEER_DIR:-../shared/peers/joeynmt}
export PEER_DATA=${PEER_DATA:-$(cd ../shared/data/multi30k && pwd)}
STEPS=${BENCH_STEPS:-300}
REPEATS=${REPEATS:-3}
PRECISIONS=${PRECISIONS:-32-true bf16-mixed}
ATTN=${ATTN:-.venv/bin/attn}
mkdir -p results/bench
bash "$PEER_DIR/setup.sh"
bash "$PEER_DIR/prepare.sh"
$ATTN prepare nmt --dataset multi30k --source "$PEER_DATA/task1"
: > results/bench/peer-joeynmt.txt
rm -f results/bench/*-cpu-r[0-9]*.json
load() { cut -d' ' -f1 /proc/loadavg; }
for rep in $(seq 1 "$REPEATS"); do
  limit=""
  [[ "${LIMIT:-0}" == 1 && "$rep" == "$REPEATS" ]] && limit="--limit"
  # interleave peer and ours so that both see the same machine load
  for pair in "luong luong-global-general" "bahdanau bahdanau-lstm"; do
    set -- $pair
    before=$(load)
    line=$(BENCH_STEPS=$STEPS bash "$PEER_DIR/bench.sh" "$1" | grep '^PEER joeynmt')
    echo "$line rep=$rep load_before=$before load_after=$(load)" >> results/bench/peer-joeynmt.txt
    for precision in $PRECISIONS; do
      suffix=""
      [[ "$precision" == bf16-mixed ]] && suffix="-bf16"
      $ATTN bench nmt --recipe "$2" --steps "$STEPS" --tag "r$rep$suffix" --set "train.precision=$precision" $limit
    done
  done
done
$ATTN bench nmt --report --peer results/bench/peer-joeynmt.txt
