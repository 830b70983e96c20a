// Validation helpers shared by the op entry points. Each returns a Status naming the op and the argument.
#pragma once

#include <string_view>

#include "kernels/activation.h"
#include "mlxn/core/buffer.h"
#include "mlxn/core/session.h"
#include "mlxn/ops/activation.h"

namespace mlxn::ops::detail {

// The buffer exists and lives on the session's device.
Status check_buffer(std::string_view op, std::string_view arg, const Session& s, const Buffer& b);
// f32, f16 or bf16.
Status check_float(std::string_view op, std::string_view arg, const Buffer& b);
Status check_contiguous(std::string_view op, std::string_view arg, const Buffer& b);
// `out` is either exactly `in` (in place) or disjoint from it.
Status check_no_partial_overlap(std::string_view op, std::string_view in_arg, const Buffer& in, const Buffer& out);
// Step-parameter slot in range (or -1 for none).
Status check_step_slot(std::string_view op, int slot);
// The kernels' element function of a public activation.
kern::ActOp act_op(Activation a);

}  // namespace mlxn::ops::detail

// Calls cpu::FN(params, ctx) or cuda::FN(params, ctx) by the context's backend; a CPU-only build never names the
// CUDA symbol.
#if defined(MLXN_WITH_CUDA)
#define MLXN_BACKEND_CALL(FN, params, ctx) \
  ((ctx).backend == ::mlxn::Backend::Cpu ? ::mlxn::cpu::FN((params), (ctx)) : ::mlxn::cuda::FN((params), (ctx)))
#else
#define MLXN_BACKEND_CALL(FN, params, ctx)                                  \
  ((ctx).backend == ::mlxn::Backend::Cpu ? ::mlxn::cpu::FN((params), (ctx)) \
                                         : ::mlxn::unsupported(#FN, "this build has no CUDA backend"))
#endif
