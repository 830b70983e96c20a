#include "mlxn/io/gguf_writer.h"

#include <cstdio>
#include <cstring>
#include <memory>

#include "mlxn/quant/ggml_type.h"

namespace mlxn::io {
namespace {

template <typename T>
void append(std::vector<uint8_t>& out, T v) {
  const size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &v, sizeof(T));
}

void append_string(std::vector<uint8_t>& out, std::string_view s) {
  append<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

template <typename T>
std::vector<uint8_t> scalar(GgufType t, T v) {
  std::vector<uint8_t> b;
  append<uint32_t>(b, static_cast<uint32_t>(t));
  append<T>(b, v);
  return b;
}

template <typename T>
std::vector<uint8_t> array(GgufType et, const std::vector<T>& v) {
  std::vector<uint8_t> b;
  append<uint32_t>(b, static_cast<uint32_t>(GgufType::Array));
  append<uint32_t>(b, static_cast<uint32_t>(et));
  append<uint64_t>(b, v.size());
  for (const T& x : v) append<T>(b, x);
  return b;
}

// The payload of a value (without its leading type for top-level values).
void encode_payload(std::vector<uint8_t>& b, const GgufValue& v) {
  switch (v.type()) {
    case GgufType::String: append_string(b, v.as<std::string_view>().value()); return;
    case GgufType::Array:
      append<uint32_t>(b, static_cast<uint32_t>(v.elem_type()));
      append<uint64_t>(b, v.size());
      for (size_t i = 0; i < v.size(); ++i) encode_payload(b, v.at(i));
      return;
    case GgufType::U8: append<uint8_t>(b, v.as<uint8_t>().value()); return;
    case GgufType::I8: append<int8_t>(b, v.as<int8_t>().value()); return;
    case GgufType::U16: append<uint16_t>(b, v.as<uint16_t>().value()); return;
    case GgufType::I16: append<int16_t>(b, v.as<int16_t>().value()); return;
    case GgufType::U32: append<uint32_t>(b, v.as<uint32_t>().value()); return;
    case GgufType::I32: append<int32_t>(b, v.as<int32_t>().value()); return;
    case GgufType::U64: append<uint64_t>(b, v.as<uint64_t>().value()); return;
    case GgufType::I64: append<int64_t>(b, v.as<int64_t>().value()); return;
    case GgufType::F32: append<float>(b, v.as<float>().value()); return;
    case GgufType::F64: append<double>(b, v.as<double>().value()); return;
    case GgufType::Bool: append<uint8_t>(b, v.as<bool>().value() ? 1 : 0); return;
  }
}

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment == 0 ? 32 : alignment) {
  if (alignment_ != 32) set_u32("general.alignment", alignment_);
}

void GgufWriter::put(const std::string& key, std::vector<uint8_t> value) {
  for (auto& e : entries_) {
    if (e.key == key) {
      e.value = std::move(value);
      return;
    }
  }
  entries_.push_back({key, std::move(value)});
}

void GgufWriter::set_u8(const std::string& k, uint8_t v) { put(k, scalar(GgufType::U8, v)); }
void GgufWriter::set_i8(const std::string& k, int8_t v) { put(k, scalar(GgufType::I8, v)); }
void GgufWriter::set_u16(const std::string& k, uint16_t v) { put(k, scalar(GgufType::U16, v)); }
void GgufWriter::set_i16(const std::string& k, int16_t v) { put(k, scalar(GgufType::I16, v)); }
void GgufWriter::set_u32(const std::string& k, uint32_t v) { put(k, scalar(GgufType::U32, v)); }
void GgufWriter::set_i32(const std::string& k, int32_t v) { put(k, scalar(GgufType::I32, v)); }
void GgufWriter::set_u64(const std::string& k, uint64_t v) { put(k, scalar(GgufType::U64, v)); }
void GgufWriter::set_i64(const std::string& k, int64_t v) { put(k, scalar(GgufType::I64, v)); }
void GgufWriter::set_f32(const std::string& k, float v) { put(k, scalar(GgufType::F32, v)); }
void GgufWriter::set_f64(const std::string& k, double v) { put(k, scalar(GgufType::F64, v)); }
void GgufWriter::set_bool(const std::string& k, bool v) { put(k, scalar<uint8_t>(GgufType::Bool, v ? 1 : 0)); }
void GgufWriter::set_string(const std::string& k, const std::string& v) {
  std::vector<uint8_t> b;
  append<uint32_t>(b, static_cast<uint32_t>(GgufType::String));
  append_string(b, v);
  put(k, std::move(b));
}
void GgufWriter::set_array_i32(const std::string& k, const std::vector<int32_t>& v) { put(k, array(GgufType::I32, v)); }
void GgufWriter::set_array_u32(const std::string& k, const std::vector<uint32_t>& v) { put(k, array(GgufType::U32, v)); }
void GgufWriter::set_array_f32(const std::string& k, const std::vector<float>& v) { put(k, array(GgufType::F32, v)); }
void GgufWriter::set_array_string(const std::string& k, const std::vector<std::string>& v) {
  std::vector<uint8_t> b;
  append<uint32_t>(b, static_cast<uint32_t>(GgufType::Array));
  append<uint32_t>(b, static_cast<uint32_t>(GgufType::String));
  append<uint64_t>(b, v.size());
  for (const auto& s : v) append_string(b, s);
  put(k, std::move(b));
}
void GgufWriter::set_value(const std::string& k, const GgufValue& v) {
  std::vector<uint8_t> b;
  append<uint32_t>(b, static_cast<uint32_t>(v.type()));
  encode_payload(b, v);
  put(k, std::move(b));
}

Status GgufWriter::add_tensor(const std::string& name, uint32_t ggml_type, const Shape& shape,
                              std::span<const uint8_t> data) {
  const auto ti = quant::ggml_type_info(ggml_type);
  if (!ti) return invalid_argument("gguf_writer", "unknown ggml type ", ggml_type, " for tensor '", name, "'");
  if (!shape.valid() || shape.rank() > 4) return invalid_argument("gguf_writer", "tensor '", name, "' shape ", shape);
  const int64_t n = shape.numel();
  if (shape.rank() > 0 && shape.back() % ti->block_elems != 0)
    return invalid_argument("gguf_writer", "tensor '", name, "' rows are not whole ", ti->name, " blocks");
  const uint64_t bytes = static_cast<uint64_t>(n / ti->block_elems) * static_cast<uint64_t>(ti->block_bytes);
  if (data.size() != bytes)
    return invalid_argument("gguf_writer", "tensor '", name, "' has ", data.size(), " bytes; ", shape, " ", ti->name,
                            " needs ", bytes);
  for (const auto& t : tensors_)
    if (t.name == name) return invalid_argument("gguf_writer", "duplicate tensor '", name, "'");
  tensors_.push_back({name, ggml_type, shape, std::vector<uint8_t>(data.begin(), data.end())});
  return Status::ok();
}

std::vector<uint8_t> GgufWriter::bytes() const {
  std::vector<uint8_t> out;
  append<uint32_t>(out, 0x46554747u);
  append<uint32_t>(out, 3);
  append<uint64_t>(out, tensors_.size());
  append<uint64_t>(out, entries_.size());
  for (const auto& e : entries_) {
    append_string(out, e.key);
    out.insert(out.end(), e.value.begin(), e.value.end());
  }
  auto pad = [&](std::vector<uint8_t>& v) { v.resize((v.size() + alignment_ - 1) / alignment_ * alignment_, 0); };
  uint64_t offset = 0;
  for (const auto& t : tensors_) {
    append_string(out, t.name);
    append<uint32_t>(out, static_cast<uint32_t>(t.shape.rank()));
    for (int d = t.shape.rank() - 1; d >= 0; --d) append<uint64_t>(out, static_cast<uint64_t>(t.shape[d]));
    append<uint32_t>(out, t.type);
    append<uint64_t>(out, offset);
    offset = (offset + t.data.size() + alignment_ - 1) / alignment_ * alignment_;
  }
  pad(out);
  for (const auto& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    pad(out);
  }
  return out;
}

Status GgufWriter::write(const std::string& path) const {
  const std::vector<uint8_t> b = bytes();
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) return Status(StatusCode::IoError, "[gguf_writer] cannot create " + path);
  if (std::fwrite(b.data(), 1, b.size(), f.get()) != b.size())
    return Status(StatusCode::IoError, "[gguf_writer] short write to " + path);
  if (std::fflush(f.get()) != 0) return Status(StatusCode::IoError, "[gguf_writer] cannot flush " + path);
  return Status::ok();
}

}  // namespace mlxn::io
