#!/usr/bin/env bash
# Runs the NumPy/SciPy timings and the crate's (examples/throughput.rs) in alternation, on one
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
# This 2-vCPU guest has slow spells lasting seconds (a neighbour on the host), so the two
# sides alternate for ROUNDS rounds and each side's best round is compared (the usual
# min-of-N of timeit); every round is printed too.
rounds="${ROUNDS:-3}"
ours=() theirs=()
for _ in $(seq "$rounds"); do
  ours+=("$(taskset -c 0 ./target/release/examples/throughput)")
  theirs+=("$(taskset -c 0 "$venv/bin/python" benches/python/compare.py)")
done
python3 - "${ours[*]}" "${theirs[*]}" <<'PY'
import json, sys
dec = json.JSONDecoder()
def objs(s):
    out, i = [], 0
    while i < len(s):
        if s[i].isspace():
            i += 1
            continue
        o, i = dec.raw_decode(s, i)
        out.append(o)
    return out
rounds_ours, rounds_theirs = objs(sys.argv[1]), objs(sys.argv[2])
for k, (o, t) in enumerate(zip(rounds_ours, rounds_theirs), 1):
    print(f"round {k}: exact {o['tmid_exact_seconds']*1e3:.3f} ms vs SciPy {t['tmid_seconds']*1e3:.1f} ms; "
          f"RB {o['rb_fixed_t_draws_per_second_1_thread']/1e6:.1f} M/s vs NumPy "
          f"{t['rb_fixed_t_draws_per_second_1_thread']/1e6:.2f} / {t['rb_mixture_draws_per_second_1_thread']/1e6:.2f} M/s")
best = lambda rs, key, f: f(rs, key=lambda r: r[key])
ours = dict(rounds_ours[0])
ours.update({k: best(rounds_ours, k, min)[k] for k in ['tmid_exact_seconds']})
ours.update({k: best(rounds_ours, k, max)[k] for k in ['rb_fixed_t_draws_per_second_1_thread', 'rb_uniform_t_draws_per_second_1_thread']})
theirs = dict(rounds_theirs[0])
theirs.update({k: best(rounds_theirs, k, min)[k] for k in ['tmid_seconds']})
theirs.update({k: best(rounds_theirs, k, max)[k] for k in ['rb_fixed_t_draws_per_second_1_thread', 'rb_mixture_draws_per_second_1_thread']})
print(f"best of {len(rounds_ours)} rounds each:")
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
