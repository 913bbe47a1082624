# shellcheck shell=bash
# Makes libtorch 2.11.0 available to the tch 0.24 build of ref-impl/ (sourced, not run).
#
# * LIBTORCH set (your own libtorch 2.11.0, e.g. an unzipped libtorch or a torch install):
#   used as is; its lib/ is put on LD_LIBRARY_PATH.
# * Otherwise a virtualenv at ${MIDPOINT_CACHE:-$HOME/.cache/midpoint}/torch-2.11.0 is created
#   or reused, with `pip install torch==2.11.0` only when `import torch` there fails or reports
#   another version (about 4.6 GB, once per machine). Then LIBTORCH_USE_PYTORCH=1 makes
#   torch-sys ask that venv's python for the include/lib paths and the C++ ABI.
#
# Exports: LIBTORCH_USE_PYTORCH, VIRTUAL_ENV, PATH (venv branch); LD_LIBRARY_PATH (both).
# Quiet on the fast path; returns non-zero with one clear message when something is missing.
# Idempotent: sourcing it twice leaves the environment as sourcing it once.

midpoint_torch_version="2.11.0"

_midpoint_prepend_ld_path() {
  case ":${LD_LIBRARY_PATH:-}:" in
    *":$1:"*) ;;
    *) export LD_LIBRARY_PATH="$1${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
  esac
}

# Prints torch's lib dir if `$1` (a python) imports torch $midpoint_torch_version.
_midpoint_torch_lib() {
  "$1" - "$midpoint_torch_version" 2>/dev/null <<'PY'
import os, sys
import torch
if torch.__version__.split("+")[0] != sys.argv[1]:
    sys.exit(1)
print(os.path.join(os.path.dirname(torch.__file__), "lib"))
PY
}

_midpoint_ensure_libtorch() {
  if [ -n "${LIBTORCH:-}" ]; then
    if [ ! -d "$LIBTORCH/lib" ]; then
      echo "ensure-libtorch: LIBTORCH=$LIBTORCH has no lib/ directory (expected a libtorch $midpoint_torch_version tree)" >&2
      return 1
    fi
    _midpoint_prepend_ld_path "$LIBTORCH/lib"
    return 0
  fi

  local venv="${MIDPOINT_CACHE:-$HOME/.cache/midpoint}/torch-$midpoint_torch_version"
  local lib
  if ! lib="$(_midpoint_torch_lib "$venv/bin/python")"; then
    echo "ensure-libtorch: installing torch==$midpoint_torch_version into $venv (about 4.6 GB, once)" >&2
    if ! command -v python3 >/dev/null 2>&1; then
      echo "ensure-libtorch: python3 not found; install Python 3.10 or newer or set LIBTORCH to a libtorch $midpoint_torch_version" >&2
      return 1
    fi
    mkdir -p "$(dirname "$venv")"
    if ! python3 -m venv "$venv" >&2; then
      echo "ensure-libtorch: 'python3 -m venv $venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
      return 1
    fi
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      "torch==$midpoint_torch_version" >&2; then
      echo "ensure-libtorch: 'pip install torch==$midpoint_torch_version' into $venv failed (network, disk space or Python version; see pip's output above)" >&2
      return 1
    fi
    if ! lib="$(_midpoint_torch_lib "$venv/bin/python")"; then
      echo "ensure-libtorch: torch $midpoint_torch_version was installed into $venv but 'import torch' fails there" >&2
      return 1
    fi
  fi

  # The CUDA headers ProcessGroupNCCL.hpp needs beyond the torch wheel's (crt/ and CCCL's
  # nv/target; a few MB, headers only), so that the trainer is built with its NCCL backend
  # (ref-impl/build.rs); versions of the CUDA 13.0 toolkit the wheel was built with.
  if ! "$venv/bin/python" -c 'import importlib.metadata as m; m.version("nvidia-cuda-crt"); m.version("nvidia-cuda-cccl")' >/dev/null 2>&1; then
    echo "ensure-libtorch: installing the CUDA headers of the NCCL backend (nvidia-cuda-crt, nvidia-cuda-cccl) into $venv" >&2
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      "nvidia-cuda-crt==13.0.88" "nvidia-cuda-cccl==13.0.85" >&2; then
      echo "ensure-libtorch: warning: the CUDA headers could not be installed; the trainer will be built without NCCL (Gloo only)" >&2
    fi
  fi

  export LIBTORCH_USE_PYTORCH=1
  export VIRTUAL_ENV="$venv"
  case ":$PATH:" in
    *":$venv/bin:"*) ;;
    *) export PATH="$venv/bin:$PATH" ;;
  esac
  _midpoint_prepend_ld_path "$lib"
}

_midpoint_ensure_libtorch
