// libFuzzer target: the safetensors reader (header JSON, dtypes, offsets) and the config.json / MLX quantization
// config parser on arbitrary bytes. Every input must parse or fail with a status.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mlxn/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mlxn;
  auto f = io::SafetensorsFile::parse(io::MappedFile::borrow(data, size, "fuzz.safetensors"));
  if (f) {
    for (const auto& t : f->tensors()) {
      auto bytes = f->tensor_data(t.name);
      if (bytes && !bytes->empty()) {
        volatile uint8_t sink = (*bytes)[0] ^ (*bytes)[bytes->size() - 1];
        (void)sink;
      }
      if (t.numel <= (1 << 16)) (void)f->dequantize_tensor(t.name);
    }
  }
  // The same bytes as a config.json.
  auto c = io::JsonConfig::parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.json");
  if (c) {
    (void)c->get<int64_t>("hidden_size");
    (void)c->get<std::vector<std::string>>("architectures");
    auto q = io::MlxQuantConfig::from_config(*c);
    if (q && *q) (void)(*q)->spec_for("model.layers.0.mlp.down_proj.weight");
  }
  return 0;
}
