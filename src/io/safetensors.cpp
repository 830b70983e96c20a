#include "mlxn/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>

#include "io/json_doc.h"
#include "io/utf8.h"
#include "mlxn/core/half.h"
#include "mlxn/quant/quant.h"

namespace mlxn::io {
namespace {

using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the format's own limit

const StDtypeInfo kInfo[] = {
    {"BOOL", 8, DType::U8, true},      {"U8", 8, DType::U8, true},         {"I8", 8, DType::I8, true},
    {"F8_E5M2", 8, std::nullopt, true}, {"F8_E4M3", 8, std::nullopt, true}, {"F8_E8M0", 8, std::nullopt, true},
    {"I16", 16, DType::I16, true},      {"U16", 16, DType::U16, true},      {"F16", 16, DType::F16, true},
    {"BF16", 16, DType::BF16, true},    {"I32", 32, DType::I32, true},      {"U32", 32, DType::U32, true},
    {"F32", 32, DType::F32, true},      {"F64", 64, DType::F64, true},      {"I64", 64, DType::I64, true},
    {"U64", 64, std::nullopt, true},    {"C64", 64, std::nullopt, false},   {"F4", 4, std::nullopt, false},
    {"F6_E2M3", 6, std::nullopt, false}, {"F6_E3M2", 6, std::nullopt, false},
};

Status format_error(const std::string& file, const std::string& what) {
  return Status(StatusCode::FormatError, "[safetensors] " + file + ": " + what);
}

float f8_e4m3_to_f32(uint8_t v) {  // OCP E4M3FN: bias 7, no infinities, S.1111.111 is NaN
  const float sign = (v & 0x80) ? -1.0f : 1.0f;
  const int e = (v >> 3) & 0x0F, m = v & 0x07;
  if (e == 0x0F && m == 0x07) return std::numeric_limits<float>::quiet_NaN();
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -9);
  return sign * std::ldexp(1.0f + static_cast<float>(m) / 8.0f, e - 7);
}

float f8_e8m0_to_f32(uint8_t v) {  // 2^(v - 127); 0xFF is NaN
  if (v == 0xFF) return std::numeric_limits<float>::quiet_NaN();
  return std::ldexp(1.0f, static_cast<int>(v) - 127);
}

}  // namespace

const StDtypeInfo& st_dtype_info(StDtype t) { return kInfo[static_cast<size_t>(t)]; }

std::optional<StDtype> st_dtype_from_name(std::string_view name) {
  for (size_t i = 0; i < std::size(kInfo); ++i)
    if (kInfo[i].name == name) return static_cast<StDtype>(i);
  return std::nullopt;
}

// ---- one file -------------------------------------------------------------------------------------------------

Result<SafetensorsFile> SafetensorsFile::parse(std::shared_ptr<MappedFile> file) {
  if (!file) return invalid_argument("safetensors", "no file");
  SafetensorsFile out;
  out.file_ = std::move(file);
  const std::string& fname = out.file_->path();
  const uint8_t* p = out.file_->data();
  const uint64_t size = out.file_->size();
  if (size < 8) return format_error(fname, detail::cat("truncated: ", size, " bytes, the header length alone is 8"));
  uint64_t n = 0;
  std::memcpy(&n, p, 8);
  if (n > kMaxHeaderBytes) return format_error(fname, detail::cat("header length ", n, " exceeds the format's 100 MB"));
  if (n > size - 8)
    return format_error(fname, detail::cat("truncated: the header needs ", n, " bytes, the file has ", size - 8));
  if (n < 2 || p[8] != '{') return format_error(fname, "the header is not a JSON object");
  out.data_offset_ = 8 + n;
  const uint64_t data_size = size - out.data_offset_;

  Json header;
  std::string err, dup;
  if (!parse_json(std::string_view(reinterpret_cast<const char*>(p + 8), static_cast<size_t>(n)), header, &err, &dup)) {
    if (!dup.empty()) return format_error(fname, "duplicate tensor '" + printable(dup) + "' in the header");
    return format_error(fname, "header JSON: " + err);
  }
  if (!header.is_object()) return format_error(fname, "the header is not a JSON object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const Json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return format_error(fname, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          return format_error(fname, "__metadata__ value of '" + printable(m.key()) + "' is not a string");
        out.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string tname = printable(name);
    if (name.empty()) return format_error(fname, "a tensor has an empty name");
    if (!v.is_object()) return format_error(fname, "tensor '" + tname + "' entry is not an object");
    for (auto f = v.begin(); f != v.end(); ++f)
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        return format_error(fname, "tensor '" + tname + "' has an unknown field '" + printable(f.key()) + "'");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || sh == v.end() || off == v.end())
      return format_error(fname, "tensor '" + tname + "' lacks dtype, shape or data_offsets");
    if (!dt->is_string()) return format_error(fname, "tensor '" + tname + "' dtype is not a string");
    const auto st = st_dtype_from_name(dt->get<std::string>());
    if (!st) return format_error(fname, "tensor '" + tname + "' has unknown dtype '" + printable(dt->get<std::string>()) + "'");
    if (!sh->is_array()) return format_error(fname, "tensor '" + tname + "' shape is not an array");
    if (sh->size() > static_cast<size_t>(kMaxDims))
      return format_error(fname, detail::cat("tensor '", tname, "' has ", sh->size(), " dimensions; at most ", kMaxDims));
    std::vector<int64_t> dims;
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned())
        return format_error(fname, "tensor '" + tname + "' shape holds " + d.dump() + ", not a non-negative integer");
      const uint64_t u = d.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (u != 0 && numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / u))
        return format_error(fname, "tensor '" + tname + "': the element count overflows");
      numel *= u;
      dims.push_back(static_cast<int64_t>(u));
    }
    if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
      return format_error(fname, "tensor '" + tname + "' data_offsets is not a pair of non-negative integers");
    SafetensorsTensorInfo info;
    info.name = name;
    info.dtype = *st;
    info.shape = Shape(dims.begin(), dims.end());
    info.numel = static_cast<int64_t>(numel);
    info.begin = (*off)[0].get<uint64_t>();
    info.end = (*off)[1].get<uint64_t>();
    const uint64_t bits = static_cast<uint64_t>(st_dtype_info(*st).bits);
    if (numel > std::numeric_limits<uint64_t>::max() / bits)
      return format_error(fname, "tensor '" + tname + "': the byte size overflows");
    if ((numel * bits) % 8 != 0)
      return format_error(fname, detail::cat("tensor '", tname, "': ", numel, " ", dt->get<std::string>(),
                                             " elements are not a whole number of bytes"));
    const uint64_t nbytes = numel * bits / 8;
    if (info.begin > info.end || info.end > data_size)
      return format_error(fname, detail::cat("tensor '", tname, "' data_offsets [", info.begin, ", ", info.end,
                                             "] are reversed or past the end of the data (", data_size, " bytes)"));
    if (info.end - info.begin != nbytes)
      return format_error(fname, detail::cat("tensor '", tname, "' holds ", info.end - info.begin, " bytes; ",
                                             info.shape, " ", dt->get<std::string>(), " needs ", nbytes));
    out.index_.emplace(info.name, out.tensors_.size());
    out.tensors_.push_back(std::move(info));
  }
  // No two tensors may share bytes: sorted by start, each must begin at or after the furthest end so far.
  std::vector<const SafetensorsTensorInfo*> order;
  for (const auto& t : out.tensors_)
    if (t.end > t.begin) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  const SafetensorsTensorInfo* furthest = nullptr;
  for (const auto* t : order) {
    if (furthest != nullptr && t->begin < furthest->end)
      return format_error(fname, "tensor '" + printable(t->name) + "' overlaps tensor '" + printable(furthest->name) + "'");
    if (furthest == nullptr || t->end > furthest->end) furthest = t;
  }
  return out;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  MLXN_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(path));
  return parse(std::move(mapped));
}

const SafetensorsTensorInfo* SafetensorsFile::tensor(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Result<std::span<const uint8_t>> SafetensorsFile::tensor_data(std::string_view name) const {
  const auto* t = tensor(name);
  if (t == nullptr)
    return Status(StatusCode::NotFound, detail::cat("[safetensors] ", path(), ": no tensor '", printable(name), "'"));
  return std::span<const uint8_t>(file_->data() + data_offset_ + t->begin, static_cast<size_t>(t->end - t->begin));
}

Result<Buffer> SafetensorsFile::load_tensor(std::string_view name, const Device& device) const {
  MLXN_ASSIGN_OR_RETURN(auto bytes, tensor_data(name));
  const auto& t = *tensor(name);
  const auto& info = st_dtype_info(t.dtype);
  if (!info.dtype)
    return unsupported("safetensors", path(), ": tensor '", printable(name), "' is ", info.name,
                       ", which has no mlxn dtype; read its bytes or dequantize it");
  const DType dt = *info.dtype;
  if (device.backend() == Backend::Cpu && reinterpret_cast<uintptr_t>(bytes.data()) % dtype_size(dt) == 0)
    return Buffer::wrap(device, const_cast<uint8_t*>(bytes.data()), bytes.size(), dt, t.shape, file_);
  MLXN_ASSIGN_OR_RETURN(Buffer buf, device.alloc(dt, t.shape));
  MLXN_TRY(buf.upload(bytes.data(), bytes.size()));
  return buf;
}

Result<std::vector<float>> SafetensorsFile::dequantize_tensor(std::string_view name) const {
  MLXN_ASSIGN_OR_RETURN(auto bytes, tensor_data(name));
  const auto& t = *tensor(name);
  const auto& info = st_dtype_info(t.dtype);
  if (!info.to_f32) return unsupported("safetensors", path(), ": no f32 conversion of ", info.name, " ('", printable(name), "')");
  std::vector<float> out;
  try {
    out.resize(static_cast<size_t>(t.numel));
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::OutOfMemory, "[safetensors] tensor '" + printable(name) + "' does not fit in memory");
  }
  const uint8_t* b = bytes.data();
  switch (t.dtype) {
    case StDtype::BOOL:
      for (int64_t i = 0; i < t.numel; ++i) out[i] = b[i] ? 1.0f : 0.0f;
      break;
    case StDtype::F8_E5M2:
      for (int64_t i = 0; i < t.numel; ++i) out[i] = f16_to_f32(static_cast<uint16_t>(b[i] << 8));
      break;
    case StDtype::F8_E4M3:
      for (int64_t i = 0; i < t.numel; ++i) out[i] = f8_e4m3_to_f32(b[i]);
      break;
    case StDtype::F8_E8M0:
      for (int64_t i = 0; i < t.numel; ++i) out[i] = f8_e8m0_to_f32(b[i]);
      break;
    case StDtype::U64:
      for (int64_t i = 0; i < t.numel; ++i) {
        uint64_t v;
        std::memcpy(&v, b + 8 * i, 8);
        out[i] = static_cast<float>(v);
      }
      break;
    default:
      MLXN_TRY(quant::dequantize(*info.dtype, b, bytes.size(), out.data(), t.numel));
  }
  return out;
}

// ---- MLX quantization config ----------------------------------------------------------------------------------

namespace {

std::string_view strip_tensor_suffix(std::string_view name) {
  for (std::string_view suf : {".weight", ".scales", ".biases"})
    if (name.size() > suf.size() && name.substr(name.size() - suf.size()) == suf)
      return name.substr(0, name.size() - suf.size());
  return name;
}

Result<quant::AffineSpec> spec_from(const Json& j, const quant::AffineSpec& base, const std::string& where) {
  quant::AffineSpec s = base;
  for (const char* k : {"bits", "group_size"}) {
    auto it = j.find(k);
    if (it == j.end()) continue;
    if (!it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > 4096)
      return Status(StatusCode::FormatError, "[mlx_quant] " + where + "." + k + " is not a small positive integer");
    (std::string_view(k) == "bits" ? s.bits : s.group_size) = static_cast<int>(it->get<int64_t>());
  }
  MLXN_TRY(quant::affine_check(s, 1, s.group_size));
  return s;
}

}  // namespace

std::optional<quant::AffineSpec> MlxQuantConfig::spec_for(std::string_view name) const {
  const std::string_view base = strip_tensor_suffix(name);
  const std::string_view lm = "language_model.";
  auto find = [&](std::string_view k) { return overrides.find(k); };
  auto it = find(base);
  if (it == overrides.end() && base.substr(0, lm.size()) == lm) it = find(base.substr(lm.size()));
  if (it == overrides.end() && base.substr(0, lm.size()) != lm) it = find(std::string(lm) + std::string(base));
  if (it != overrides.end()) return it->second;
  return defaults;
}

Result<std::optional<MlxQuantConfig>> MlxQuantConfig::from_config(const JsonConfig& config) {
  const Json& root = config.doc().json;
  if (!root.is_object()) return std::optional<MlxQuantConfig>();
  const Json* q = nullptr;
  if (auto it = root.find("quantization"); it != root.end() && it->is_object()) {
    q = &*it;
  } else if (auto qc = root.find("quantization_config");
             qc != root.end() && qc->is_object() && !qc->contains("quant_method") && qc->contains("bits")) {
    q = &*qc;  // mlx-lm writes the same object under both names; other tools' configs carry a quant_method
  }
  if (q == nullptr) return std::optional<MlxQuantConfig>();
  MlxQuantConfig c;
  if (auto m = q->find("mode"); m != q->end()) {
    if (!m->is_string()) return Status(StatusCode::FormatError, "[mlx_quant] quantization.mode is not a string");
    c.mode = m->get<std::string>();
  }
  MLXN_ASSIGN_OR_RETURN(c.defaults, spec_from(*q, quant::AffineSpec{4, 64}, "quantization"));
  for (auto it = q->begin(); it != q->end(); ++it) {
    if (it.value().is_boolean()) {
      if (it.value().get<bool>())
        c.overrides[it.key()] = c.defaults;
      else
        c.overrides[it.key()] = std::nullopt;
    } else if (it.value().is_object()) {
      MLXN_ASSIGN_OR_RETURN(auto s, spec_from(it.value(), c.defaults, "quantization." + it.key()));
      c.overrides[it.key()] = s;
    }
  }
  return std::optional<MlxQuantConfig>(std::move(c));
}

// ---- checkpoint -----------------------------------------------------------------------------------------------

Result<SafetensorsModel> SafetensorsModel::open(const std::string& path) {
  SafetensorsModel m;
  std::error_code ec;
  fs::path dir;
  std::vector<fs::path> files;
  std::optional<Json> index;
  std::string index_name;
  const bool is_dir = fs::is_directory(path, ec);
  if (!is_dir && !fs::exists(path, ec)) return Status(StatusCode::NotFound, "[safetensors] no such file " + path);
  if (!is_dir && path.size() >= 11 && path.substr(path.size() - 11) == ".index.json") {
    dir = fs::path(path).parent_path();
    index_name = path;
  } else if (is_dir) {
    dir = path;
    if (fs::exists(dir / "model.safetensors.index.json", ec)) {
      index_name = (dir / "model.safetensors.index.json").string();
    } else if (fs::exists(dir / "model.safetensors", ec)) {
      files.push_back(dir / "model.safetensors");
    } else {
      for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".safetensors") files.push_back(e.path());
      std::sort(files.begin(), files.end());
      if (files.empty()) return Status(StatusCode::NotFound, "[safetensors] no .safetensors files in " + path);
    }
  } else {
    dir = fs::path(path).parent_path();
    files.push_back(path);
  }

  std::map<std::string, std::string> weight_map;
  if (!index_name.empty()) {
    MLXN_ASSIGN_OR_RETURN(JsonConfig idx, JsonConfig::open(index_name));
    const Json& j = idx.doc().json;
    auto wm = j.is_object() ? j.find("weight_map") : j.end();
    if (!j.is_object() || wm == j.end() || !wm->is_object())
      return Status(StatusCode::FormatError, "[safetensors] " + index_name + " has no weight_map object");
    std::vector<std::string> shard_names;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string())
        return Status(StatusCode::FormatError, "[safetensors] " + index_name + ": weight_map entry of '" +
                                                   printable(it.key()) + "' is not a file name");
      const std::string f = it.value().get<std::string>();
      // Shards must be plain names in the checkpoint's own directory: no paths, no way out of it.
      if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos || f == "." ||
          f == ".." || f.find('\0') != std::string::npos)
        return Status(StatusCode::FormatError,
                      "[safetensors] " + index_name + ": shard name '" + printable(f) + "' is not a plain file name");
      weight_map[it.key()] = f;
      if (std::find(shard_names.begin(), shard_names.end(), f) == shard_names.end()) shard_names.push_back(f);
    }
    std::sort(shard_names.begin(), shard_names.end());
    for (const auto& f : shard_names) files.push_back(dir / f);
  }

  for (const auto& f : files) {
    MLXN_ASSIGN_OR_RETURN(auto shard, SafetensorsFile::open(f.string()));
    for (const auto& t : shard.tensors()) {
      if (m.where_.count(t.name) != 0)
        return Status(StatusCode::FormatError, "[safetensors] tensor '" + printable(t.name) + "' is in both " +
                                                   m.shards_[m.where_[t.name]].path() + " and " + f.string());
      m.where_[t.name] = m.shards_.size();
    }
    m.shards_.push_back(std::move(shard));
  }
  for (const auto& [name, file] : weight_map) {
    auto it = m.where_.find(name);
    if (it == m.where_.end() || fs::path(m.shards_[it->second].path()).filename() != file)
      return Status(StatusCode::FormatError, "[safetensors] " + index_name + " places '" + printable(name) + "' in " +
                                                 file + ", which does not hold it");
  }

  const fs::path cfg = dir / "config.json";
  if (fs::exists(cfg, ec)) {
    MLXN_ASSIGN_OR_RETURN(JsonConfig c, JsonConfig::open(cfg.string()));
    MLXN_ASSIGN_OR_RETURN(m.mlx_quant_, MlxQuantConfig::from_config(c));
    m.config_ = std::move(c);
  }
  return m;
}

std::vector<std::string> SafetensorsModel::tensor_names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : where_) out.push_back(k);
  return out;
}

const SafetensorsFile* SafetensorsModel::shard_of(std::string_view name) const {
  auto it = where_.find(name);
  return it == where_.end() ? nullptr : &shards_[it->second];
}

const SafetensorsTensorInfo* SafetensorsModel::tensor(std::string_view name) const {
  const auto* s = shard_of(name);
  return s ? s->tensor(name) : nullptr;
}

Result<Buffer> SafetensorsModel::load_tensor(std::string_view name, const Device& device) const {
  const auto* s = shard_of(name);
  if (!s) return Status(StatusCode::NotFound, "[safetensors] no tensor '" + printable(name) + "' in the checkpoint");
  return s->load_tensor(name, device);
}

Result<std::vector<float>> SafetensorsModel::dequantize_tensor(std::string_view name) const {
  const auto* s = shard_of(name);
  if (!s) return Status(StatusCode::NotFound, "[safetensors] no tensor '" + printable(name) + "' in the checkpoint");
  return s->dequantize_tensor(name);
}

bool SafetensorsModel::is_affine(std::string_view module) const {
  return tensor(std::string(strip_tensor_suffix(module)) + ".scales") != nullptr;
}

namespace {

struct AffineParts {
  std::string module;
  quant::AffineSpec spec;
  int64_t rows = 0, cols = 0;
  const SafetensorsTensorInfo* w = nullptr;
  const SafetensorsTensorInfo* s = nullptr;
  const SafetensorsTensorInfo* b = nullptr;
};

Result<AffineParts> affine_parts(const SafetensorsModel& m, std::string_view module) {
  AffineParts p;
  p.module = std::string(strip_tensor_suffix(module));
  const std::string mod = printable(p.module);
  p.w = m.tensor(p.module + ".weight");
  p.s = m.tensor(p.module + ".scales");
  p.b = m.tensor(p.module + ".biases");
  if (!p.w || !p.s)
    return Status(StatusCode::NotFound, "[mlx_quant] '" + mod + "' has no .weight and .scales tensors");
  if (!m.mlx_quant())
    return Status(StatusCode::FormatError, "[mlx_quant] '" + mod + "' is quantized but config.json has no quantization");
  if (m.mlx_quant()->mode != "affine")
    return unsupported("mlx_quant", "quantization mode '", m.mlx_quant()->mode, "' (only affine)");
  auto spec = m.mlx_quant()->spec_for(p.module);
  if (!spec)
    return Status(StatusCode::FormatError, "[mlx_quant] '" + mod + "' has scales but config.json leaves it unquantized");
  p.spec = *spec;
  if (!p.b) return Status(StatusCode::FormatError, "[mlx_quant] affine module '" + mod + "' has no .biases");
  if (p.w->dtype != StDtype::U32)
    return Status(StatusCode::FormatError, "[mlx_quant] '" + mod + ".weight' is " +
                                               std::string(st_dtype_info(p.w->dtype).name) + ", expected U32");
  const StDtype sd = p.s->dtype;
  if ((sd != StDtype::F16 && sd != StDtype::BF16 && sd != StDtype::F32) || p.b->dtype != sd)
    return Status(StatusCode::FormatError, "[mlx_quant] '" + mod + "' scales and biases must share one of F16, BF16, "
                                           "F32; they are " + std::string(st_dtype_info(sd).name) + " and " +
                                           std::string(st_dtype_info(p.b->dtype).name));
  const Shape& ws = p.w->shape;
  if (ws.rank() < 2 || p.s->shape.rank() != ws.rank() || p.b->shape != p.s->shape)
    return Status(StatusCode::FormatError, detail::cat("[mlx_quant] '", mod, "' shapes ", ws, ", ", p.s->shape, ", ",
                                                       p.b->shape, " do not fit together"));
  for (int i = 0; i + 1 < ws.rank(); ++i)
    if (ws[i] != p.s->shape[i])
      return Status(StatusCode::FormatError, detail::cat("[mlx_quant] '", mod, "' weight ", ws, " and scales ",
                                                         p.s->shape, " differ in their leading dimensions"));
  const int64_t words = ws.back();
  if (words > std::numeric_limits<int64_t>::max() / 32)
    return Status(StatusCode::FormatError, "[mlx_quant] '" + mod + "' is too large");
  if ((words * 32) % p.spec.bits != 0)
    return Status(StatusCode::FormatError, detail::cat("[mlx_quant] '", mod, "' rows of ", words,
                                                       " words are not whole ", p.spec.bits, "-bit values"));
  p.cols = words * 32 / p.spec.bits;
  p.rows = ws.numel() / std::max<int64_t>(words, 1);
  if (p.cols % p.spec.group_size != 0 || p.s->shape.back() != p.cols / p.spec.group_size)
    return Status(StatusCode::FormatError,
                  detail::cat("[mlx_quant] '", mod, "': ", p.cols, " columns at group size ", p.spec.group_size,
                              " need ", p.cols / p.spec.group_size, " scales per row; the file has ", p.s->shape.back(),
                              " (check bits / group_size in config.json)"));
  MLXN_TRY(quant::affine_check(p.spec, p.rows, p.cols));
  return p;
}

}  // namespace

Result<AffineWeight> SafetensorsModel::load_affine(std::string_view module, const Device& device) const {
  MLXN_ASSIGN_OR_RETURN(AffineParts p, affine_parts(*this, module));
  AffineWeight a;
  a.module = p.module;
  a.spec = p.spec;
  a.rows = p.rows;
  a.cols = p.cols;
  MLXN_ASSIGN_OR_RETURN(a.packed, load_tensor(p.w->name, device));
  MLXN_ASSIGN_OR_RETURN(a.scales, load_tensor(p.s->name, device));
  MLXN_ASSIGN_OR_RETURN(a.biases, load_tensor(p.b->name, device));
  return a;
}

Result<std::vector<float>> SafetensorsModel::dequantize_affine(std::string_view module) const {
  MLXN_ASSIGN_OR_RETURN(AffineParts p, affine_parts(*this, module));
  MLXN_ASSIGN_OR_RETURN(auto w, shard_of(p.w->name)->tensor_data(p.w->name));
  MLXN_ASSIGN_OR_RETURN(auto s, shard_of(p.s->name)->tensor_data(p.s->name));
  MLXN_ASSIGN_OR_RETURN(auto b, shard_of(p.b->name)->tensor_data(p.b->name));
  std::vector<float> out(static_cast<size_t>(p.rows * p.cols));
  MLXN_TRY(quant::affine_dequantize(p.spec, p.rows, p.cols, w.data(), w.size(), *st_dtype_info(p.s->dtype).dtype,
                                    s.data(), b.data(), out.data()));
  return out;
}

}  // namespace mlxn::io
