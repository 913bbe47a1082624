#!/usr/bin/env bash
# Issue 18 (trainer speed on a GPU) as ONE device call: each speed lever of `bench mgm` alone,
# then all together, beside the PyTorch-eager peer (../shared/peers/mgm_torch.py, EDM's own
# network) in the same job, fp32 and bf16, and the warmup step; plus `bench optim` (Adam and
# EMA alone, per kernel) and the matmul peaks. Results: OUT/speed.jsonl (one JSON object per
# measurement, `lever` naming it), OUT/speed.md (the table for docs/performance.md), OUT/speed.log.
# It also runs issue 19's check: `mgm` plain and under `torchrun --nproc-per-node 1` (NCCL).
#
#   scripts/gpu-speed.sh bundle            # here: stripped binary + the peer -> gpu-bundle/speed (git-ignored)
#   scripts/gpu-speed.sh run OUT           # on the device: run(command="bash scripts/gpu-speed.sh run $OUT",
#                                          #   carry=["gpu-bundle/speed"], timeout_s=540)
#   scripts/gpu-speed.sh --cpu-smoke DIR   # here: bundle + run with tiny settings on the CPU
#
# Budget at ddpm++ batch 256 (an MGM iteration ~0.8 s fp32 on an H200): 9 MGM benches of
# 3 + BENCH_STEPS = 10 iterations (~15 s each with start-up) ≈ 2.5 min; 3 peer runs ≈ 1.5 min;
# 2 warmup benches + bench optim + matmuls ≈ 1 min; issue 19's 1-rank NCCL run against the plain
# one (2 × 20 iterations + start-up) ≈ 1 min: ~6-7 min, each command capped by
# BENCH_TIMEOUT (90 s) so that one hang cannot eat the call.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="${MIDPOINT_BUNDLE:-$ROOT/gpu-bundle/speed}"
PEERS="${MIDPOINT_PEERS:-$ROOT/../shared/peers}"
die() { echo "gpu-speed: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*"; }

profile() {
  DEVICE="${DEVICE:-cuda}" ARCH="${ARCH:-ddpmpp}" BATCH="${BATCH:-256}" WBATCH="${WBATCH:-512}"
  BENCH_STEPS="${BENCH_STEPS:-10}" BENCH_WARMUP="${BENCH_WARMUP:-3}" BENCH_TIMEOUT="${BENCH_TIMEOUT:-90}"
  MATMUL_N="${MATMUL_N:-8192}" OPTIM_REPS="${OPTIM_REPS:-50}" PEER_ARGS="${PEER_ARGS:-}"
  DIST_STEPS="${DIST_STEPS:-20}"
}

do_bundle() {
  cd "$ROOT"
  # shellcheck source=/dev/null
  source scripts/ensure-libtorch.sh
  cargo build --release -p midpoint-train
  local bin="${CARGO_TARGET_DIR:-$ROOT/target}/release/midpoint-train"
  rm -rf "$BUNDLE" && mkdir -p "$BUNDLE"
  strip -o "$BUNDLE/midpoint-train" "$bin" && gzip -9 "$BUNDLE/midpoint-train"
  cp "$PEERS/mgm_torch.py" "$PEERS/edm_networks.py" "$BUNDLE/"
  du -sh "$BUNDLE"
}

torch_env() {
  local py=/opt/torch/.venv/bin/python3 lib
  if [ -x "$py" ] && lib="$("$py" -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")' 2>/dev/null)"; then
    export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    PYTHON="$py"
  else
    PYTHON="${PYTHON:-${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/}python3}"   # here: the venv of ensure-libtorch
  fi
}

# record LEVER CMD...: runs CMD capped, appends its JSON (with "lever") to speed.jsonl.
record() {
  local lever="$1"; shift
  local json="$OUT/tmp.json"
  log "$lever: $*"
  if timeout "$BENCH_TIMEOUT" "$@" >"$json" 2>>"$OUT/speed.log"; then
    "$PYTHON" - "$lever" "$json" >>"$OUT/speed.jsonl" <<'PY'
import json, sys
text = open(sys.argv[2]).read().strip()
try:
    v = json.loads(text)
except ValueError:
    v = json.loads(text.splitlines()[-1])
v["lever"] = sys.argv[1]
print(json.dumps(v))
PY
  else
    echo "{\"lever\": \"$lever\", \"failed\": \"exit $? (see speed.log)\"}" >>"$OUT/speed.jsonl"
  fi
}

do_run() {
  profile
  mkdir -p "$OUT"
  : >"$OUT/speed.jsonl"
  local stage="${TMPDIR:-/tmp}/midpoint-speed"
  mkdir -p "$stage"
  gzip -dc "$BUNDLE/midpoint-train.gz" >"$stage/midpoint-train" && chmod +x "$stage/midpoint-train"
  cp "$BUNDLE/mgm_torch.py" "$BUNDLE/edm_networks.py" "$stage/"
  torch_env
  local B="$stage/midpoint-train" dev=(--device "$DEVICE")
  "$B" info --json >"$OUT/info.json" 2>>"$OUT/speed.log" || true
  for dt in bf16 tf32 fp32; do
    [ "$DEVICE" = cpu ] && [ "$dt" = tf32 ] && continue
    record "matmul $dt" "$B" bench matmul --dtype "$dt" --n "$MATMUL_N" --json "${dev[@]}"
  done
  # The peers first: their JSON files are what our benches compare against.
  for p in fp32 bf16; do
    record "peer mgm $p" "$PYTHON" "$stage/mgm_torch.py" --precision "$p" --batch "$BATCH" \
      --steps "$BENCH_STEPS" --warmup-steps "$BENCH_WARMUP" --device "$DEVICE" $PEER_ARGS
    tail -1 "$OUT/speed.jsonl" >"$stage/peer-mgm-$p.json"
  done
  record "peer warmup fp32" "$PYTHON" "$stage/mgm_torch.py" --mode warmup --batch "$WBATCH" \
    --steps "$BENCH_STEPS" --warmup-steps "$BENCH_WARMUP" --device "$DEVICE" $PEER_ARGS
  tail -1 "$OUT/speed.jsonl" >"$stage/peer-warmup.json"
  local common=(--arch "$ARCH" --steps "$BENCH_STEPS" --warmup-steps "$BENCH_WARMUP" "${dev[@]}")
  local mgm=("$B" bench mgm --batch "$BATCH" --json "${common[@]}")
  local levers=("baseline:" "adam foreach:--adam-kernel foreach" "adam fused:--adam-kernel fused"
    "ema foreach:--ema-kernel foreach" "cudnn benchmark:--cudnn-benchmark")
  [ "$DEVICE" = cpu ] || levers+=("tf32 matmul:--tf32-matmul")
  local all="--adam-kernel fused --ema-kernel foreach --cudnn-benchmark"
  levers+=("all but tf32:$all")
  for entry in "${levers[@]}"; do
    # shellcheck disable=SC2086
    record "mgm fp32 ${entry%%:*}" "${mgm[@]}" --precision fp32 --peer "$stage/peer-mgm-fp32.json" ${entry#*:}
  done
  for entry in "baseline:" "all but tf32:$all"; do
    # shellcheck disable=SC2086
    record "mgm bf16 ${entry%%:*}" "${mgm[@]}" --precision bf16 --peer "$stage/peer-mgm-bf16.json" ${entry#*:}
    # shellcheck disable=SC2086
    record "warmup fp32 ${entry%%:*}" "$B" bench warmup --batch "$WBATCH" "${common[@]}" \
      --peer "$stage/peer-warmup.json" ${entry#*:}
  done
  # Where the fp32 iteration's time goes (Kineto: GPU kernels by name), after its timing.
  record "profile mgm fp32" "${mgm[@]}" --precision fp32 --profile "$stage/profile" --profile-iterations 2
  cp "$stage/profile/ops.tsv" "$OUT/profile-mgm-fp32.tsv" 2>/dev/null || true
  if [ -f "$stage/profile/trace.json" ]; then
    gzip -c "$stage/profile/trace.json" >"$stage/trace.json.gz"
    # The device tool returns files up to 16 MiB.
    [ "$(stat -c %s "$stage/trace.json.gz")" -lt 15000000 ] && cp "$stage/trace.json.gz" "$OUT/profile-mgm-fp32.trace.json.gz"
  fi
  record "optim" "$B" bench optim --arch "$ARCH" --reps "$OPTIM_REPS" --json "${dev[@]}"
  # Issue 19: the data-parallel path at one rank (NCCL on CUDA, Gloo on the CPU) against the
  # plain run, the same `mgm` on synthetic data; iterations/s from each summary.json.
  local tr="$(dirname "$PYTHON")/torchrun"
  local run=("$B" mgm --init random --synthetic --arch "$ARCH" --batch "$BATCH" --steps "$DIST_STEPS"
    --checkpoint-every 0 --fid-every 0 --final-fid 0 --grid-every 0 --quiet "${dev[@]}")
  log "dist plain"
  timeout "$BENCH_TIMEOUT" "${run[@]}" --overwrite --out "$stage/dist-plain" >>"$OUT/speed.log" 2>&1 || true
  log "dist one rank: $tr"
  timeout "$BENCH_TIMEOUT" "$tr" --nproc-per-node 1 --master-addr 127.0.0.1 --master-port 29555 \
    --no-python "${run[@]}" --overwrite --out "$stage/dist-one" >>"$OUT/speed.log" 2>&1 || true
  local label
  for d in plain one; do
    if [ "$d" = plain ]; then label="dist: one process, no launcher"; else label="dist: torchrun, 1 rank"; fi
    "$PYTHON" - "$stage/dist-$d/summary.json" "$label" "$BATCH" >>"$OUT/speed.jsonl" <<'PY' || echo "{\"lever\": \"$label\", \"failed\": \"no summary (see speed.log)\"}" >>"$OUT/speed.jsonl"
import json, sys
s = json.load(open(sys.argv[1]))
steps, secs = s["steps_this_run"], s["seconds"]
print(json.dumps({"lever": sys.argv[2], "images_per_s": steps * int(sys.argv[3]) / secs,
                  "seconds": secs, "steps": steps}))
PY
  done
  rm -f "$OUT/tmp.json"
  "$PYTHON" - "$OUT/speed.jsonl" >"$OUT/speed.md" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| measurement | images/s | ratio to peer | peak GPU memory (GB) | memory ratio | FLOP-bound fraction |")
print("|---|---|---|---|---|---|")
f = lambda x, d=3: "—" if x is None else f"{x:.{d}f}"
for r in rows:
    if "failed" in r:
        print(f"| {r['lever']} | failed: {r['failed']} | | | | |"); continue
    if r["lever"].startswith("matmul"):
        print(f"| {r['lever']} | {r['tflops']:.1f} TFLOP/s | | | | |"); continue
    if r["lever"].startswith("profile"):
        top = (r.get("profile") or {}).get("top", [])[:12]
        for k in top:
            print(f"| profile: [{k['device']}] {k['name'][:60]} | {k['ms_per_iteration']:.2f} ms/it | {100*k['share']:.1f}% | | | |")
        continue
    if r["lever"] == "optim":
        for k in r["kernels"]:
            print(f"| {k['update']} ({r['tensors']} tensors) | {k['ms']:.3f} ms/update | {k['speedup_over_plain']:.2f}× plain | | | |")
        continue
    peer = r["peer"] if isinstance(r.get("peer"), dict) else {}  # the peer's own rows name it
    mem = r.get("peak_gpu_memory_bytes")
    print(f"| {r['lever']} | {r['images_per_s']:.1f} | {f(peer.get('speed_ratio'))} | "
          f"{f(mem / 1e9 if mem else None, 1)} | {f(peer.get('memory_ratio'))} | {f(r.get('flop_bound_fraction'))} |")
PY
  cat "$OUT/speed.md"
}

case "${1:-}" in
  bundle) do_bundle ;;
  run) OUT="${2:?usage: $0 run OUT}"; do_run ;;
  --cpu-smoke)
    OUT="${2:?usage: $0 --cpu-smoke DIR}"
    do_bundle
    DEVICE=cpu ARCH=tiny BATCH=2 WBATCH=2 BENCH_STEPS=1 BENCH_WARMUP=0 MATMUL_N=64 OPTIM_REPS=2 DIST_STEPS=2 \
      PEER_ARGS="--channels 16" do_run ;;
  *) die "usage: $0 bundle | run OUT | --cpu-smoke DIR" ;;
esac
