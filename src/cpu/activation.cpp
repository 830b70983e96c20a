// Activation reference: each element in double, rounded once to y's dtype.
#include "kernels/activation.h"

#include <cmath>
#include <numbers>

#include "cpu/common.h"

namespace mlxn::cpu {

double act_value(kern::ActOp op, double x, double cap) {
  switch (op) {
    case kern::ActOp::Silu:
      return x / (1.0 + std::exp(-x));
    // Cancellation-free forms: 1 + erf(z) = erfc(-z), 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)).
    case kern::ActOp::GeluErf:
      return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
    case kern::ActOp::GeluTanh: {
      const double u = std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x);
      return x / (1.0 + std::exp(-2.0 * u));
    }
    case kern::ActOp::Sigmoid:
      return 1.0 / (1.0 + std::exp(-x));
    case kern::ActOp::Softcap:
      return cap * std::tanh(x / cap);
  }
  return 0.0;
}

Status activation(const kern::ActivationParams& p, const ExecContext&) {
  parallel_for(p.rows, 1, [&](int64_t r) {
    for (int64_t c = 0; c < p.cols; ++c) {
      double o = act_value(p.op, load_f32(p.x, p.tx, r * p.x_stride + c), p.cap);
      if (p.u != nullptr) o *= static_cast<double>(load_f32(p.u, p.tx, r * p.u_stride + c));
      store_f32(p.y, p.ty, r * p.cols + c, static_cast<float>(o));
    }
  });
  return Status::ok();
}

}  // namespace mlxn::cpu
