// A model's config.json (or any JSON document) with typed access by dotted path: get<int64_t>("num_hidden_layers"),
// get<double>("rope_scaling.factor"). Parsing never throws; a malformed document is a FormatError.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mlxn/core/status.h"

namespace mlxn::io {

class JsonConfig {
 public:
  static Result<JsonConfig> parse(std::string_view text, const std::string& name = "config.json");
  static Result<JsonConfig> open(const std::string& path);

  bool has(std::string_view path) const;
  // T: bool, int64_t, double (integers convert), std::string, std::vector<int64_t>, std::vector<double>,
  // std::vector<std::string>. A missing path is NotFound, a wrong type InvalidArgument, both naming the path.
  template <typename T>
  Result<T> get(std::string_view path) const;
  // Keys of the object at `path` ("" for the top level), in document order.
  Result<std::vector<std::string>> keys(std::string_view path) const;
  const std::string& name() const { return name_; }

  // Internal: the document (a nlohmann::json), for the loaders in src/io.
  struct Doc;
  const Doc& doc() const { return *doc_; }

 private:
  std::shared_ptr<const Doc> doc_;
  std::string name_;
};

}  // namespace mlxn::io
