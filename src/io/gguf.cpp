#include "mlxn/io/gguf.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <type_traits>

#include "io/utf8.h"
#include "mlxn/quant/ggml_type.h"
#include "mlxn/quant/quant.h"

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

namespace mlxn::io {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxArrayDepth = 8;         // nested arrays deeper than this are rejected (bounded recursion)
constexpr uint32_t kMaxDims = 4;          // GGML_MAX_DIMS
constexpr size_t kMaxNameBytes = 1024;    // tensor names (ggml itself allows 63)
constexpr uint64_t kMaxAlignment = uint64_t{1} << 30;

Status format_error(const std::string& file, const std::string& what) {
  return Status(StatusCode::FormatError, "[gguf] " + file + ": " + what);
}

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::Bool: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    default: return 0;
  }
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::F64); }

// Reads one scalar of type `t` at p into the value's 64-bit slot (signed types sign-extended).
uint64_t decode_scalar(GgufType t, const uint8_t* p) {
  switch (t) {
    case GgufType::U8: case GgufType::Bool: return p[0];
    case GgufType::I8: return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(p[0])));
    case GgufType::U16: { uint16_t v; std::memcpy(&v, p, 2); return v; }
    case GgufType::I16: { int16_t v; std::memcpy(&v, p, 2); return static_cast<uint64_t>(static_cast<int64_t>(v)); }
    case GgufType::U32: case GgufType::F32: { uint32_t v; std::memcpy(&v, p, 4); return v; }
    case GgufType::I32: { int32_t v; std::memcpy(&v, p, 4); return static_cast<uint64_t>(static_cast<int64_t>(v)); }
    default: { uint64_t v; std::memcpy(&v, p, 8); return v; }
  }
}

bool is_signed_int(GgufType t) {
  return t == GgufType::I8 || t == GgufType::I16 || t == GgufType::I32 || t == GgufType::I64;
}
bool is_unsigned_int(GgufType t) {
  return t == GgufType::U8 || t == GgufType::U16 || t == GgufType::U32 || t == GgufType::U64;
}

template <typename T>
constexpr std::string_view type_label() {
  if constexpr (std::is_same_v<T, bool>) return "bool";
  else if constexpr (std::is_same_v<T, uint8_t>) return "u8";
  else if constexpr (std::is_same_v<T, int8_t>) return "i8";
  else if constexpr (std::is_same_v<T, uint16_t>) return "u16";
  else if constexpr (std::is_same_v<T, int16_t>) return "i16";
  else if constexpr (std::is_same_v<T, uint32_t>) return "u32";
  else if constexpr (std::is_same_v<T, int32_t>) return "i32";
  else if constexpr (std::is_same_v<T, uint64_t>) return "u64";
  else if constexpr (std::is_same_v<T, int64_t>) return "i64";
  else if constexpr (std::is_same_v<T, float>) return "f32";
  else if constexpr (std::is_same_v<T, double>) return "f64";
  else return "string";
}

// "[gguf] value is string, expected u32" -> "value is string, expected u32", to nest inside another message.
std::string strip_op(const std::string& m) {
  const auto pos = m.find("] ");
  return m.size() > 0 && m[0] == '[' && pos != std::string::npos ? m.substr(pos + 2) : m;
}

template <typename T>
struct is_vector : std::false_type {};
template <typename T>
struct is_vector<std::vector<T>> : std::true_type {
  using elem = T;
};

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view names[] = {"u8",  "i8",  "u16",  "i16",    "u32",   "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(names) ? names[i] : std::string_view("invalid");
}

// ---- values ---------------------------------------------------------------------------------------------------

GgufValue GgufValue::at(size_t i) const {
  GgufValue v;
  if (type_ != GgufType::Array || i >= count_) return v;
  v.type_ = elem_;
  if (elem_ == GgufType::String) {
    v.str_ = strings_[i];
  } else if (elem_ == GgufType::Array) {
    v = items_[i];
  } else {
    v.u_ = decode_scalar(elem_, raw_ + i * scalar_size(elem_));
  }
  return v;
}

template <typename T>
Result<T> GgufValue::as() const {
  auto mismatch = [&]() {
    return invalid_argument("gguf", "value is ", gguf_type_name(type_), ", expected ", type_label<T>());
  };
  if constexpr (is_vector<T>::value) {
    using E = typename is_vector<T>::elem;
    if (type_ != GgufType::Array)
      return invalid_argument("gguf", "value is ", gguf_type_name(type_), ", expected an array");
    T out;
    out.reserve(size());
    for (size_t i = 0; i < size(); ++i) {
      auto e = at(i).as<E>();
      if (!e) return invalid_argument("gguf", "array element ", i, ": ", strip_op(e.status().message()));
      out.push_back(std::move(e).value());
    }
    return out;
  } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::string_view>) {
    if (type_ != GgufType::String) return mismatch();
    return T(str_);
  } else if constexpr (std::is_same_v<T, bool>) {
    if (type_ != GgufType::Bool) return mismatch();
    return u_ != 0;
  } else if constexpr (std::is_same_v<T, float>) {
    if (type_ != GgufType::F32) return mismatch();
    return std::bit_cast<float>(static_cast<uint32_t>(u_));
  } else if constexpr (std::is_same_v<T, double>) {
    if (type_ == GgufType::F32) return static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(u_)));
    if (type_ != GgufType::F64) return mismatch();
    return std::bit_cast<double>(u_);
  } else {
    static_assert(std::is_integral_v<T>);
    if (is_unsigned_int(type_)) {
      if (u_ > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        return invalid_argument("gguf", "value ", u_, " does not fit in ", type_label<T>());
      return static_cast<T>(u_);
    }
    if (is_signed_int(type_)) {
      const auto s = static_cast<int64_t>(u_);
      if constexpr (std::is_unsigned_v<T>) {
        if (s < 0 || static_cast<uint64_t>(s) > static_cast<uint64_t>(std::numeric_limits<T>::max()))
          return invalid_argument("gguf", "value ", s, " does not fit in ", type_label<T>());
      } else {
        if (s < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            s > static_cast<int64_t>(std::numeric_limits<T>::max()))
          return invalid_argument("gguf", "value ", s, " does not fit in ", type_label<T>());
      }
      return static_cast<T>(s);
    }
    return mismatch();
  }
}

std::string GgufValue::to_string(size_t max_items) const {
  std::ostringstream os;
  switch (type_) {
    case GgufType::String: os << '"' << printable(str_, 200) << '"'; break;
    case GgufType::Bool: os << (u_ ? "true" : "false"); break;
    case GgufType::F32: os << std::bit_cast<float>(static_cast<uint32_t>(u_)); break;
    case GgufType::F64: os << std::bit_cast<double>(u_); break;
    case GgufType::Array: {
      os << '[';
      const size_t n = std::min(size(), max_items);
      for (size_t i = 0; i < n; ++i) os << (i ? ", " : "") << at(i).to_string(max_items);
      if (size() > n) os << ", ... (" << size() << " " << gguf_type_name(elem_) << " items)";
      os << ']';
      break;
    }
    default:
      if (is_signed_int(type_))
        os << static_cast<int64_t>(u_);
      else
        os << u_;
  }
  return os.str();
}

// ---- parser ---------------------------------------------------------------------------------------------------

class GgufParser {
 public:
  GgufParser(const MappedFile& f) : p_(f.data()), n_(f.size()), name_(f.path()) {}

  Status run(GgufFile& out);

 private:
  Status fail(const std::string& what) const { return format_error(name_, what); }
  Status need(uint64_t bytes, const std::string& what) const {
    if (bytes > n_ - pos_)
      return fail(detail::cat("truncated: ", what, " needs ", bytes, " bytes at offset ", pos_, ", the file has ",
                              n_ - pos_, " left"));
    return Status::ok();
  }
  template <typename T>
  Status read(T& v, const std::string& what) {
    MLXN_TRY(need(sizeof(T), what));
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::ok();
  }
  Status read_string(std::string_view& s, const std::string& what) {
    uint64_t len = 0;
    MLXN_TRY(read(len, "the length of " + what));
    MLXN_TRY(need(len, what + " (" + std::to_string(len) + " bytes)"));
    s = std::string_view(reinterpret_cast<const char*>(p_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return Status::ok();
  }
  Status read_value(GgufType t, GgufValue& v, const std::string& what, int depth);

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  std::string name_;
};

Status GgufParser::read_value(GgufType t, GgufValue& v, const std::string& what, int depth) {
  v.type_ = t;
  if (t == GgufType::String) return read_string(v.str_, what);
  if (t != GgufType::Array) {
    const size_t sz = scalar_size(t);
    MLXN_TRY(need(sz, what));
    v.u_ = decode_scalar(t, p_ + pos_);
    pos_ += sz;
    return Status::ok();
  }
  if (depth >= kMaxArrayDepth) return fail(what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
  uint32_t et = 0;
  MLXN_TRY(read(et, "the element type of " + what));
  if (!valid_type(et)) return fail(detail::cat(what, ": unknown array element type ", et));
  uint64_t count = 0;
  MLXN_TRY(read(count, "the element count of " + what));
  v.elem_ = static_cast<GgufType>(et);
  // Every element takes at least this many bytes, so the count can be checked before anything is allocated.
  const uint64_t min_elem = v.elem_ == GgufType::String ? 8 : v.elem_ == GgufType::Array ? 12 : scalar_size(v.elem_);
  if (count > (n_ - pos_) / min_elem)
    return fail(detail::cat(what, ": ", count, " ", gguf_type_name(v.elem_), " elements cannot fit in the ",
                            n_ - pos_, " bytes left"));
  v.count_ = count;
  if (v.elem_ == GgufType::String) {
    v.strings_.resize(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i)
      MLXN_TRY(read_string(v.strings_[i], detail::cat(what, "[", i, "]")));
  } else if (v.elem_ == GgufType::Array) {
    v.items_.resize(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i)
      MLXN_TRY(read_value(GgufType::Array, v.items_[i], detail::cat(what, "[", i, "]"), depth + 1));
  } else {
    const uint64_t bytes = count * min_elem;
    v.raw_ = p_ + pos_;
    pos_ += static_cast<size_t>(bytes);
  }
  return Status::ok();
}

Status GgufParser::run(GgufFile& out) {
  uint32_t magic = 0;
  MLXN_TRY(read(magic, "the magic"));
  if (magic != kMagic) return fail("not a GGUF file (bad magic)");
  uint32_t version = 0;
  MLXN_TRY(read(version, "the version"));
  if (version == 0x02000000u || version == 0x03000000u) return fail("big-endian GGUF files are not supported");
  if (version == 1) return fail("GGUF v1 is not supported (v2 and v3 are)");
  if (version != 2 && version != 3) return fail(detail::cat("unsupported GGUF version ", version));
  out.version_ = version;
  uint64_t n_tensors = 0, n_kv = 0;
  MLXN_TRY(read(n_tensors, "the tensor count"));
  MLXN_TRY(read(n_kv, "the metadata count"));
  // Smallest possible key/value: 8-byte key length + 4-byte type + 1-byte value; tensor info: 8 + 4 + 4 + 8.
  if (n_kv > (n_ - pos_) / 13) return fail(detail::cat("metadata count ", n_kv, " cannot fit in the file"));
  if (n_tensors > (n_ - pos_) / 24) return fail(detail::cat("tensor count ", n_tensors, " cannot fit in the file"));

  out.kvs_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string_view key;
    MLXN_TRY(read_string(key, detail::cat("the key of metadata entry ", i)));
    if (key.empty()) return fail(detail::cat("metadata entry ", i, " has an empty key"));
    if (!valid_utf8(key)) return fail(detail::cat("metadata key '", printable(key), "' is not valid UTF-8"));
    const std::string k(key);
    if (out.kv_index_.count(k) != 0) return fail("duplicate metadata key '" + printable(key) + "'");
    uint32_t t = 0;
    MLXN_TRY(read(t, "the type of key '" + printable(key) + "'"));
    if (!valid_type(t)) return fail(detail::cat("key '", printable(key), "' has unknown value type ", t));
    GgufKv kv;
    kv.key = k;
    MLXN_TRY(read_value(static_cast<GgufType>(t), kv.value, "key '" + printable(key) + "'", 0));
    out.kv_index_.emplace(k, out.kvs_.size());
    out.kvs_.push_back(std::move(kv));
  }

  if (const GgufValue* a = out.find("general.alignment")) {
    if (a->type() != GgufType::U32)
      return fail(detail::cat("general.alignment is ", gguf_type_name(a->type()), ", expected u32"));
    const uint64_t al = a->u_;
    if (al == 0 || (al & (al - 1)) != 0 || al > kMaxAlignment)
      return fail(detail::cat("general.alignment ", al, " is not a power of two up to 2^30"));
    out.alignment_ = al;
  }

  out.tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    std::string_view name;
    MLXN_TRY(read_string(name, detail::cat("the name of tensor ", i)));
    if (name.empty()) return fail(detail::cat("tensor ", i, " has an empty name"));
    if (name.size() > kMaxNameBytes || !valid_utf8(name))
      return fail(detail::cat("tensor ", i, " name '", printable(name), "' is not valid UTF-8 of at most ",
                              kMaxNameBytes, " bytes"));
    const std::string tname = printable(name);
    GgufTensorInfo info;
    info.name = std::string(name);
    if (out.tensor_index_.count(info.name) != 0) return fail("duplicate tensor '" + tname + "'");
    uint32_t n_dims = 0;
    MLXN_TRY(read(n_dims, "the dimension count of tensor '" + tname + "'"));
    if (n_dims > kMaxDims)
      return fail(detail::cat("tensor '", tname, "' has ", n_dims, " dimensions; at most ", kMaxDims));
    int64_t ne[kMaxDims] = {1, 1, 1, 1};
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t v = 0;
      MLXN_TRY(read(v, "a dimension of tensor '" + tname + "'"));
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return fail(detail::cat("tensor '", tname, "' dimension ", d, " is negative or too large (", v, ")"));
      ne[d] = static_cast<int64_t>(v);
      if (v != 0 && numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / v)
        return fail("tensor '" + tname + "': the element count overflows");
      numel *= v;
    }
    uint32_t gt = 0;
    MLXN_TRY(read(gt, "the type of tensor '" + tname + "'"));
    const auto ti = quant::ggml_type_info(gt);
    if (!ti) return fail(detail::cat("tensor '", tname, "' has unknown ggml type ", gt));
    info.ggml_type = gt;
    info.type_name = ti->name;
    info.dtype = ti->dtype;
    MLXN_TRY(read(info.offset, "the data offset of tensor '" + tname + "'"));
    if (ne[0] % ti->block_elems != 0)
      return fail(detail::cat("tensor '", tname, "' rows of ", ne[0], " elements are not whole ", ti->name,
                              " blocks of ", ti->block_elems));
    const uint64_t blocks = numel / static_cast<uint64_t>(ti->block_elems);
    if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(ti->block_bytes))
      return fail("tensor '" + tname + "': the byte size overflows");
    info.nbytes = blocks * static_cast<uint64_t>(ti->block_bytes);
    info.numel = static_cast<int64_t>(numel);
    std::vector<int64_t> dims;
    for (uint32_t d = n_dims; d-- > 0;) dims.push_back(ne[d]);
    info.shape = Shape(dims.begin(), dims.end());
    out.tensor_index_.emplace(info.name, out.tensors_.size());
    out.tensors_.push_back(std::move(info));
  }

  // Data section: aligned after the tensor infos; every tensor aligned, inside it, and not overlapping another.
  const uint64_t al = out.alignment_;
  const uint64_t data_start = (static_cast<uint64_t>(pos_) + al - 1) / al * al;
  out.data_offset_ = data_start;
  const uint64_t data_size = data_start <= n_ ? n_ - data_start : 0;
  std::vector<size_t> order(out.tensors_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (const auto& t : out.tensors_) {
    const std::string tname = printable(t.name);
    if (t.offset % al != 0)
      return fail(detail::cat("tensor '", tname, "' data offset ", t.offset, " is not a multiple of the alignment ",
                              al));
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      return fail(detail::cat("tensor '", tname, "' data [", t.offset, ", +", t.nbytes,
                              ") runs past the end of the data section (", data_size, " bytes)"));
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return out.tensors_[a].offset < out.tensors_[b].offset ||
           (out.tensors_[a].offset == out.tensors_[b].offset && a < b);
  });
  // Sorted by offset, each tensor must start at or after the furthest end seen so far.
  const GgufTensorInfo* furthest = nullptr;
  for (size_t k : order) {
    const auto& cur = out.tensors_[k];
    if (cur.nbytes == 0) continue;
    if (furthest != nullptr && cur.offset < furthest->offset + furthest->nbytes)
      return fail("tensor '" + printable(cur.name) + "' overlaps the data of tensor '" + printable(furthest->name) + "'");
    if (furthest == nullptr || cur.offset + cur.nbytes > furthest->offset + furthest->nbytes) furthest = &cur;
  }
  return Status::ok();
}

// ---- file -----------------------------------------------------------------------------------------------------

Result<GgufFile> GgufFile::parse(std::shared_ptr<MappedFile> file) {
  if (!file) return invalid_argument("gguf", "no file");
  GgufFile out;
  out.file_ = std::move(file);
  GgufParser parser(*out.file_);
  MLXN_TRY(parser.run(out));
  return out;
}

Result<GgufFile> GgufFile::open(const std::string& path) {
  MLXN_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(path));
  return parse(std::move(mapped));
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

template <typename T>
Result<T> GgufFile::get(std::string_view key) const {
  const GgufValue* v = find(key);
  if (v == nullptr)
    return Status(StatusCode::NotFound, detail::cat("[gguf] ", path(), ": no metadata key '", key, "'"));
  auto r = v->as<T>();
  if (!r) return invalid_argument("gguf", path(), ": key '", key, "': ", strip_op(r.status().message()));
  return r;
}

std::string GgufFile::architecture() const {
  auto r = get<std::string>("general.architecture");
  return r ? r.value() : std::string();
}

const GgufTensorInfo* GgufFile::tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Result<std::span<const uint8_t>> GgufFile::tensor_data(std::string_view name) const {
  const GgufTensorInfo* t = tensor(name);
  if (t == nullptr)
    return Status(StatusCode::NotFound, detail::cat("[gguf] ", path(), ": no tensor '", printable(name), "'"));
  // Checked at parse time: the range lies inside the file.
  return std::span<const uint8_t>(file_->data() + data_offset_ + t->offset, static_cast<size_t>(t->nbytes));
}

Result<Buffer> GgufFile::load_tensor(std::string_view name, const Device& device) const {
  MLXN_ASSIGN_OR_RETURN(auto bytes, tensor_data(name));
  const GgufTensorInfo& t = *tensor(name);
  if (!t.dtype)
    return unsupported("gguf", path(), ": tensor '", printable(name), "' has ggml type ", t.type_name,
                       " which this library does not decode");
  const DType dt = *t.dtype;
  if (device.backend() == Backend::Cpu) {
    // Kernels read elements (and the f16/f32 fields of blocks) directly: wrap in place only when aligned for them.
    const size_t need_align = is_quantized(dt) ? (dt == DType::Q8_K ? 4 : 2) : dtype_size(dt);
    if (reinterpret_cast<uintptr_t>(bytes.data()) % need_align == 0)
      return Buffer::wrap(device, const_cast<uint8_t*>(bytes.data()), bytes.size(), dt, t.shape, file_);
  }
  MLXN_ASSIGN_OR_RETURN(Buffer buf, device.alloc(dt, t.shape));
  MLXN_TRY(buf.upload(bytes.data(), bytes.size()));
  return buf;
}

Result<std::vector<float>> GgufFile::dequantize_tensor(std::string_view name) const {
  MLXN_ASSIGN_OR_RETURN(auto bytes, tensor_data(name));
  const GgufTensorInfo& t = *tensor(name);
  if (!t.dtype)
    return unsupported("gguf", path(), ": tensor '", printable(name), "' has ggml type ", t.type_name,
                       " which this library does not decode");
  std::vector<float> out;
  try {
    out.resize(static_cast<size_t>(t.numel));
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::OutOfMemory, detail::cat("[gguf] tensor '", printable(name), "' of ", t.numel,
                                                       " elements does not fit in host memory as f32"));
  }
  MLXN_TRY(quant::dequantize(*t.dtype, bytes.data(), bytes.size(), out.data(), t.numel));
  return out;
}

// The typed accessors the API offers.
#define MLXN_GGUF_GET(T)                                  \
  template Result<T> GgufValue::as<T>() const;            \
  template Result<std::vector<T>> GgufValue::as<std::vector<T>>() const; \
  template Result<T> GgufFile::get<T>(std::string_view) const; \
  template Result<std::vector<T>> GgufFile::get<std::vector<T>>(std::string_view) const;
MLXN_GGUF_GET(bool)
MLXN_GGUF_GET(uint8_t)
MLXN_GGUF_GET(int8_t)
MLXN_GGUF_GET(uint16_t)
MLXN_GGUF_GET(int16_t)
MLXN_GGUF_GET(uint32_t)
MLXN_GGUF_GET(int32_t)
MLXN_GGUF_GET(uint64_t)
MLXN_GGUF_GET(int64_t)
MLXN_GGUF_GET(float)
MLXN_GGUF_GET(double)
MLXN_GGUF_GET(std::string)
MLXN_GGUF_GET(std::string_view)
#undef MLXN_GGUF_GET

}  // namespace mlxn::io
