#include <fstream>
#include <set>
#include <sstream>

#include "io/json_doc.h"
#include "mlxn/io/json_config.h"

namespace mlxn::io {

using Json = nlohmann::ordered_json;

bool parse_json(std::string_view text, Json& out, std::string* error, std::string* duplicate) {
  // Depth-1 keys are tracked to reject duplicates, which nlohmann would silently collapse.
  std::set<std::string> seen;
  bool dup = false;
  auto cb = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::key && depth == 1 && !dup) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!seen.insert(k).second) {
        dup = true;
        if (duplicate) *duplicate = k;
      }
    }
    return true;
  };
  try {
    out = Json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const Json::exception& e) {
    if (error) *error = e.what();
    return false;
  } catch (const std::exception& e) {  // e.g. bad_alloc on an enormous document
    if (error) *error = e.what();
    return false;
  }
  if (dup) {
    if (error) *error = "duplicate key";
    return false;
  }
  return true;
}

namespace {

// The value at a dotted path, or null.
const Json* lookup(const Json& root, std::string_view path) {
  const Json* cur = &root;
  if (path.empty()) return cur;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t dot = path.find('.', start);
    const std::string part(path.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(part);
    if (it == cur->end()) {
      // Keys may themselves contain dots (MLX per-layer overrides): try the whole rest as one key.
      auto whole = cur->find(std::string(path.substr(start)));
      return whole == cur->end() ? nullptr : &*whole;
    }
    cur = &*it;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return cur;
}

const char* kind(const Json& j) { return j.type_name(); }

}  // namespace

Result<JsonConfig> JsonConfig::parse(std::string_view text, const std::string& name) {
  auto doc = std::make_shared<Doc>();
  std::string err, dup;
  if (!parse_json(text, doc->json, &err, &dup)) {
    if (!dup.empty()) return Status(StatusCode::FormatError, "[json] " + name + ": duplicate key '" + dup + "'");
    return Status(StatusCode::FormatError, "[json] " + name + ": " + err);
  }
  JsonConfig c;
  c.doc_ = std::move(doc);
  c.name_ = name;
  return c;
}

Result<JsonConfig> JsonConfig::open(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(StatusCode::NotFound, "[json] cannot open " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  if (ss.str().size() > (size_t{64} << 20)) return Status(StatusCode::FormatError, "[json] " + path + " is over 64 MiB");
  return parse(ss.str(), path);
}

bool JsonConfig::has(std::string_view path) const { return lookup(doc_->json, path) != nullptr; }

template <typename T>
Result<T> JsonConfig::get(std::string_view path) const {
  const Json* j = lookup(doc_->json, path);
  if (j == nullptr) return Status(StatusCode::NotFound, detail::cat("[json] ", name_, ": no key '", path, "'"));
  auto wrong = [&](const char* want) {
    return invalid_argument("json", name_, ": '", path, "' is ", kind(*j), ", expected ", want);
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (!j->is_boolean()) return wrong("a boolean");
    return j->get<bool>();
  } else if constexpr (std::is_same_v<T, int64_t>) {
    if (j->is_number_unsigned()) {
      const auto u = j->get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return wrong("an integer in int64 range");
      return static_cast<int64_t>(u);
    }
    if (!j->is_number_integer()) return wrong("an integer");
    return j->get<int64_t>();
  } else if constexpr (std::is_same_v<T, double>) {
    if (!j->is_number()) return wrong("a number");
    return j->get<double>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!j->is_string()) return wrong("a string");
    return j->get<std::string>();
  } else {
    using E = typename T::value_type;
    if (!j->is_array()) return wrong("an array");
    T out;
    for (const auto& e : *j) {
      if constexpr (std::is_same_v<E, int64_t>) {
        if (!e.is_number_integer()) return wrong("an array of integers");
        if (e.is_number_unsigned() && e.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
          return wrong("an array of int64 integers");
        out.push_back(e.get<int64_t>());
      } else if constexpr (std::is_same_v<E, double>) {
        if (!e.is_number()) return wrong("an array of numbers");
        out.push_back(e.get<double>());
      } else {
        if (!e.is_string()) return wrong("an array of strings");
        out.push_back(e.get<std::string>());
      }
    }
    return out;
  }
}

Result<std::vector<std::string>> JsonConfig::keys(std::string_view path) const {
  const Json* j = lookup(doc_->json, path);
  if (j == nullptr) return Status(StatusCode::NotFound, detail::cat("[json] ", name_, ": no key '", path, "'"));
  if (!j->is_object()) return invalid_argument("json", name_, ": '", path, "' is ", kind(*j), ", expected an object");
  std::vector<std::string> out;
  for (auto it = j->begin(); it != j->end(); ++it) out.push_back(it.key());
  return out;
}

template Result<bool> JsonConfig::get<bool>(std::string_view) const;
template Result<int64_t> JsonConfig::get<int64_t>(std::string_view) const;
template Result<double> JsonConfig::get<double>(std::string_view) const;
template Result<std::string> JsonConfig::get<std::string>(std::string_view) const;
template Result<std::vector<int64_t>> JsonConfig::get<std::vector<int64_t>>(std::string_view) const;
template Result<std::vector<double>> JsonConfig::get<std::vector<double>>(std::string_view) const;
template Result<std::vector<std::string>> JsonConfig::get<std::vector<std::string>>(std::string_view) const;

}  // namespace mlxn::io
