#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, the core crate's proof checks and, once
# the reference trainer exists, the libtorch-backed trainer tests (installing libtorch first
# when it is missing). This is the README's test command and the only thing CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f ref-impl/Cargo.toml ]; then
  # Sets LIBTORCH_USE_PYTORCH, VIRTUAL_ENV, PATH and LD_LIBRARY_PATH for torch 2.11.0.
  # shellcheck source=scripts/ensure-libtorch.sh
  source scripts/ensure-libtorch.sh
  # Exports MIDPOINT_INCEPTION (the FID Inception weights, fetched once) for the FID tests.
  # shellcheck source=scripts/ensure-inception.sh
  source scripts/ensure-inception.sh
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
# `diagnostics` builds the development-only pieces (examples/report and the function behind
# it) so that they are linted and tested too; the second lint catches code that is dead
# without the feature.
echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --release --all-targets --features midpoint/diagnostics -- -D warnings
cargo clippy -p midpoint --release --all-targets -- -D warnings
echo "== cargo test (release: the proof checks are numerics-heavy)"
cargo test --workspace --release --features midpoint/diagnostics
