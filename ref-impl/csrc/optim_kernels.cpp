// Multi-tensor optimizer kernels of libtorch 2.11 that tch 0.24 does not bind (its generator
// skips every `_foreach_*` and `_fused_*` op), behind a C ABI for ref-impl/src/train/kernels.rs.
//
// * Adam as torch.optim.Adam's `foreach=True` path (_multi_tensor_adam, no weight decay,
//   no AMSGrad, the step count on the host): seven `_foreach_*` calls for all tensors.
// * Adam as its `fused=True` path: one `_fused_adam_` call (CUDA and CPU kernels).
// * The EMA `ema ← ema + w·(θ − ema)` as one `_foreach_lerp_` (what EDM's and the peer's
//   `p_ema.lerp_(p, w)` loop does one tensor at a time).
//
// Tensors come as arrays of `at::Tensor*` (tch's `C_tensor`); every call runs without
// autograd recording, as torch.optim's step does. Each function returns 0, or -1 with the
// first line of libtorch's message in `err` (shim_error.h): no exception crosses the C boundary.

#include <ATen/ATen.h>
#include "shim_error.h"
#include <c10/core/GradMode.h>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

namespace {
std::vector<at::Tensor> list(at::Tensor* const* ts, int64_t n) {
  std::vector<at::Tensor> out;
  out.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out.push_back(*ts[i]);
  return out;
}

using midpoint_shim::copy_error;
}  // namespace

extern "C" {

// torch.optim.Adam(foreach=True).step() for tensors of one device and dtype, at step `step`
// (1, 2, ...: the count after this update).
int midpoint_adam_foreach(at::Tensor* const* params, at::Tensor* const* grads,
                          at::Tensor* const* exp_avgs, at::Tensor* const* exp_avg_sqs, int64_t n,
                          int64_t step, double lr, double beta1, double beta2, double eps,
                          char* err, int64_t err_len) {
  try {
    c10::NoGradGuard no_grad;
    auto p = list(params, n), g = list(grads, n), m = list(exp_avgs, n), v = list(exp_avg_sqs, n);
    at::_foreach_lerp_(m, g, at::Scalar(1.0 - beta1));
    at::_foreach_mul_(v, at::Scalar(beta2));
    at::_foreach_addcmul_(v, g, g, at::Scalar(1.0 - beta2));
    const double t = static_cast<double>(step);
    const double bc1 = 1.0 - std::pow(beta1, t);
    const double bc2_sqrt = std::sqrt(1.0 - std::pow(beta2, t));
    auto denom = at::_foreach_sqrt(v);
    at::_foreach_div_(denom, at::Scalar(bc2_sqrt));
    at::_foreach_add_(denom, at::Scalar(eps));
    at::_foreach_addcdiv_(p, m, denom, at::Scalar(-lr / bc1));
    return 0;
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
    return -1;
  }
}

// torch.optim.Adam(fused=True).step(): one `_fused_adam_` with every tensor's step set to
// `step` (torch keeps one step tensor per parameter; here all parameters share the count).
int midpoint_adam_fused(at::Tensor* const* params, at::Tensor* const* grads,
                        at::Tensor* const* exp_avgs, at::Tensor* const* exp_avg_sqs, int64_t n,
                        int64_t step, double lr, double beta1, double beta2, double eps,
                        char* err, int64_t err_len) {
  try {
    c10::NoGradGuard no_grad;
    auto p = list(params, n), g = list(grads, n), m = list(exp_avgs, n), v = list(exp_avg_sqs, n);
    if (n == 0) return 0;
    auto count = at::full({}, static_cast<double>(step),
                          at::TensorOptions().dtype(at::kFloat).device(p[0].device()));
    std::vector<at::Tensor> steps(static_cast<size_t>(n), count);
    at::_fused_adam_(p, g, m, v, /*max_exp_avg_sqs=*/{}, steps, lr, beta1, beta2,
                     /*weight_decay=*/0.0, eps, /*amsgrad=*/false, /*maximize=*/false);
    return 0;
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
    return -1;
  }
}

// ema[i] ← ema[i] + weight·(src[i] − ema[i]) for all i, in one `_foreach_lerp_`.
int midpoint_foreach_lerp(at::Tensor* const* ema, at::Tensor* const* src, int64_t n,
                          double weight, char* err, int64_t err_len) {
  try {
    c10::NoGradGuard no_grad;
    auto e = list(ema, n), s = list(src, n);
    at::_foreach_lerp_(e, s, at::Scalar(weight));
    return 0;
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
    return -1;
  }
}

}  // extern "C"
