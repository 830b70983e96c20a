// mlxn logits --model FILE.gguf|DIR --ids "1,2,3" --out LOGITS.f32 [--device cpu|cuda[:N]] [--dtype f32|f16|bf16]
//             [--kv-dtype f32|f16|bf16] [--chunk N] [--all] [--greedy N --greedy-out IDS.txt]
// For parity runs against another implementation (tests/models/parity/run_parity.py): prefills the token ids and
// writes the last position's logits as raw little-endian f32 [n_vocab]; with --all, every position's logits
// [n_ids, n_vocab] (the ids are then fed one at a time, so this also runs the single-token path at every KV
// length); with --greedy N, then generates N tokens
// greedily (captured decode graph, argmax on the device, no stop tokens) and writes their ids, comma-separated.
// --dtype sets the activation dtype (default: the model's, f32 on the CPU), --kv-dtype the KV cache's (default f16,
// bf16 with bf16 activations).
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "mlxn/models/generate.h"
#include "mlxn/models/model.h"
#include "model_cli.h"

namespace mlxn::cli {
namespace {

constexpr const char* kUsage =
    "usage: mlxn logits --model FILE.gguf|DIR --ids \"1,2,3\" --out LOGITS.f32 [--device cpu|cuda[:N]] "
    "[--dtype f32|f16|bf16] [--kv-dtype f32|f16|bf16] [--chunk N] [--all] [--greedy N --greedy-out IDS.txt]";

}  // namespace

int cmd_logits(const Args& args) {
  std::string model_spec, ids_text, out_path, greedy_out, device = default_device(), dtype, kv_dtype;
  int64_t greedy = 0;
  bool all = false;
  models::ModelOptions mo;
  mo.max_chunk = 128;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool v = i + 1 < args.size();
    bool ok = true;
    if (a == "--model" && v)
      model_spec = args[++i];
    else if (a == "--ids" && v)
      ids_text = args[++i];
    else if (a == "--out" && v)
      out_path = args[++i];
    else if (a == "--device" && v)
      device = args[++i];
    else if (a == "--dtype" && v)
      dtype = args[++i];
    else if (a == "--kv-dtype" && v)
      kv_dtype = args[++i];
    else if (a == "--greedy-out" && v)
      greedy_out = args[++i];
    else if (a == "--greedy")
      ok = v && parse_num(args[++i], greedy) && greedy >= 0;
    else if (a == "--chunk")
      ok = v && parse_num(args[++i], mo.max_chunk) && mo.max_chunk > 0;
    else if (a == "--all")
      all = true;
    else if (a == "-h" || a == "--help")
      return std::printf("%s\n", kUsage), 0;
    else
      return fail("logits", "unknown argument '" + a + "'\n" + kUsage);
    if (!ok) return fail("logits", "bad or missing value for " + a);
  }
  if (model_spec.empty() || ids_text.empty() || out_path.empty())
    return fail("logits", std::string("--model, --ids and --out are required\n") + kUsage);
  if (greedy > 0 && greedy_out.empty()) return fail("logits", "--greedy needs --greedy-out FILE");
  auto float_type = [](const std::string& n) -> std::optional<DType> {
    if (n == "f32") return DType::F32;
    if (n == "f16") return DType::F16;
    if (n == "bf16") return DType::BF16;
    return std::nullopt;
  };
  if (!dtype.empty() && !(mo.act_dtype = float_type(dtype)))
    return fail("logits", "bad --dtype '" + dtype + "': f32, f16 or bf16");
  if (!kv_dtype.empty() && !(mo.kv_dtype = float_type(kv_dtype)))
    return fail("logits", "bad --kv-dtype '" + kv_dtype + "': f32, f16 or bf16");

  auto path = resolve_model(model_spec);
  if (!path) return fail("logits", path.status().message());
  auto ids = parse_ids(ids_text, "logits", "--ids");
  if (!ids) return fail("logits", ids.status().to_string());
  auto dev = open_device(device, "logits");
  if (!dev) return fail("logits", dev.status().to_string());
  mo.max_context = static_cast<int64_t>(ids->size()) + greedy + 1;
  auto model = load_model(*path, *dev, mo, /*quiet=*/true);
  if (!model) return fail("logits", model.status().to_string());
  auto& m = *model.value();

  std::vector<float> logits;
  if (all) {
    for (size_t i = 0; i < ids->size(); ++i) {
      if (Status st = m.prefill(std::span<const int32_t>(ids->data() + i, 1)); !st.is_ok())
        return fail("logits", st.to_string());
      auto l = m.read_logits();
      if (!l) return fail("logits", l.status().to_string());
      logits.insert(logits.end(), l->begin(), l->end());
    }
  } else {
    if (Status st = m.prefill(*ids); !st.is_ok()) return fail("logits", st.to_string());
    auto l = m.read_logits();
    if (!l) return fail("logits", l.status().to_string());
    logits = std::move(l).value();
  }
  {
    std::ofstream out(out_path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * 4));
    if (!out) return fail("logits", "cannot write " + out_path);
  }
  if (greedy > 0) {
    // Generation continues from the prefill (its logits give the first token).
    m.reset();
    models::GenerateOptions go;
    go.n_predict = greedy;
    go.sampling.temperature = 0.0f;
    auto r = models::generate(m, *ids, go);
    if (!r) return fail("logits", r.status().to_string());
    std::ofstream out(greedy_out);
    for (size_t i = 0; i < r->tokens.size(); ++i) out << (i ? "," : "") << r->tokens[i];
    out << "\n";
    if (!out) return fail("logits", "cannot write " + greedy_out);
  }
  std::fprintf(stderr, "logits: %s, %zu ids on %s (activations %s): wrote %zu logits to %s\n",
               m.config().summary().c_str(), ids->size(), dev->properties().name.c_str(),
               std::string(dtype_name(m.act_dtype())).c_str(), logits.size(), out_path.c_str());
  return 0;
}

}  // namespace mlxn::cli
