// The shims' error convention: a C function returns -1 and copies the first line of the
// exception's message (libtorch appends a C++ backtrace after it) into the caller's buffer.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>

namespace midpoint_shim {
inline void copy_error(const char* what, char* err, int64_t err_len) {
  if (err == nullptr || err_len <= 0) return;
  std::string first(what);
  auto nl = first.find('\n');
  if (nl != std::string::npos) first.resize(nl);
  std::strncpy(err, first.c_str(), static_cast<size_t>(err_len) - 1);
  err[err_len - 1] = '\0';
}
}  // namespace midpoint_shim
