// The few libtorch 2.11 calls that tch 0.24 does not bind, behind a C ABI (see
// ref-impl/src/precision.rs and ref-impl/src/bench/gpu.rs):
//
// * autocast for one device type with a chosen dtype (tch's `autocast` only flips the
//   deprecated CUDA switch and cannot choose bf16);
// * TF32 for cuBLAS matmuls (off by default in torch; cuDNN convolutions use TF32 already);
// * the CUDA caching allocator's peak of allocated bytes, through c10's device-generic
//   `getDeviceAllocator` (no CUDA headers needed; on a machine without CUDA the lookup throws
//   and the call returns -1).
// * entering and leaving a forward-mode AD level (what `torch.autograd.forward_ad.dual_level`
//   does), around tch's bound `_make_dual` / `_unpack_dual` (ref-impl/src/train/jvp.rs).
//
// Every function returns 0 on success and -1 when libtorch threw; no exception crosses the
// C boundary.

#include <ATen/Context.h>
#include <torch/csrc/autograd/forward_grad.h>
#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <cstdint>

namespace {
c10::DeviceType device_type(int cuda) { return cuda ? c10::DeviceType::CUDA : c10::DeviceType::CPU; }
}  // namespace

extern "C" {

// Turns autocast on for the CPU (cuda = 0) or CUDA (cuda = 1) with dtype `dtype` (a
// c10::ScalarType code) and enters one nesting level; the previous state goes to
// prev_enabled / prev_dtype for midpoint_autocast_exit.
int midpoint_autocast_enter(int cuda, int dtype, int* prev_enabled, int* prev_dtype) {
  try {
    auto dt = device_type(cuda);
    *prev_enabled = at::autocast::is_autocast_enabled(dt) ? 1 : 0;
    *prev_dtype = static_cast<int>(at::autocast::get_autocast_dtype(dt));
    at::autocast::set_autocast_dtype(dt, static_cast<c10::ScalarType>(dtype));
    at::autocast::set_autocast_enabled(dt, true);
    at::autocast::increment_nesting();
    return 0;
  } catch (...) {
    return -1;
  }
}

// Leaves one nesting level (clearing the cast-weight cache at the outermost one, as
// torch.autocast does) and restores the state saved by midpoint_autocast_enter.
int midpoint_autocast_exit(int cuda, int prev_enabled, int prev_dtype) {
  try {
    auto dt = device_type(cuda);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(dt, prev_enabled != 0);
    at::autocast::set_autocast_dtype(dt, static_cast<c10::ScalarType>(prev_dtype));
    return 0;
  } catch (...) {
    return -1;
  }
}

// Whether autocast is on for the device type, and its dtype (for tests).
int midpoint_autocast_state(int cuda, int* enabled, int* dtype) {
  try {
    auto dt = device_type(cuda);
    *enabled = at::autocast::is_autocast_enabled(dt) ? 1 : 0;
    *dtype = static_cast<int>(at::autocast::get_autocast_dtype(dt));
    return 0;
  } catch (...) {
    return -1;
  }
}

// Allows (1) or forbids (0) TF32 in cuBLAS matmuls; the previous setting goes to prev.
int midpoint_set_allow_tf32_cublas(int allow, int* prev) {
  try {
    *prev = at::globalContext().allowTF32CuBLAS() ? 1 : 0;
    at::globalContext().setAllowTF32CuBLAS(allow != 0);
    return 0;
  } catch (...) {
    return -1;
  }
}

// Peak of the bytes allocated by the CUDA caching allocator on `device` since the start or
// the last midpoint_cuda_reset_peak (what torch.cuda.max_memory_allocated reports).
int midpoint_cuda_peak_allocated(int device, int64_t* out) {
  try {
    auto* allocator = c10::getDeviceAllocator(c10::DeviceType::CUDA);
    auto stats = allocator->getDeviceStats(static_cast<c10::DeviceIndex>(device));
    *out = stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
    return 0;
  } catch (...) {
    return -1;
  }
}

// Resets the peak statistics of `device` (torch.cuda.reset_peak_memory_stats).
int midpoint_cuda_reset_peak(int device) {
  try {
    c10::getDeviceAllocator(c10::DeviceType::CUDA)->resetPeakStats(static_cast<c10::DeviceIndex>(device));
    return 0;
  } catch (...) {
    return -1;
  }
}

// Enters a new forward-mode AD level (torch._C._enter_dual_level); its index goes to level.
// libtorch allows one level at a time and throws (-1 here) when one is already open.
int midpoint_fwad_enter(int64_t* level) {
  try {
    *level = static_cast<int64_t>(torch::autograd::ForwardADLevel::get_next_idx());
    return 0;
  } catch (...) {
    return -1;
  }
}

// Leaves forward-mode AD level `level` (torch._C._exit_dual_level): every tangent of that level
// is dropped from the tensors that carried it.
int midpoint_fwad_exit(int64_t level) {
  try {
    torch::autograd::ForwardADLevel::release_idx(static_cast<uint64_t>(level));
    return 0;
  } catch (...) {
    return -1;
  }
}

}  // extern "C"
