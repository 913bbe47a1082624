#!/usr/bin/env bash
# Runs the NumPy/SciPy timings and the crate's (examples/throughput.rs) back to back, on one
# core each, and prints both with their ratios. Sets up its own Python environment (a venv
# under ${MIDPOINT_CACHE:-~/.cache/midpoint}) with pinned NumPy and SciPy.
#
#   benches/python/compare.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${MIDPOINT_CACHE:-$HOME/.cache/midpoint}/bench-numpy"
if ! "$venv/bin/python" -c "import numpy, scipy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "numpy==2.4.6" "scipy==1.17.1"
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
cargo build -q --release --example throughput
ours=$(taskset -c 0 ./target/release/examples/throughput)
theirs=$(taskset -c 0 "$venv/bin/python" benches/python/compare.py)
python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"exact D_t-mid (1-D Gaussian, rel 1e-10): midpoint {ours['tmid_exact_seconds']*1e3:.3f} ms, "
      f"SciPy nested quad {theirs['tmid_seconds']*1e3:.1f} ms, ratio {theirs['tmid_seconds']/ours['tmid_exact_seconds']:.0f}x; "
      f"values {ours['tmid_exact_value']:.12f} vs {theirs['tmid_value']:.12f}")
r_ours = ours['rb_fixed_t_draws_per_second_1_thread']
r_np = theirs['rb_fixed_t_draws_per_second_1_thread']
r_np_mix = theirs['rb_mixture_draws_per_second_1_thread']
print(f"Rao-Blackwell D(0.3), 1 core: midpoint {r_ours/1e6:.1f} M draws/s; "
      f"NumPy drawing endpoints (Eq. 7) {r_np/1e6:.2f} M/s (ratio {r_ours/r_np:.1f}x), "
      f"NumPy drawing the mixture like midpoint {r_np_mix/1e6:.2f} M/s (ratio {r_ours/r_np_mix:.1f}x); "
      f"estimates {ours['rb_fixed_t_estimate']:.5f}, {theirs['rb_fixed_t_estimate']:.5f}, "
      f"{theirs['rb_mixture_estimate']:.5f} (NumPy SE {theirs['rb_fixed_t_std_error']:.1e})")
print(json.dumps({"midpoint": ours, "numpy_scipy": theirs}))
PY
