#include "mlxn/models/generate.h"

#include <algorithm>
#include <chrono>
#include <mutex>

namespace mlxn::models {
namespace {

std::mutex g_factory_mutex;
TokenizerFactory& factory() {
  static TokenizerFactory f;
  return f;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

void set_tokenizer_factory(TokenizerFactory f) {
  std::lock_guard<std::mutex> lock(g_factory_mutex);
  factory() = std::move(f);
}

Result<std::unique_ptr<Tokenizer>> load_tokenizer(const std::string& path) {
  TokenizerFactory f;
  {
    std::lock_guard<std::mutex> lock(g_factory_mutex);
    f = factory();
  }
  if (!f) return unsupported("tokenizer", "no tokenizer in this build: pass token ids (--prompt-ids)");
  return f(path);
}

Result<GenerateResult> generate(Model& model, std::span<const int32_t> prompt, const GenerateOptions& o) {
  if (prompt.empty()) return invalid_argument("generate", "empty prompt");
  if (o.n_predict < 0) return invalid_argument("generate", "n_predict ", o.n_predict, " is negative");
  GenerateResult r;
  r.n_prompt = static_cast<int64_t>(prompt.size());
  if (o.n_predict == 0) return r;
  const int64_t room = model.capacity() - model.position() - static_cast<int64_t>(prompt.size());
  if (room < o.n_predict)
    return error(StatusCode::OutOfRange, "generate", "prompt of ", prompt.size(), " + ", o.n_predict,
                 " tokens exceeds the context of ", model.capacity(), " (position ", model.position(), ")");
  auto emit = [&](int32_t t) {
    r.tokens.push_back(t);
    const bool stop = std::find(o.stop_ids.begin(), o.stop_ids.end(), t) != o.stop_ids.end();
    const bool go_on = o.on_token ? o.on_token(t) : true;
    return !stop && go_on && static_cast<int64_t>(r.tokens.size()) < o.n_predict;
  };

  const auto t0 = std::chrono::steady_clock::now();
  MLXN_TRY(model.prefill(prompt, o.prefill_chunk));
  ops::SampleParams sp = o.sampling;
  sp.step = 0;
  sp.step_slot = -1;
  MLXN_TRY(model.sample(sp));
  MLXN_ASSIGN_OR_RETURN(int32_t tok, model.read_token());
  r.prompt_seconds = seconds_since(t0);
  if (!emit(tok)) return r;

  const auto t1 = std::chrono::steady_clock::now();
  if (o.use_graph) {
    // Captured once (not timed as prompt work, but inside the generation time: it is paid once per run).
    MLXN_ASSIGN_OR_RETURN(Graph g, model.capture_decode(&o.sampling));
    for (uint32_t step = 1;; ++step) {
      MLXN_TRY(model.replay_decode(g, step));
      MLXN_ASSIGN_OR_RETURN(tok, model.read_token());
      if (!emit(tok)) break;
    }
  } else {
    for (uint32_t step = 1;; ++step) {
      MLXN_TRY(model.decode(tok));
      sp.step = step;
      MLXN_TRY(model.sample(sp));
      MLXN_ASSIGN_OR_RETURN(tok, model.read_token());
      if (!emit(tok)) break;
    }
  }
  r.gen_seconds = seconds_since(t1);
  return r;
}

}  // namespace mlxn::models
