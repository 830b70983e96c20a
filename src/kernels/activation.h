// Plain parameter struct of the activation kernels, and the backend entry points.
#pragma once

#include <cstdint>

#include "kernels/exec.h"

namespace mlxn::kern {

// Element functions (f32 arithmetic):
//   Silu      x * sigmoid(x)
//   GeluErf   0.5 x (1 + erf(x / sqrt(2)))                      (exact GELU; HF "gelu", ggml_gelu_erf)
//   GeluTanh  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))   (HF "gelu_pytorch_tanh", ggml_gelu)
//   Sigmoid   1 / (1 + exp(-x))
//   Softcap   cap * tanh(x / cap)                               (unary only)
enum class ActOp : uint8_t { Silu, GeluErf, GeluTanh, Sigmoid, Softcap };

// Unary (u == null): y[i] = f(x[i]) over rows x cols.
// Gated (u != null): y[r, c] = f(x[r * x_stride + c]) * u[r * u_stride + c] (x is the gate).
// y is contiguous rows x cols; x and u share dtype tx.
struct ActivationParams {
  const void* x = nullptr;
  const void* u = nullptr;
  void* y = nullptr;
  DType tx = DType::F32, ty = DType::F32;
  ActOp op = ActOp::Silu;
  int64_t rows = 0, cols = 0;
  int64_t x_stride = 0, u_stride = 0;
  float cap = 1.0f;
  const char* name = "activation";  // the public op's name (registry key and messages); a string literal
};

}  // namespace mlxn::kern

namespace mlxn::cpu {
Status activation(const kern::ActivationParams& p, const ExecContext& ctx);
// The element function in double (the reference's arithmetic; `cap` only for Softcap).
double act_value(kern::ActOp op, double x, double cap = 0.0);
}
namespace mlxn::cuda {
Status activation(const kern::ActivationParams& p, const ExecContext& ctx);
}
