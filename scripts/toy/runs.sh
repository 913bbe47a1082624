#!/usr/bin/env bash
# Runs toy trainings two at a time (the 2-core machine; one libtorch thread each) and skips
# those already done. Each line of the job file is `NAME ARGS...`: `midpoint-train toy --quiet
# --out OUT/NAME ARGS...`, its stdout/stderr in OUT/NAME.log and its wall time in OUT/NAME.time.
#
#   scripts/toy/runs.sh JOBS_FILE OUT [PARALLEL=2]
set -euo pipefail
jobs="$1" out="$2" par="${3:-2}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${MIDPOINT_TRAIN:-${CARGO_TARGET_DIR:-$root/target}/release/midpoint-train}"
[ -x "$bin" ] || { echo "runs.sh: $bin missing: cargo build --release -p midpoint-train" >&2; exit 1; }
mkdir -p "$out"
export bin out
grep -v '^\s*\(#\|$\)' "$jobs" | xargs -P "$par" -L 1 bash -c '
  name="$0"
  [ -f "$out/$name/metrics.json" ] && exit 0
  start=$(date +%s.%N)
  if "$bin" toy --quiet --out "$out/$name" "$@" >"$out/$name.log" 2>&1; then
    awk -v a="$start" -v b="$(date +%s.%N)" "BEGIN { printf \"%.1f\\n\", b - a }" >"$out/$name.time"
    echo "$name: $(tail -n 1 "$out/$name.log")"
  else
    echo "$name: FAILED: $(tail -n 1 "$out/$name.log")" >&2
  fi'
