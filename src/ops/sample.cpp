#include "mlxn/ops/sample.h"

#include <cmath>

#include "kernels/sample.h"
#include "ops/common.h"

namespace mlxn::ops {

using detail::check_buffer;
using detail::check_contiguous;

size_t sample_workspace_bytes(int64_t rows, int64_t vocab) {
  return static_cast<size_t>(kern::sample_layout(rows, vocab).bytes);
}

Status sample(Session& s, const Buffer& logits, const Buffer& history, const Buffer& tokens, const Buffer& logprobs,
              const Buffer& workspace, const SampleParams& p) {
  constexpr std::string_view op = "sample";
  MLXN_TRY(check_buffer(op, "logits", s, logits));
  MLXN_TRY(detail::check_float(op, "logits", logits));
  MLXN_TRY(check_contiguous(op, "logits", logits));
  if (logits.rank() < 1 || logits.rank() > 2) return invalid_argument(op, "logits must be [rows, vocab] or [vocab]");
  const int64_t vocab = logits.shape().back();
  const int64_t rows = logits.rank() == 2 ? logits.shape()[0] : 1;
  if (vocab < 1 || vocab > INT32_MAX) return invalid_argument(op, "vocab ", vocab, " must be in [1, 2^31)");
  if (rows > INT32_MAX) return invalid_argument(op, rows, " rows exceed int32");

  MLXN_TRY(check_buffer(op, "tokens", s, tokens));
  MLXN_TRY(check_contiguous(op, "tokens", tokens));
  if (tokens.dtype() != DType::I32) return unsupported(op, "tokens has dtype ", tokens.dtype(), "; expected i32");
  if (tokens.numel() != rows) return invalid_argument(op, "tokens has ", tokens.numel(), " elements, expected ", rows);
  if (logprobs.valid()) {
    MLXN_TRY(check_buffer(op, "logprobs", s, logprobs));
    MLXN_TRY(check_contiguous(op, "logprobs", logprobs));
    if (logprobs.dtype() != DType::F32)
      return unsupported(op, "logprobs has dtype ", logprobs.dtype(), "; expected f32");
    if (logprobs.numel() != rows)
      return invalid_argument(op, "logprobs has ", logprobs.numel(), " elements, expected ", rows);
  }
  int64_t hist_len = 0;
  if (history.valid()) {
    MLXN_TRY(check_buffer(op, "history", s, history));
    MLXN_TRY(check_contiguous(op, "history", history));
    if (history.dtype() != DType::I32) return unsupported(op, "history has dtype ", history.dtype(), "; expected i32");
    if (rows > 0 && history.numel() % rows != 0)
      return invalid_argument(op, "history has ", history.numel(), " elements, not a multiple of ", rows, " rows");
    hist_len = rows > 0 ? history.numel() / rows : 0;
    if (history.rank() == 2 && history.shape()[0] != rows)
      return invalid_argument(op, "history has ", history.shape()[0], " rows, expected ", rows);
  }
  const size_t ws_need = sample_workspace_bytes(rows, vocab);
  MLXN_TRY(check_buffer(op, "workspace", s, workspace));
  MLXN_TRY(check_contiguous(op, "workspace", workspace));
  if (workspace.nbytes() < ws_need)
    return invalid_argument(op, "workspace has ", workspace.nbytes(), " bytes, expected at least ", ws_need,
                            " (sample_workspace_bytes)");
  // Outputs and workspace must not overlap anything else.
  const Buffer* all[] = {&logits, &history, &tokens, &logprobs, &workspace};
  for (int i = 2; i < 5; ++i)
    for (int j = 0; j < 5; ++j)
      if (i != j && all[i]->valid() && all[j]->valid() && all[i]->range().overlaps(all[j]->range()))
        return invalid_argument(op, i == 2 ? "tokens" : i == 3 ? "logprobs" : "workspace", " overlaps another operand");

  if (std::isnan(p.temperature)) return invalid_argument(op, "temperature is NaN");
  if (p.top_k < 0) return invalid_argument(op, "top_k ", p.top_k, " must be >= 0");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) return invalid_argument(op, "top_p ", p.top_p, " must be in (0, 1]");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) return invalid_argument(op, "min_p ", p.min_p, " must be in [0, 1]");
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty))
    return invalid_argument(op, "repetition_penalty ", p.repetition_penalty, " must be finite and > 0");
  if (!std::isfinite(p.presence_penalty) || !std::isfinite(p.frequency_penalty))
    return invalid_argument(op, "presence_penalty and frequency_penalty must be finite");
  MLXN_TRY(detail::check_step_slot(op, p.temperature_slot));
  MLXN_TRY(detail::check_step_slot(op, p.seed_slot));
  MLXN_TRY(detail::check_step_slot(op, p.step_slot));

  kern::SampleParams kp;
  kp.logits = logits.data();
  kp.tl = logits.dtype();
  kp.rows = rows;
  kp.vocab = vocab;
  kp.history = hist_len > 0 ? history.data_as<int32_t>() : nullptr;
  kp.hist_len = hist_len;
  kp.tokens = tokens.data_as<int32_t>();
  kp.logprobs = logprobs.valid() ? logprobs.data_as<float>() : nullptr;
  kp.temperature = p.temperature;
  kp.temperature_slot = p.temperature_slot;
  kp.top_k = p.top_k >= vocab ? 0 : p.top_k;
  kp.top_p = p.top_p;
  kp.min_p = p.min_p;
  kp.repetition_penalty = p.repetition_penalty;
  kp.presence_penalty = p.presence_penalty;
  kp.frequency_penalty = p.frequency_penalty;
  kp.seed_lo = static_cast<uint32_t>(p.seed);
  kp.seed_hi = static_cast<uint32_t>(p.seed >> 32);
  kp.seed_slot = p.seed_slot;
  kp.step = p.step;
  kp.step_slot = p.step_slot;
  kp.ws = workspace.data();
  MLXN_TRY(s.device().kernels().require(op, KernelRegistry::key({kp.tl})));
  if (rows == 0) return Status::ok();
  MemRange reads[2] = {logits.range()};
  size_t nr = 1;
  if (kp.history) reads[nr++] = history.range();
  MemRange writes[3] = {tokens.range(), workspace.range()};
  size_t nw = 2;
  if (kp.logprobs) writes[nw++] = logprobs.range();
  return s.record(op, std::span<const MemRange>(reads, nr), std::span<const MemRange>(writes, nw),
                  [kp](const ExecContext& ctx) { return MLXN_BACKEND_CALL(sample, kp, ctx); });
}

}  // namespace mlxn::ops
