// Status and Result<T>: the error model of the whole public API.
// No exception crosses the API. Bad input, unsupported combinations and device faults come back as a Status whose
// message names the op and the argument at fault: "[rms_norm] weight has 4095 elements, expected 4096".
#pragma once

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mlxn {

enum class StatusCode : int {
  Ok = 0,
  InvalidArgument,  // wrong shape, dtype, size, range
  OutOfRange,       // a view or index past the end
  Unsupported,      // a valid request this build or device cannot serve
  OutOfMemory,
  DeviceError,      // the driver or a kernel launch failed
  IoError,          // file system
  FormatError,      // a malformed or hostile file
  NotFound,         // a missing key, tensor or file
  Internal,
};

const char* status_code_name(StatusCode code);

namespace detail {
template <typename... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return code_ == StatusCode::Ok; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "InvalidArgument: [rms_norm] weight has 4095 elements, expected 4096"
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::Ok;
  std::string message_;
};

// Helpers that build "[op] message" statuses from streamable parts.
template <typename... Args>
Status error(StatusCode code, std::string_view op, Args&&... args) {
  return Status(code, detail::cat("[", op, "] ", std::forward<Args>(args)...));
}
template <typename... Args>
Status invalid_argument(std::string_view op, Args&&... args) {
  return error(StatusCode::InvalidArgument, op, std::forward<Args>(args)...);
}
template <typename... Args>
Status unsupported(std::string_view op, Args&&... args) {
  return error(StatusCode::Unsupported, op, std::forward<Args>(args)...);
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).is_ok()) v_ = Status(StatusCode::Internal, "Result built from an ok Status");
  }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status ok_status;
    return is_ok() ? ok_status : std::get<Status>(v_);
  }
  // Accessing the value of an error Result is a programming error: abort with the message.
  T& value() & { check(); return std::get<T>(v_); }
  const T& value() const& { check(); return std::get<T>(v_); }
  T&& value() && { check(); return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void check() const {
    if (!is_ok()) {
      std::fprintf(stderr, "mlxn: value() of an error Result: %s\n", std::get<Status>(v_).to_string().c_str());
      std::abort();
    }
  }
  std::variant<T, Status> v_;
};

[[noreturn]] void fatal(const char* file, int line, const char* what);

}  // namespace mlxn

// A broken internal invariant: abort with file:line. Never used for bad input.
#define MLXN_CHECK(cond)                                               \
  do {                                                                 \
    if (!(cond)) ::mlxn::fatal(__FILE__, __LINE__, "check failed: " #cond); \
  } while (0)

#define MLXN_CONCAT_INNER(a, b) a##b
#define MLXN_CONCAT(a, b) MLXN_CONCAT_INNER(a, b)

// Return the Status of `expr` if it is not ok.
#define MLXN_TRY(expr)                               \
  do {                                               \
    ::mlxn::Status mlxn_try_status_ = (expr);        \
    if (!mlxn_try_status_.is_ok()) return mlxn_try_status_; \
  } while (0)

// `auto x = ...` from a Result<T>, returning its Status on error.
#define MLXN_ASSIGN_OR_RETURN(lhs, expr) MLXN_ASSIGN_OR_RETURN_IMPL(MLXN_CONCAT(mlxn_result_, __LINE__), lhs, expr)
#define MLXN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.is_ok()) return tmp.status();           \
  lhs = std::move(tmp).value()
