// Runners of the MoE routing tests (CPU against references written in the tests; CUDA against the CPU backend).
#pragma once

#include "reduce_cases.h"

namespace mlxn::test {

struct RouteRun {
  std::vector<int32_t> ids;
  std::vector<float> w;
  Status status;
};

inline RouteRun run_route(const Device& dev, DType t, int64_t tokens, int e, const std::vector<float>& logits,
                          const std::vector<float>* bias, const std::vector<float>* scale,
                          const ops::MoeRouteParams& p) {
  RouteRun out;
  auto s = Session::create(dev).value();
  auto lb = upload_at(dev, t, {tokens, e}, logits, 1);
  Buffer bb, sb;
  if (bias) bb = make_buffer(dev, DType::F32, {e}, *bias);
  if (scale) sb = make_buffer(dev, DType::F32, {e}, *scale);
  auto ids = poisoned(dev, DType::I32, {tokens, p.k});
  auto w = poisoned(dev, DType::F32, {tokens, p.k});
  out.status = ops::moe_route(s, lb, bb, sb, ids, w, p);
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.ids = read_i32(ids);
  out.w = read_f32(w);
  return out;
}

struct ListsRun {
  std::vector<int32_t> counts, offsets, perm;
  Status status;
};

inline ListsRun run_lists(const Device& dev, int64_t tokens, int k, int e, const std::vector<int32_t>& ids) {
  ListsRun out;
  auto s = Session::create(dev).value();
  auto ib = upload_i32(dev, {tokens, k}, ids);
  auto counts = poisoned(dev, DType::I32, {e});
  auto offsets = poisoned(dev, DType::I32, {e + 1});
  auto perm = poisoned(dev, DType::I32, {tokens * k});
  out.status = ops::moe_expert_lists(s, ib, e, counts, offsets, perm);
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.counts = read_i32(counts);
  out.offsets = read_i32(offsets);
  out.perm = read_i32(perm);
  return out;
}

inline IndexRun run_weighted_reduce(const Device& dev, DType tx, DType to, int64_t tokens, int k, int64_t dim,
                                    const std::vector<float>& x, const std::vector<float>& w, size_t offset) {
  IndexRun out;
  auto s = Session::create(dev).value();
  auto xb = upload_at(dev, tx, {tokens, k, dim}, x, offset);
  auto wb = make_buffer(dev, DType::F32, {tokens, k}, w);
  auto ob = poisoned(dev, to, {tokens, dim});
  out.status = ops::moe_weighted_reduce(s, xb, wb, ob);
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.val = read_f32(ob);
  return out;
}

// moe_reduce_norm_add: x [tokens, k, dim] in tx, w f32, norm weight f32 (empty: none), residual and out in `to`
// (in_place: out is the residual buffer).
inline IndexRun run_reduce_norm_add(const Device& dev, DType tx, DType to, int64_t tokens, int k, int64_t dim,
                                    const std::vector<float>& x, const std::vector<float>& w,
                                    const std::vector<float>& nw, const std::vector<float>& r, bool in_place,
                                    const ops::RmsNormParams& p) {
  IndexRun out;
  auto s = Session::create(dev).value();
  auto xb = upload_at(dev, tx, {tokens, k, dim}, x, 1);
  auto wb = make_buffer(dev, DType::F32, {tokens, k}, w);
  Buffer nb;
  if (!nw.empty()) nb = make_buffer(dev, DType::F32, {dim}, nw);
  auto rb = make_buffer(dev, to, {tokens, dim}, r);
  auto ob = in_place ? rb : poisoned(dev, to, {tokens, dim});
  out.status = ops::moe_reduce_norm_add(s, xb, wb, nb, rb, ob, p);
  if (out.status.is_ok()) out.status = s.finish();
  if (!out.status.is_ok()) return out;
  out.val = read_f32(ob);
  return out;
}

// Router configurations of real models (see include/mlxn/ops/moe.h).
struct RouteConfig {
  const char* name;
  int e, k;
  ops::MoeRouteParams p;
  bool bias, scale;
};

inline std::vector<RouteConfig> route_configs() {
  std::vector<RouteConfig> v;
  v.reserve(8);  // (growing the vector trips a false -Wstringop-overflow in GCC 13)
  auto cfg = [](int k, ops::MoeScoring sc, bool after, bool renorm, float rs) {
    ops::MoeRouteParams p;
    p.k = k;
    p.scoring = sc;
    p.softmax_after_topk = after;
    p.renormalize = renorm;
    p.routed_scale = rs;
    return p;
  };
  v.push_back({"mixtral", 8, 2, cfg(2, ops::MoeScoring::Softmax, false, true, 1.0f), false, false});
  v.push_back({"qwen2moe", 60, 4, cfg(4, ops::MoeScoring::Softmax, false, false, 1.0f), false, false});
  v.push_back({"qwen3moe", 128, 8, cfg(8, ops::MoeScoring::Softmax, false, true, 1.0f), false, false});
  v.push_back({"deepseek-v3", 256, 8, cfg(8, ops::MoeScoring::Sigmoid, false, true, 2.5f), true, false});
  v.push_back({"gpt-oss", 32, 4, cfg(4, ops::MoeScoring::Softmax, true, false, 1.0f), false, false});
  v.push_back({"llama4", 16, 1, cfg(1, ops::MoeScoring::Sigmoid, false, false, 1.0f), false, false});
  v.push_back({"gemma-scale", 128, 8, cfg(8, ops::MoeScoring::Softmax, true, false, 1.0f), false, true});
  v.push_back({"wide", 512, 32, cfg(32, ops::MoeScoring::Softmax, false, true, 1.0f), true, true});
  return v;
}

}  // namespace mlxn::test
