// Typed reads of configuration keys shared by the model configs (config.cpp, bert_config.cpp): GGUF metadata and
// config.json, with `op` naming the reader in the errors. Absent (or, in JSON, null) optional keys take the
// default; a value of the wrong type is an error; a missing required key is NotFound.
#pragma once

#include <string>
#include <string_view>

#include "mlxn/core/status.h"
#include "mlxn/io/gguf.h"
#include "mlxn/io/json_config.h"

namespace mlxn::models::detail {

template <typename T>
Result<T> gguf_req(std::string_view op, const io::GgufFile& f, const std::string& key) {
  if (f.find(key) == nullptr) return error(StatusCode::NotFound, op, "GGUF metadata has no '", key, "'");
  auto v = f.get<T>(key);
  if (!v) return invalid_argument(op, v.status().message());
  return v;
}
template <typename T>
Result<T> gguf_opt(std::string_view op, const io::GgufFile& f, const std::string& key, T dflt) {
  if (f.find(key) == nullptr) return dflt;
  auto v = f.get<T>(key);
  if (!v) return invalid_argument(op, v.status().message());
  return v;
}
template <typename T>
Result<T> json_opt(std::string_view op, const io::JsonConfig& c, std::string_view key, T dflt) {
  if (!c.has(key)) return dflt;
  auto v = c.get<T>(key);
  if (!v && v.status().message().find("' is null") != std::string::npos) return dflt;
  if (!v) return invalid_argument(op, v.status().message());
  return v;
}
template <typename T>
Result<T> json_req(std::string_view op, const io::JsonConfig& c, std::string_view key) {
  if (!c.has(key)) return error(StatusCode::NotFound, op, c.name(), " has no '", key, "'");
  auto v = c.get<T>(key);
  if (!v) return invalid_argument(op, v.status().message());
  return v;
}

}  // namespace mlxn::models::detail
