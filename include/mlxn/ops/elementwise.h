// Elementwise ops over f32 / f16 / bf16 (any mix of input and output types; f32 arithmetic).
// Inputs and outputs are contiguous; `b` of a binary op may broadcast numpy-style against `a` (each of its trailing
// dimensions equal to a's or 1). The output has a's shape and may be a itself (in place); partial overlaps between
// an input and the output are rejected.
#pragma once

#include <cstdint>

#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"

namespace mlxn {

// A scalar operand: a value fixed at recording time, or a step-parameter slot read (as f32) when the op runs, so
// a captured graph sees the slot's current value on every replay.
struct Scalar {
  float value = 0.0f;
  int step_slot = -1;
  static Scalar of(float v) { return {v, -1}; }
  static Scalar step(int slot) { return {0.0f, slot}; }
};

namespace ops {

Status add(Session& s, const Buffer& a, const Buffer& b, const Buffer& out);  // out = a + b
Status mul(Session& s, const Buffer& a, const Buffer& b, const Buffer& out);  // out = a * b
Status scale(Session& s, const Buffer& x, Scalar k, const Buffer& out);       // out = x * k
Status add_scalar(Session& s, const Buffer& x, Scalar k, const Buffer& out);  // out = x + k
// out = x converted to out's dtype (round to nearest even).
Status cast(Session& s, const Buffer& x, const Buffer& out);

}  // namespace ops
}  // namespace mlxn
