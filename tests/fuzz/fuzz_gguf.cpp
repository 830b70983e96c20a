// libFuzzer target: the GGUF reader on arbitrary bytes. Every input must parse or fail with a status; for files
// that parse, every metadata value is read through the typed accessors and every small tensor dequantized.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mlxn/io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mlxn;
  auto f = io::GgufFile::parse(io::MappedFile::borrow(data, size, "fuzz.gguf"));
  if (!f) return 0;
  for (const auto& kv : f->metadata()) {
    (void)kv.value.to_string(4);
    (void)f->get<uint32_t>(kv.key);
    (void)f->get<int64_t>(kv.key);
    (void)f->get<double>(kv.key);
    (void)f->get<std::string>(kv.key);
    if (kv.value.is_array() && kv.value.size() < 4096) {
      (void)f->get<std::vector<std::string>>(kv.key);
      (void)f->get<std::vector<int32_t>>(kv.key);
      (void)f->get<std::vector<float>>(kv.key);
    }
  }
  for (const auto& t : f->tensors()) {
    auto bytes = f->tensor_data(t.name);
    if (bytes && !bytes->empty()) {
      volatile uint8_t sink = (*bytes)[0] ^ (*bytes)[bytes->size() - 1];  // the range must be readable
      (void)sink;
    }
    if (t.numel <= (1 << 16)) (void)f->dequantize_tensor(t.name);
  }
  return 0;
}
