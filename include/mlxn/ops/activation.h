// Activations and gated linear units over f32 / f16 / bf16 (f32 arithmetic, one rounding to y's dtype; y's dtype
// may differ from the input's). Inputs and y are contiguous; y may be exactly an input (in place) but not overlap one
// partially.
//
// Conventions (as Hugging Face transformers and ggml):
//   silu(x)      = x * sigmoid(x) = x / (1 + exp(-x))
//   gelu(x)      = 0.5 x (1 + erf(x / sqrt(2)))                      exact GELU (HF "gelu", ggml_gelu_erf)
//   gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))   (HF "gelu_pytorch_tanh", ggml_gelu), no clamp
//   sigmoid(x)   = 1 / (1 + exp(-x))
//   softcap(x)   = cap * tanh(x / cap)                               (Gemma 2 logits / attention scores)
#pragma once

#include <cstdint>

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"

namespace mlxn::ops {

enum class Activation : uint8_t { Silu, Gelu, GeluTanh, Sigmoid };

// y = act(x), y of x's shape.
Status activation(Session& s, Activation act, const Buffer& x, const Buffer& y);
inline Status silu(Session& s, const Buffer& x, const Buffer& y) { return activation(s, Activation::Silu, x, y); }
inline Status gelu(Session& s, const Buffer& x, const Buffer& y) { return activation(s, Activation::Gelu, x, y); }
inline Status gelu_tanh(Session& s, const Buffer& x, const Buffer& y) {
  return activation(s, Activation::GeluTanh, x, y);
}
inline Status sigmoid(Session& s, const Buffer& x, const Buffer& y) { return activation(s, Activation::Sigmoid, x, y); }

// y = cap * tanh(x / cap), cap finite and > 0.
Status softcap(Session& s, const Buffer& x, const Buffer& y, float cap);

// Gated linear unit with two tensors: y = act(gate) * up, all three of one shape (gate and up of one dtype).
// SwiGLU is act = Silu (Llama, Qwen, Mistral MLPs), GeGLU act = Gelu or GeluTanh (Gemma uses GeluTanh).
Status glu(Session& s, Activation act, const Buffer& gate, const Buffer& up, const Buffer& y);
// The same on one [.., 2F] tensor holding the gate in its first F columns and up in its last F (llama.cpp's fused
// gate_up projection, gate first); y is [.., F].
Status glu_split(Session& s, Activation act, const Buffer& gate_up, const Buffer& y);

inline Status swiglu(Session& s, const Buffer& gate, const Buffer& up, const Buffer& y) {
  return glu(s, Activation::Silu, gate, up, y);
}
inline Status geglu(Session& s, const Buffer& gate, const Buffer& up, const Buffer& y) {
  return glu(s, Activation::Gelu, gate, up, y);
}
inline Status geglu_tanh(Session& s, const Buffer& gate, const Buffer& up, const Buffer& y) {
  return glu(s, Activation::GeluTanh, gate, up, y);
}

// Sigmoid-gated multiply (Qwen3-Next / Qwen3.5 attention output gate): y = x * sigmoid(gate), x and gate of one
// shape and dtype.
inline Status sigmoid_mul(Session& s, const Buffer& x, const Buffer& gate, const Buffer& y) {
  return glu(s, Activation::Sigmoid, gate, x, y);
}

}  // namespace mlxn::ops
