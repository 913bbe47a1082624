#!/usr/bin/env bash
# Usage: core.sh MIDPOINT_BIN OUTDIR [REPORT_CMD]
# (REPORT_CMD: the examples/report binary, built by
#  `cargo build --release --features diagnostics --example report`; before it was an example
#  it was the hidden `midpoint report`, the default here.)
# Runs the README "Command line" examples of `midpoint exact` (and `sample`, `demo`,
# `estimate`) on the law files in inputs/, writes each output into OUTDIR and their sha256
# into OUTDIR/SHA256SUMS. Two builds agree bit for bit when their SHA256SUMS are identical. REPORT_CMD (default: "MIDPOINT_BIN report") runs the
# docs/two-sample.md measurements at a tiny size; the "wall s" columns (wall-clock timing)
# are cut out of those tables before hashing.
set -euo pipefail
BIN=$(readlink -f "$1")
OUT=$(readlink -m "$2")
REPORT=${3:-"$BIN report"}
IN=$(dirname "$(readlink -f "$0")")/inputs
mkdir -p "$OUT"
cd "$IN"
run() { # name, command...
  local name=$1; shift
  "$@" > "$OUT/$name" 2> "$OUT/$name.stderr" || echo "exit $?" >> "$OUT/$name"
}
# README "Command line", exactly as written, on p0.json (2-D Gaussian) and p1.json (2-D discrete).
run exact-tmid.json   "$BIN" exact --p0 p0.json --p1 p1.json --divergence tmid --sigma 0.05 --json
run exact-at-t.txt    "$BIN" exact --p0 p0.json --p1 p1.json --divergence at-t --t 0.2
run exact-mid-trig.txt "$BIN" exact --p0 p0.json --p1 p1.json --divergence mid --interpolant trig
run sample-x0.stdout  "$BIN" sample --law p0.json -n 10000 --seed 1 -o "$OUT/x0.npy"
# The same three exact commands on other pairs (every exact route, and the Monte Carlo
# fallback with the SIMD fast path), each as text and JSON.
for pair in "g2a g2b" "g1a g1b" "g1a d1" "d1 g1b" "g3a g3b" "g3a d3" "p1 p0"; do
  read -r a b <<<"$pair"
  set -- "$a" "$b"
  tag="$1-$2"
  run "$tag-tmid.json"  "$BIN" exact --p0 "$1.json" --p1 "$2.json" --divergence tmid --sigma 0.05 --json
  run "$tag-tmid0.txt"  "$BIN" exact --p0 "$1.json" --p1 "$2.json" --divergence tmid
  run "$tag-at-t.json"  "$BIN" exact --p0 "$1.json" --p1 "$2.json" --divergence at-t --t 0.2 --json
  run "$tag-mid-trig.json" "$BIN" exact --p0 "$1.json" --p1 "$2.json" --divergence mid --interpolant trig --json
  # (the unflipped naive integral of a 2-D Gaussian against atoms takes minutes: skipped there)
  [ "$tag" = p1-p0 ] || run "$tag-naive.json" "$BIN" exact --p0 "$1.json" --p1 "$2.json" --divergence naive --sigma 0.1 --json
done
run demo.txt "$BIN" demo
# estimate at n = 1000, d = 10 (run in OUT with relative file names: messages name no
# machine path).
cd "$OUT"
run sample-a.stdout "$BIN" sample --law "$IN/n10a.json" -n 1000 --seed 11 -o a.npy
run sample-b.stdout "$BIN" sample --law "$IN/n10b.json" -n 1000 --seed 12 -o b.npy
run estimate.json        "$BIN" estimate --x0 a.npy --x1 b.npy --seed 7 --json --quiet
run estimate-mid.json    "$BIN" estimate --x0 a.npy --x1 b.npy --seed 7 --divergence mid --json --quiet
run estimate-knn.json    "$BIN" estimate --x0 a.npy --x1 b.npy --seed 7 --critic knn --json --quiet
run estimate-perm.json   "$BIN" estimate --x0 a.npy --x1 b.npy --seed 7 --test permutation --permutations 5 --json --quiet
run estimate.txt         "$BIN" estimate --x0 a.npy --x1 b.npy --seed 7 --quiet
run estimate-dims.txt    "$BIN" estimate --x0 x0.npy --x1 a.npy --quiet
# 2-D, Gaussian against atoms, σ > 0, trigonometric interpolant.
run sample-c.stdout "$BIN" sample --law "$IN/p1.json" -n 2000 --seed 5 -o c.csv
run estimate-2d-trig.json "$BIN" estimate --x0 x0.npy --x1 c.csv --sigma 0.1 --interpolant trig --seed 2 --json --quiet
# The hidden report command (now an example): tiny runs; wall-clock columns cut.
nowall() { # drop the table columns whose header says "wall s"
  awk -F'|' 'NR==1{for(i=1;i<=NF;i++) if($i ~ /wall s/) drop[i]=1}
             {s=""; for(i=1;i<=NF;i++) if(!drop[i]) s=s $i (i<NF?"|":""); print s}'
}
$REPORT calibration --reps 3 --n 200 --resamples 50 --divergence tmid,mid 2>/dev/null | nowall > "$OUT/report-calibration.md"
$REPORT coverage --reps 2 --n 300 --laws gauss1d-shift,discrete3-sigma0.1 --divergence mid,tmid 2>/dev/null > "$OUT/report-coverage.md"
$REPORT convergence --laws gauss2d-cov --n 300 2>/dev/null | nowall > "$OUT/report-convergence.md"
$REPORT power --reps 2 --n 200 --resamples 50 --out "$OUT/power.md" 2>/dev/null > /dev/null
nowall < "$OUT/power.md" > "$OUT/report-power.md"; rm "$OUT/power.md"
cut -d, -f1-5 "$OUT/power.csv" > "$OUT/report-power-csv-nowall.csv"; rm "$OUT/power.csv"

cd "$OUT"
files=()
for f in *; do [ "$f" = SHA256SUMS ] || files+=("$f"); done
sha256sum "${files[@]}" > SHA256SUMS
echo "wrote $OUT/SHA256SUMS ($(wc -l < SHA256SUMS) files)"
