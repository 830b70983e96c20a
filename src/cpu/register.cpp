// The CPU backend runs every dtype combination of every op; this lists them for the registry.
#include <string>

#include "mlxn/core/kernel_registry.h"

namespace mlxn::cpu {

void register_kernels(KernelRegistry& r) {
  const DType floats[] = {DType::F32, DType::F16, DType::BF16};
  for (DType a : floats) {
    for (DType b : floats) {
      for (DType c : floats) {
        r.add("add", KernelRegistry::key({a, b, c}));
        r.add("mul", KernelRegistry::key({a, b, c}));
        r.add("rms_norm", KernelRegistry::key({a, b, c}));
      }
      r.add("scale", KernelRegistry::key({a, b}));
      r.add("add_scalar", KernelRegistry::key({a, b}));
      r.add("cast", KernelRegistry::key({a, b}));
      r.add("copy", KernelRegistry::key({a, b}));
      r.add("matmul", KernelRegistry::key({a, b}));  // (w, x)
    }
  }
  // Quantized matmul: every weight format against every activation dtype.
  const DType weights[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,   DType::Q2_K, DType::Q3_K,
                           DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS, DType::MXFP4};
  for (DType x : floats) {
    for (DType w : weights) r.add("qmatmul", KernelRegistry::key({w, x}));
    for (int bits : {2, 3, 4, 5, 6, 8})
      r.add("qmatmul", "affine" + std::to_string(bits) + "." + std::string(dtype_name(x)));
  }
  // Expert-routed matmul (src/cpu/matmul_experts.cpp): (w, x) with w a GGML weight format or a float type.
  for (DType x : floats) {
    for (DType w : weights) r.add("matmul_experts", KernelRegistry::key({w, x}));
    for (DType w : floats) r.add("matmul_experts", KernelRegistry::key({w, x}));
  }
  // Row dequantizer (dequantize, dequantize_affine, embedding_affine): every weight format to every float type.
  for (DType o : floats) {
    for (DType w : weights) r.add("dequantize", KernelRegistry::key({w, o}));
    for (int bits : {2, 3, 4, 5, 6, 8})
      r.add("dequantize", "affine" + std::to_string(bits) + "." + std::string(dtype_name(o)));
  }
  // Norm, activation and softmax families (issue 6, part A): (x, w, y) norms, (x, y) for the rest.
  for (DType a : floats) {
    for (DType c : floats) {
      for (DType b : floats) {
        for (const char* op : {"add_rms_norm", "rms_norm_add", "group_rms_norm", "layer_norm"})
          r.add(op, KernelRegistry::key({a, b, c}));
      }
      // add_rms_norm of an f16 / bf16 block output r into an f32 stream: keys (x, w, y, r) (kern::norm_key).
      if (a == DType::F32)
        for (DType w : floats)
          for (DType rt : {DType::F16, DType::BF16}) r.add("add_rms_norm", KernelRegistry::key({a, w, c, rt}));
      for (const char* op : {"l2_norm", "silu", "gelu", "gelu_tanh", "sigmoid", "softcap", "swiglu", "geglu",
                             "geglu_tanh", "sigmoid_mul", "softmax", "log_softmax"})
        r.add(op, KernelRegistry::key({a, c}));
    }
  }
  // Attention family (src/cpu/attention.cpp): keys "q.kv.out.d<D>" for the head dims the CUDA build knows plus 32
  // (small test cases); kv_cache_write keys "k.v.cache". u8: fp8 e4m3 caches with scales.
  for (DType kv : {DType::F16, DType::BF16, DType::U8}) {
    for (DType a : floats) {
      for (DType b : floats) {
        r.add("kv_cache_write", KernelRegistry::key({a, b, kv}));
        for (int d : {32, 64, 80, 96, 128, 192, 256, 512})
          r.add("attention", KernelRegistry::key({a, kv, b}) + ".d" + std::to_string(d));
      }
    }
  }
  // q8_0 / q4_0 caches (split GGML blocks, include/mlxn/ops/attention.h): head dims that are multiples of 32.
  for (DType kv : {DType::Q8_0, DType::Q4_0}) {
    for (DType a : floats) {
      for (DType b : floats) {
        r.add("kv_cache_write", KernelRegistry::key({a, b, kv}));
        for (int d : {32, 64, 96, 128, 192, 256, 512})
          r.add("attention", KernelRegistry::key({a, kv, b}) + ".d" + std::to_string(d));
      }
    }
  }
  // Reductions, MoE routing and sampling (issue 6, part C): keyed by the input dtype (and the output's where it
  // is a float).
  for (DType a : floats) {
    for (const char* op : {"argmax", "topk", "argsort", "sample", "moe_route"}) r.add(op, KernelRegistry::key({a}));
    for (DType b : floats) {
      for (const char* op : {"row_sum", "cumsum", "moe_weighted_reduce"}) r.add(op, KernelRegistry::key({a, b}));
    }
  }
  r.add("moe_expert_lists", "i32");
  for (int t = 0; t < static_cast<int>(DType::Count_); ++t) {
    const auto d = static_cast<DType>(t);
    r.add("copy", KernelRegistry::key({d, d}));
  }
  // ops-b: RoPE (x = out dtype), layout ops (every dtype; permute moves single elements, so plain types only) and
  // the embedding lookup (float or GGML block-type table, float out).
  for (DType a : floats) {
    r.add("rope", KernelRegistry::key({a}));
    r.add("rope_head_norm", KernelRegistry::key({a}));
  }
  for (int t = 0; t < static_cast<int>(DType::Count_); ++t) {
    const auto d = static_cast<DType>(t);
    const std::string key = KernelRegistry::key({d});
    if (!is_quantized(d)) r.add("permute", key);
    for (const char* op : {"concat", "split", "gather_rows", "scatter_rows"}) r.add(op, key);
    if (is_compute_float(d) || is_quantized(d))
      for (DType o : floats) r.add("embedding", KernelRegistry::key({d, o}));
  }
}

}  // namespace mlxn::cpu
