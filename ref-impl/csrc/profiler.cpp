// libtorch's Kineto profiler (what torch.profiler.profile drives) behind a C ABI for
// ref-impl/src/bench/profile.rs: start collecting CPU operators (and CUDA kernels on a GPU),
// then stop, write the Chrome trace, and write every event's name, device and duration summed
// per (device, name) as a tab-separated table. tch binds no profiler.
//
// Both functions return 0, or -1 with the exception's first line in `err`.

#include <torch/csrc/autograd/profiler_kineto.h>
#include "shim_error.h"
#include <cstdint>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <string>
#include <utility>

namespace {
using midpoint_shim::copy_error;

std::set<torch::profiler::impl::ActivityType> activities(int cuda) {
  std::set<torch::profiler::impl::ActivityType> a{torch::profiler::impl::ActivityType::CPU};
  if (cuda) a.insert(torch::profiler::impl::ActivityType::CUDA);
  return a;
}
}  // namespace

extern "C" {

int midpoint_profiler_start(int cuda, char* err, int64_t err_len) {
  try {
    torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO);
    torch::autograd::profiler::prepareProfiler(config, activities(cuda));
    torch::autograd::profiler::enableProfiler(config, activities(cuda));
    return 0;
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
    return -1;
  }
}

// Stops the profiler; writes the Chrome trace to `trace_path` (skipped when empty) and the
// per-(device, name) sums to `table_path`: `device\tname\tcalls\ttotal_us` lines, CPU times
// inclusive of nested operators, CUDA times those of the kernels and copies themselves.
int midpoint_profiler_stop(const char* trace_path, const char* table_path, char* err,
                           int64_t err_len) {
  try {
    auto result = torch::autograd::profiler::disableProfiler();
    std::map<std::pair<std::string, std::string>, std::pair<int64_t, double>> sums;
    for (const auto& e : result->events()) {
      auto device = std::string(c10::DeviceTypeName(e.deviceType(), /*lower_case=*/true));
      auto& s = sums[{device, e.name()}];
      s.first += 1;
      s.second += static_cast<double>(e.durationNs()) / 1000.0;
    }
    std::ofstream table(table_path);
    table << "device\tname\tcalls\ttotal_us\n";
    for (const auto& [key, value] : sums) {
      table << key.first << '\t' << key.second << '\t' << value.first << '\t' << value.second << '\n';
    }
    table.close();
    if (!table) throw std::runtime_error(std::string("cannot write ") + table_path);
    if (trace_path != nullptr && trace_path[0] != '\0') result->save(trace_path);
    return 0;
  } catch (const std::exception& e) {
    copy_error(e.what(), err, err_len);
    return -1;
  }
}

}  // extern "C"
