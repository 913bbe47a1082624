#!/usr/bin/env bash
# Seconds per step of every flow-map method on this machine, one run at a time (nothing else
# should run), 2000 steps each (1000 for a teacher), both JVP routes for the methods that take
# one: the "Performance" section of docs/baselines.md.
#
#   scripts/flow-map-timing.sh ROOT [THREADS]      (default 1 libtorch thread, as the study)
set -euo pipefail
root=${1:?usage: flow-map-timing.sh ROOT [THREADS]}
threads=${2:-1}
bin=${MIDPOINT_TRAIN:-target/release/midpoint-train}
run() {
  local name=$1; shift
  "$bin" flowmap --data checkerboard --steps 2000 --teacher-steps 1000 --warmup 0 --anneal 0 \
    --eval-steps 1 --eval-samples 200 --curve-every 0 --threads "$threads" --quiet --overwrite \
    --out "$root/$name/seed0" "$@" > /dev/null
}
for m in fm lsd esd psd-m psd-u lmd emd fmm pfmm; do run "$m" --method "$m"; done
for m in lsd esd lmd emd fmm; do run "$m-double-backward" --method "$m" --jvp double-backward; done
for m in lsd esd lmd emd fmm; do
  for r in "$root/$m" "$root/$m-double-backward"; do
    printf '%s %s\n' "$(basename "$r")" "$(grep -o '"step_seconds":[0-9.e-]*' "$r/seed0/losses.jsonl" | tail -1000 | cut -d: -f2 | sort -g | sed -n 500p)"
  done
done
