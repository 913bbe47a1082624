#!/usr/bin/env bash
# Digits runs of issue 15 §3, PAR at a time (default 2: the 2-core machine), skipping those
# already done. Each line of JOBS is one of
#   warmup NAME ARGS...          midpoint-train warmup on the digits (into OUT/NAME)
#   mgm NAME WARMUP ARGS...      midpoint-train mgm from OUT/WARMUP's checkpoint (into OUT/NAME)
#   flowmap NAME ARGS...         midpoint-train flowmap-image on the digits (into OUT/NAME), also
#                                measured at every K of FLOWMAP_STEPS (default 1 2 4 8) sampling
#                                steps (OUT/NAME/metrics-kK.json)
# and every finished run is measured by `image-metrics` against the held-out digits
# (OUT/NAME/metrics.json, OUT/NAME/samples.png; a warmup's measures its one-step generator,
# the MGM init). Run the warmup lines before the mgm lines that need them (separate files).
# The first call exports the digits (scripts/digits/export.sh) into OUT/data and trains the
# feature network once (OUT/features.safetensors).
#
#   scripts/digits/runs.sh JOBS OUT [PAR=2]
set -euo pipefail
jobs="$1" out="$2" par="${3:-2}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${MIDPOINT_TRAIN:-${CARGO_TARGET_DIR:-$root/target}/release/midpoint-train}"
[ -x "$bin" ] || { echo "runs.sh: $bin missing: cargo build --release -p midpoint-train" >&2; exit 1; }
mkdir -p "$out"
[ -f "$out/data/split.json" ] || bash "$root/scripts/digits/export.sh" "$out/data"
[ -f "$out/features.safetensors" ] ||
  "$bin" feature-net --train "$out/data/train" --heldout "$out/data/held-out" \
    --out "$out/features.safetensors" | tee "$out/features.log"
export bin out
grep -v '^\s*\(#\|$\)' "$jobs" | xargs -P "$par" -L 1 bash -c '
  kind="$0" name="$1"; shift
  [ -f "$out/$name/metrics.json" ] && exit 0
  start=$(date +%s.%N)
  case "$kind" in
    warmup) cmd=("$bin" warmup --data "$out/data/train" --arch digits --batch 128
                 --lr-rampup-kimg 10 --ema-halflife-kimg 20 --checkpoint-every 250
                 --quiet --out "$out/$name" "$@") ;;
    mgm) init="$1"; shift
         # A warmup is finished once it is measured; its periodic checkpoint is not.
         [ -f "$out/$init/metrics.json" ] || { echo "$name: warmup $init not finished: run it first" >&2; exit 1; }
         cmd=("$bin" mgm --warmup "$out/$init/checkpoint.safetensors" --data "$out/data/train"
              --batch 128 --fid-every 0 --final-fid 0 --grid-every 100 --checkpoint-every 100
              --quiet --out "$out/$name" "$@") ;;
    flowmap) cmd=("$bin" flowmap-image --data "$out/data/train" --arch digits --batch 128
                  --fid-every 0 --final-fid 0 --grid-every 500 --checkpoint-every 500
                  --quiet --out "$out/$name" "$@") ;;
    *) echo "$name: unknown kind $kind" >&2; exit 1 ;;
  esac
  measure() {
    "$bin" image-metrics --checkpoint "$out/$name/checkpoint.safetensors" \
      --train "$out/data/train" --heldout "$out/data/held-out" \
      --features "$out/features.safetensors" --seed 0 "$@" >>"$out/$name.log" 2>&1
  }
  if "${cmd[@]}" >"$out/$name.log" 2>&1 &&
     awk -v a="$start" -v b="$(date +%s.%N)" "BEGIN { printf \"%.1f\\n\", b - a }" >"$out/$name.train-time" &&
     measure --out "$out/$name/metrics.json" --grid "$out/$name/samples.png"; then
    if [ "$kind" = flowmap ]; then
      for k in ${FLOWMAP_STEPS:-1 2 4 8}; do
        measure --steps "$k" --out "$out/$name/metrics-k$k.json" --grid "$out/$name/samples-k$k.png" ||
          echo "$name: measuring at $k steps FAILED: $(tail -n 1 "$out/$name.log")" >&2
      done
    fi
    awk -v a="$start" -v b="$(date +%s.%N)" "BEGIN { printf \"%.1f\\n\", b - a }" >"$out/$name.time"
    echo "$name: done in $(cat "$out/$name.time") s (training $(cat "$out/$name.train-time") s)"
  else
    echo "$name: FAILED: $(tail -n 1 "$out/$name.log")" >&2
  fi' 
