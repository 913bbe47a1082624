#!/usr/bin/env bash
# Usage: train.sh MIDPOINT_TRAIN_BIN OUTDIR
#
# Reproducibility check of the reference trainer `midpoint-train` on the CPU: tiny runs of
# `toy`, `critic-check`, and the image pipeline (`warmup` -> `mgm` -> `mgm --resume`,
# `fid-ref`, `fid`, `mgm` with periodic FID), all with fixed seeds, `--device cpu
# --threads 1 --quiet`. Every deterministic output is canonicalised (wall-clock fields
# removed, grids named by step) into OUTDIR/canon/ and hashed into OUTDIR/hashes.txt
# (`sha256  label`, sorted); OUTDIR/notes.txt says what was not hashed and why.
# Two binaries agree bit for bit when their hashes.txt are identical.
#
# Runs in OUTDIR with relative paths only (the checkpoints record the data folder's path, and
# `fid --json` the reference's), so two OUTDIRs give the same bytes. About 2 minutes on
# 2 cores. The environment (torch's lib/ on LD_LIBRARY_PATH, MIDPOINT_INCEPTION for FID)
# comes from scripts/ensure-libtorch.sh and scripts/ensure-inception.sh.
#
# Use it to show that a change keeps the trainer's outputs: build the binary before and after,
# copy each out of target/, run this script on both and diff the two hashes.txt.
set -euo pipefail
BIN=$(readlink -f "$1")
OUT=$(readlink -m "$2")
HERE=$(dirname "$(readlink -f "$0")")
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=/dev/null
source "$ROOT/scripts/ensure-libtorch.sh"
# shellcheck source=/dev/null
source "$ROOT/scripts/ensure-inception.sh"
if [[ -e "$OUT" && -n "$(ls -A "$OUT")" ]]; then
  echo "error: $OUT exists and is not empty" >&2; exit 1
fi
mkdir -p "$OUT" && cd "$OUT"
mkdir -p critic fid snapshots logs
CPU=(--device cpu --threads 1 --quiet)
: > timings.txt
step() { # name, command...: stdout to logs/NAME.stdout, stderr to logs/NAME.stderr, time noted
  local name=$1; shift
  local t0=$SECONDS
  echo "+ $*" | sed "s|$BIN|BIN|" | tee -a logs/commands.txt
  local rc=0
  "$@" > "logs/$name.stdout" 2> "logs/$name.stderr" || rc=$?
  if (( rc != 0 )); then
    echo "error: $name failed (exit $rc):" >&2; cat "logs/$name.stderr" >&2; exit 1
  fi
  echo "$name $((SECONDS - t0)) s" >> timings.txt
}

# 1. Toy run (MLPs, swiss roll, variant mgm).
step toy "$BIN" toy --data swiss-roll --variant mgm --steps 300 --batch 256 \
  --eval-samples 500 --eval-steps 100 --curve-every 100 --seed 3 "${CPU[@]}" --out toy

# 2. Critic checks: a 2-D Gaussian pair (docs/trainer.md's g2 pair) and a 2-D Gaussian
#    against a discrete law, at a tiny size.
echo '{"kind":"gaussian","mean":[0.0,0.0],"cov":[[1.0,0.0],[0.0,1.0]]}' > critic/g2_p0.json
echo '{"kind":"gaussian","mean":[1.0,-0.5],"cov":[[0.5,0.2],[0.2,1.5]]}' > critic/g2_p1.json
echo '{"kind":"discrete","points":[[1.0,0.0],[-0.5,1.0],[0.0,-1.5]],"weights":[0.5,0.3,0.2]}' \
  > critic/d2_p1.json
for p1 in g2_p1 d2_p1; do
  step "critic-$p1" "$BIN" critic-check --p0 critic/g2_p0.json --p1 "critic/$p1.json" \
    --steps 200 --batch 256 --grid 4 --points-per-time 1024 --variational-pairs 16384 \
    --seed 5 "${CPU[@]}" --json
  cp "logs/critic-$p1.stdout" "critic/g2_p0-$p1.stdout.json"
done

# 3. Image pipeline on 8 generated 32x32 PNGs (the patterns of tests/mgm_e2e.rs).
python3 "$HERE/canon.py" pngs imgs 8
step warmup "$BIN" warmup --arch tiny --data imgs --steps 4 --batch 8 --lr-rampup-kimg 0 \
  --checkpoint-every 2 --seed 1 "${CPU[@]}" --out warmup
cp logs/warmup.stdout warmup.stdout
MGM=(--data imgs --batch 4 --lr 1e-3 --seed 2 --checkpoint-every 3 "${CPU[@]}")
step mgm-3 "$BIN" mgm --warmup warmup/checkpoint.safetensors --arch tiny "${MGM[@]}" \
  --steps 3 --grid-every 1 --fid-every 0 --final-fid 0 --out mgm
cp mgm/checkpoint.safetensors snapshots/mgm-checkpoint-step3.safetensors
cp mgm/losses.jsonl snapshots/mgm-losses-step3.jsonl
cp mgm/summary.json snapshots/mgm-summary-step3.json
step mgm-resume-6 "$BIN" mgm --resume "${MGM[@]}" \
  --steps 6 --grid-every 1 --fid-every 0 --final-fid 0 --out mgm
step fid-ref "$BIN" fid-ref --data imgs -o fid/ref-stats.safetensors --batch 8 "${CPU[@]}"
# `fid --checkpoint` of the warmup only: binaries before 16774db refuse an mgm checkpoint (notes).
step fid-warmup "$BIN" fid --checkpoint warmup/checkpoint.safetensors -n 8 --seed 0 \
  --ref fid/ref-stats.safetensors --batch 8 --json "${CPU[@]}"
cp logs/fid-warmup.stdout fid/fid-warmup-checkpoint.stdout.json
step fid-images "$BIN" fid --images imgs --ref fid/ref-stats.safetensors --batch 8 --json "${CPU[@]}"
cp logs/fid-images.stdout fid/fid-images.stdout.json
# The same 6 steps uninterrupted, with FID-8 at step 3 and at the end.
step mgm-fid "$BIN" mgm --warmup warmup/checkpoint.safetensors --arch tiny "${MGM[@]}" \
  --steps 6 --grid-every 3 --fid-ref fid/ref-stats.safetensors --fid-every 3 --fid-n 8 \
  --final-fid 8 --fid-batch 8 --out mgm-fid

# 4. Hashes.
cat > notes.txt <<'EOF'
Not hashed (and why):
  logs/*.stdout, logs/*.stderr: progress and summary lines; `mgm` prints "in X s" and the
    FID line (the FID is hashed via fid.jsonl / summary.json), `warmup` prints its summary
    JSON (hashed as warmup/summary.json without `seconds`), `critic-check --json` and
    `fid --json` (hashed as critic/*.json, fid/*.json without `seconds`); `toy` prints the
    metrics of metrics.json and the output path; `fid-ref` prints the image count and path.
  timings.txt: wall-clock seconds per command.
  imgs/*.png, critic/*_p*.json: inputs written by this script (deterministic by construction).
  Wall-clock fields inside hashed JSON/JSONL are removed before hashing (listed below).
  *.safetensors as written: their raw bytes differ from run to run of the same binary (the
    order of the `__metadata__` keys in the JSON header follows a Rust HashMap); hashed in a
    canonical form instead: header re-serialised with sorted keys, data section unchanged.
  fid --checkpoint of an mgm checkpoint: not run, so that binaries from before 16774db (which
    read warmup checkpoints only) can still be compared; the mgm generator's FID is in
    mgm-fid/fid.jsonl instead. Since 16774db `fid --json` also has `generator` and `timing`
    (its phases, all wall clock and so dropped): against an older binary the two fid/*.json
    hashes differ by those keys alone.
EOF
python3 "$HERE/canon.py" hash "$OUT"
echo "total $SECONDS s" >> timings.txt
cat timings.txt
