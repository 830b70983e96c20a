// The nlohmann::json behind JsonConfig (kept out of the public headers).
#pragma once

#include <nlohmann/json.hpp>

#include "mlxn/io/json_config.h"

namespace mlxn::io {

struct JsonConfig::Doc {
  nlohmann::ordered_json json;
};

// Parses without exceptions. Fails on malformed JSON or invalid UTF-8; `duplicate` (if given) gets the first key
// repeated in the top-level object.
bool parse_json(std::string_view text, nlohmann::ordered_json& out, std::string* error, std::string* duplicate);

}  // namespace mlxn::io
