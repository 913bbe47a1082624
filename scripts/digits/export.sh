#!/usr/bin/env bash
# Installs scikit-learn from PyPI into a venv (once, ~/.cache/midpoint/sklearn) and writes its
# 8x8 digits as PNG folders with the fixed split of export.py:
#   scripts/digits/export.sh OUT
set -euo pipefail
out="${1:?usage: export.sh OUT}"
venv="${MIDPOINT_SKLEARN_VENV:-$HOME/.cache/midpoint/sklearn}"
if ! "$venv/bin/python3" -c 'import sklearn' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet 'scikit-learn>=1.3'
fi
exec "$venv/bin/python3" "$(dirname "$0")/export.py" "$out"
