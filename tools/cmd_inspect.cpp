// mlxn inspect FILE|DIR [--json] [--dump NAME -o OUT.npy]
// Prints the architecture, metadata (long arrays abbreviated), tensor table (name, type, shape, bytes, offset) and
// totals of a GGUF file or a safetensors file / checkpoint directory. --dump writes one tensor, dequantized to f32,
// as .npy (MLX affine modules are dequantized through their scales and biases).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "mlxn/io/gguf.h"
#include "mlxn/io/npy.h"
#include "mlxn/io/safetensors.h"

namespace mlxn::cli {
namespace {

using Json = nlohmann::ordered_json;

struct Row {
  std::string name, type, shape;
  uint64_t bytes = 0;
  std::string offset;
  int64_t numel = 0;
};

struct Report {
  std::string path, format, architecture;
  std::vector<std::pair<std::string, std::string>> metadata;  // key -> printable value
  std::vector<std::pair<std::string, std::string>> metadata_types;
  std::vector<Row> rows;
};

std::string shape_str(const Shape& s) { return s.to_string(); }

std::string human_bytes(uint64_t b) {
  char buf[64];
  if (b >= (uint64_t{1} << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1u << 30));
  else if (b >= (uint64_t{1} << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(b) / (1u << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / 1024);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

bool is_gguf(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char m[4] = {};
  return f.read(m, 4) && std::string(m, 4) == "GGUF";
}

Result<Report> report_gguf(const io::GgufFile& f) {
  Report r;
  r.path = f.path();
  r.format = "GGUF v" + std::to_string(f.version()) + " (alignment " + std::to_string(f.alignment()) +
             ", data at offset " + std::to_string(f.data_offset()) + ")";
  r.architecture = f.architecture();
  for (const auto& kv : f.metadata()) {
    std::string type(io::gguf_type_name(kv.value.type()));
    if (kv.value.is_array()) type = "array[" + std::string(io::gguf_type_name(kv.value.elem_type())) + "]";
    r.metadata.emplace_back(kv.key, kv.value.to_string(8));
    r.metadata_types.emplace_back(kv.key, type);
  }
  for (const auto& t : f.tensors())
    r.rows.push_back({t.name, std::string(t.type_name), shape_str(t.shape), t.nbytes,
                      std::to_string(f.data_offset() + t.offset), t.numel});
  return r;
}

Result<Report> report_safetensors(const io::SafetensorsModel& m, const std::string& path) {
  Report r;
  r.path = path;
  r.format = "safetensors (" + std::to_string(m.shards().size()) + " file" + (m.shards().size() == 1 ? "" : "s") + ")";
  if (m.config()) {
    if (auto a = m.config()->get<std::vector<std::string>>("architectures"); a && !a->empty()) r.architecture = (*a)[0];
    else if (auto t = m.config()->get<std::string>("model_type"); t) r.architecture = *t;
  }
  for (const auto& s : m.shards())
    for (const auto& [k, v] : s.metadata()) {
      r.metadata.emplace_back(k, "\"" + v + "\"");
      r.metadata_types.emplace_back(k, "string");
    }
  if (m.mlx_quant()) {
    const auto& q = *m.mlx_quant();
    r.metadata.emplace_back("mlx.quantization", q.mode + ", " + std::to_string(q.defaults.bits) + " bits, group " +
                                                    std::to_string(q.defaults.group_size) + ", " +
                                                    std::to_string(q.overrides.size()) + " per-module overrides");
    r.metadata_types.emplace_back("mlx.quantization", "config.json");
  }
  const bool many = m.shards().size() > 1;
  for (const auto& name : m.tensor_names()) {
    const auto* s = m.shard_of(name);
    const auto* t = s->tensor(name);
    std::string off = std::to_string(s->data_offset() + t->begin);
    if (many) off = std::filesystem::path(s->path()).filename().string() + ":" + off;
    r.rows.push_back({name, std::string(io::st_dtype_info(t->dtype).name), shape_str(t->shape), t->end - t->begin,
                      off, t->numel});
  }
  return r;
}

void print_text(const Report& r) {
  std::printf("file:         %s\nformat:       %s\narchitecture: %s\n", r.path.c_str(), r.format.c_str(),
              r.architecture.empty() ? "(none)" : r.architecture.c_str());
  std::printf("\nmetadata (%zu keys):\n", r.metadata.size());
  size_t kw = 3;
  for (const auto& [k, v] : r.metadata) kw = std::max(kw, std::min<size_t>(k.size(), 60));
  for (size_t i = 0; i < r.metadata.size(); ++i) {
    std::string v = r.metadata[i].second;
    if (v.size() > 160) v = v.substr(0, 157) + "...";
    std::printf("  %-*s  %-14s %s\n", static_cast<int>(kw), r.metadata[i].first.c_str(),
                r.metadata_types[i].second.c_str(), v.c_str());
  }
  size_t nw = 4, sw = 5;
  for (const auto& row : r.rows) {
    nw = std::max(nw, std::min<size_t>(row.name.size(), 72));
    sw = std::max(sw, row.shape.size());
  }
  std::printf("\ntensors (%zu):\n  %-*s  %-8s %-*s %14s  %s\n", r.rows.size(), static_cast<int>(nw), "name", "type",
              static_cast<int>(sw), "shape", "bytes", "offset");
  uint64_t total_bytes = 0;
  int64_t total_elems = 0;
  std::map<std::string, std::pair<size_t, uint64_t>> by_type;
  for (const auto& row : r.rows) {
    std::printf("  %-*s  %-8s %-*s %14llu  %s\n", static_cast<int>(nw), row.name.c_str(), row.type.c_str(),
                static_cast<int>(sw), row.shape.c_str(), static_cast<unsigned long long>(row.bytes), row.offset.c_str());
    total_bytes += row.bytes;
    total_elems += row.numel;
    by_type[row.type].first++;
    by_type[row.type].second += row.bytes;
  }
  std::printf("\ntotals: %zu tensors, %lld elements, %s\n", r.rows.size(), static_cast<long long>(total_elems),
              human_bytes(total_bytes).c_str());
  for (const auto& [t, c] : by_type)
    std::printf("  %-8s %6zu tensors  %s\n", t.c_str(), c.first, human_bytes(c.second).c_str());
}

void print_json(const Report& r) {
  Json j;
  j["file"] = r.path;
  j["format"] = r.format;
  j["architecture"] = r.architecture;
  Json meta = Json::object();
  for (size_t i = 0; i < r.metadata.size(); ++i)
    meta[r.metadata[i].first] = {{"type", r.metadata_types[i].second}, {"value", r.metadata[i].second}};
  j["metadata"] = meta;
  Json ts = Json::array();
  uint64_t total = 0;
  for (const auto& row : r.rows) {
    ts.push_back({{"name", row.name}, {"type", row.type}, {"shape", row.shape}, {"bytes", row.bytes},
                  {"offset", row.offset}, {"elements", row.numel}});
    total += row.bytes;
  }
  j["tensors"] = ts;
  j["totals"] = {{"tensors", r.rows.size()}, {"bytes", total}};
  // Names and values may hold arbitrary bytes: replace invalid UTF-8 rather than throw.
  std::printf("%s\n", j.dump(2, ' ', false, Json::error_handler_t::replace).c_str());
}

}  // namespace

int cmd_inspect(const Args& args) {
  std::string path, dump, out;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") json = true;
    else if (args[i] == "--dump" && i + 1 < args.size()) dump = args[++i];
    else if (args[i] == "-o" && i + 1 < args.size()) out = args[++i];
    else if (!args[i].empty() && args[i][0] == '-') return fail("inspect", "unknown option " + args[i]);
    else if (path.empty()) path = args[i];
    else return fail("inspect", "more than one input given");
  }
  if (path.empty()) return fail("inspect", "usage: mlxn inspect FILE|DIR [--json] [--dump NAME -o OUT.npy]");
  if (!dump.empty() && out.empty()) return fail("inspect", "--dump needs -o OUT.npy");

  std::error_code ec;
  bool dir = std::filesystem::is_directory(path, ec);
  if (dir) {
    // A directory of one GGUF file (and no safetensors) stands for that file.
    std::vector<std::string> gguf, st;
    for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
      if (e.path().extension() == ".gguf") gguf.push_back(e.path().string());
      if (e.path().extension() == ".safetensors") st.push_back(e.path().string());
    }
    if (gguf.size() == 1 && st.empty()) {
      path = gguf[0];
      dir = false;
    }
  }
  if (!dir && !std::filesystem::exists(path, ec)) return fail("inspect", path + ": no such file or directory");
  Result<Report> rep = Status(StatusCode::Internal, "unset");
  const bool gguf_name = path.size() >= 5 && path.substr(path.size() - 5) == ".gguf";
  if (!dir && (gguf_name || is_gguf(path))) {
    auto f = io::GgufFile::open(path);
    if (!f) return fail("inspect", f.status().to_string());
    if (!dump.empty()) {
      const auto* t = f->tensor(dump);
      if (!t) return fail("inspect", path + ": no tensor '" + dump + "'");
      auto v = f->dequantize_tensor(dump);
      if (!v) return fail("inspect", v.status().to_string());
      Status st = io::write_npy_f32(out, t->shape, *v);
      if (!st) return fail("inspect", st.to_string());
      std::printf("wrote %s: %s f32 from %s\n", out.c_str(), t->shape.to_string().c_str(),
                  std::string(t->type_name).c_str());
      return 0;
    }
    rep = report_gguf(*f);
  } else {
    auto m = io::SafetensorsModel::open(path);
    if (!m) return fail("inspect", m.status().to_string());
    if (!dump.empty()) {
      Result<std::vector<float>> v = Status(StatusCode::Internal, "unset");
      Shape shape;
      if (m->is_affine(dump)) {
        v = m->dequantize_affine(dump);
        if (v) {
          auto a = m->load_affine(dump, Device::cpu());
          if (a) shape = Shape{a->rows, a->cols};
        }
      } else if (const auto* t = m->tensor(dump)) {
        v = m->dequantize_tensor(dump);
        shape = t->shape;
      } else {
        return fail("inspect", path + ": no tensor '" + dump + "'");
      }
      if (!v) return fail("inspect", v.status().to_string());
      Status st = io::write_npy_f32(out, shape, *v);
      if (!st) return fail("inspect", st.to_string());
      std::printf("wrote %s: %s f32\n", out.c_str(), shape.to_string().c_str());
      return 0;
    }
    rep = report_safetensors(*m, path);
  }
  if (!rep) return fail("inspect", rep.status().to_string());
  if (json) print_json(*rep);
  else print_text(*rep);
  return 0;
}

}  // namespace mlxn::cli
