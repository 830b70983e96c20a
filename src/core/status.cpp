#include "mlxn/core/status.h"

namespace mlxn {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::Ok: return "Ok";
    case StatusCode::InvalidArgument: return "InvalidArgument";
    case StatusCode::OutOfRange: return "OutOfRange";
    case StatusCode::Unsupported: return "Unsupported";
    case StatusCode::OutOfMemory: return "OutOfMemory";
    case StatusCode::DeviceError: return "DeviceError";
    case StatusCode::IoError: return "IoError";
    case StatusCode::FormatError: return "FormatError";
    case StatusCode::NotFound: return "NotFound";
    case StatusCode::Internal: return "Internal";
  }
  return "Unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "Ok";
  return std::string(status_code_name(code_)) + ": " + message_;
}

void fatal(const char* file, int line, const char* what) {
  std::fprintf(stderr, "mlxn: %s:%d: %s\n", file, line, what);
  std::abort();
}

}  // namespace mlxn
