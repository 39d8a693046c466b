#!/usr/bin/env bash
# JoeyNMT 2.3 (the peer) and attn, side by side on this machine: same data, same model, same steps.
# Writes results/bench/peer-joeynmt.txt (the peer's summary lines), our figures
# results/bench/<recipe>-cpu.json, and the comparison results/bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PEER_DIR=${PEER_DIR:-../shared/peers/joeynmt}
export PEER_DATA=${PEER_DATA:-$(cd ../shared/data/multi30k && pwd)}
STEPS=${BENCH_STEPS:-300}
ATTN=${ATTN:-.venv/bin/attn}
mkdir -p results/bench
bash "$PEER_DIR/setup.sh"
bash "$PEER_DIR/prepare.sh"
$ATTN prepare nmt --dataset multi30k --source "$PEER_DATA/task1"
: > results/bench/peer-joeynmt.txt
# interleave peer and ours so that both see the same machine load
for pair in "luong luong-global-general" "bahdanau bahdanau-lstm"; do
  set -- $pair
  BENCH_STEPS=$STEPS bash "$PEER_DIR/bench.sh" "$1" | grep '^PEER joeynmt' >> results/bench/peer-joeynmt.txt
  $ATTN bench nmt --recipe "$2" --steps "$STEPS"
done
$ATTN bench nmt --report --peer results/bench/peer-joeynmt.txt
