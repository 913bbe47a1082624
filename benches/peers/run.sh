#!/usr/bin/env bash
# Peer comparison: dcor's energy-distance test and hyppo's MMD test beside `midpoint estimate`
# (wall time, peak memory, power). Creates its own virtual environment outside the repository
# (${MIDPOINT_PEERS_VENV:-$HOME/.cache/midpoint/peers-venv}) with pinned versions, builds our
# binary, and writes CSV files under benches/peers/results/ (then see docs/two-sample.md for
# the `cargo run --release --features diagnostics --example report -- power --peers ...` step
# that merges them into tables and plots).
#
#   benches/peers/run.sh timing [--ns 1000,2000,5000] [--ours-ns ...] [--resamples 200]
#   benches/peers/run.sh power  [--ns 200,500,1000,2000,5000] [--reps 100] [--budget 120]
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${MIDPOINT_PEERS_VENV:-$HOME/.cache/midpoint/peers-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q dcor==0.7 hyppo==0.5.2 numpy==2.4.6 scipy==1.17.1 numba==0.68.1
# MIDPOINT_BIN names a prebuilt binary; otherwise build ours.
if [ -z "${MIDPOINT_BIN:-}" ]; then cargo build --release --quiet; fi
exec "$VENV/bin/python" benches/peers/peers.py "$@"
