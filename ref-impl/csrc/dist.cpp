// libtorch's c10d process groups behind a C ABI for ref-impl/src/dist/group.rs: a TCPStore
// rendezvous (the one torchrun and `init_process_group("env://")` use) and a Gloo (CPU) or
// NCCL (CUDA) backend, with the three collectives data-parallel training needs: all-reduce,
// broadcast and barrier. tch binds none of c10d.
//
// Gloo's headers are not in the torch wheel; the declarations it needs are in
// third_party/gloo (see its README). The NCCL part is compiled only when the CUDA and NCCL
// headers were found at build time (MIDPOINT_WITH_NCCL, set by build.rs); without them
// midpoint_pg_new(backend = 1) returns an error saying so.
//
// Every function returns 0, or -1 with the exception's first line in `err`: no exception
// crosses the C boundary. A collective that does not complete within the group's timeout
// throws (Gloo) or is aborted by NCCL's watchdog, so a dead or hung peer ends in an error.

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef MIDPOINT_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <ATen/ATen.h>
#include "shim_error.h"
#include <chrono>
#include <mutex>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

struct midpoint_pg {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
};

namespace {
using midpoint_shim::copy_error;

c10d::ReduceOp reduce_op(int op) {
  switch (op) {
    case 0: return c10d::ReduceOp::SUM;
    case 1: return c10d::ReduceOp::MAX;
    case 2: return c10d::ReduceOp::MIN;
  }
  throw std::invalid_argument("unknown reduce op " + std::to_string(op));
}
}  // namespace

extern "C" {

int midpoint_pg_has_nccl() {
#ifdef MIDPOINT_WITH_NCCL
  return 1;
#else
  return 0;
#endif
}

// Joins the group of `world` processes as `rank`: rendezvous on the TCPStore at host:port
// (served by rank 0, or by torchrun's agent when `agent_store` is 1: then every rank is a
// client), keys under `prefix`, then the backend (0: Gloo over `gloo_host`'s interface;
// 1: NCCL on CUDA device `cuda_device`). `timeout_ms` bounds the rendezvous and every
// collective.
int midpoint_pg_new(int backend, const char* host, int port, int rank, int world, int agent_store,
                    const char* prefix, const char* gloo_host, int cuda_device, int64_t timeout_ms,
                    midpoint_pg** out, char* err, int64_t err_len) {
  try {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = agent_store == 0 && rank == 0;
    o.numWorkers = static_cast<std::size_t>(world);
    o.timeout = timeout;
    o.multiTenant = true;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    auto pg = new midpoint_pg{store, {}};
    try {
      if (backend == 0) {
        auto go = c10d::ProcessGroupGloo::Options::create(timeout);
        go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(std::string(gloo_host)));
        pg->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, go);
      } else if (backend == 1) {
#ifdef MIDPOINT_WITH_NCCL
        (void)cuda_device;  // the caller made it current (c10::cuda::set_device via tch)
        auto no = c10d::ProcessGroupNCCL::Options::create();
        no->timeout = timeout;
        pg->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, no);
#else
        throw std::runtime_error(
            "this midpoint-train was built without the CUDA/NCCL headers (ensure-libtorch.sh installs them into the torch venv); rebuild it to use NCCL");
#endif
      } else {
        throw std::invalid_argument("unknown backend " + std::to_string(backend));
      }
    } catch (...) {
      delete pg;
      throw;
    }
    *out = pg;
    return 0;
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
    return -1;
  }
}

// In-place all-reduce (op 0: sum, 1: max, 2: min) of one tensor across the group; returns
// when the result is in `t` (Gloo) or ordered before later work on the current stream (NCCL).
int midpoint_pg_allreduce(midpoint_pg* pg, at::Tensor* t, int op, char* err, int64_t err_len) {
  try {
    std::vector<at::Tensor> v{*t};
    c10d::AllreduceOptions ao;
    ao.reduceOp = reduce_op(op);
    pg->backend->allreduce(v, ao)->wait();
    return 0;
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
    return -1;
  }
}

// In-place broadcast of one tensor from `root`.
int midpoint_pg_broadcast(midpoint_pg* pg, at::Tensor* t, int root, char* err, int64_t err_len) {
  try {
    std::vector<at::Tensor> v{*t};
    c10d::BroadcastOptions bo;
    bo.rootRank = root;
    pg->backend->broadcast(v, bo)->wait();
    return 0;
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
    return -1;
  }
}

// Waits until every rank has called it (or the timeout passes: an error).
int midpoint_pg_barrier(midpoint_pg* pg, char* err, int64_t err_len) {
  try {
    pg->backend->barrier(c10d::BarrierOptions())->wait();
    return 0;
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
    return -1;
  }
}

// The state of the default generator of the CPU (cuda = 0) or of CUDA device `index`
// (torch.get_rng_state / torch.cuda.get_rng_state): a new tensor in *out.
int midpoint_rng_get_state(int cuda, int index, at::Tensor** out, char* err, int64_t err_len) {
  try {
    c10::Device device = cuda ? c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index))
                              : c10::Device(c10::DeviceType::CPU);
    auto gen = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    *out = new at::Tensor(gen.get_state());
    return 0;
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
    return -1;
  }
}

// Restores a state from midpoint_rng_get_state (torch.set_rng_state).
int midpoint_rng_set_state(int cuda, int index, at::Tensor* state, char* err, int64_t err_len) {
  try {
    c10::Device device = cuda ? c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(index))
                              : c10::Device(c10::DeviceType::CPU);
    auto gen = at::globalContext().defaultGenerator(device);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(*state);
    return 0;
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
    return -1;
  }
}

void midpoint_pg_free(midpoint_pg* pg) {
  try {
    if (pg != nullptr && pg->backend) pg->backend->shutdown();
  } catch (...) {
  }
  delete pg;
}

}  // extern "C"
