// PLACEHOLDER: being written.
#include "mlxn/ops/elementwise.h"
namespace mlxn::ops {
Status add(Session&, const Buffer&, const Buffer&, const Buffer&) { return unsupported("add", "not yet"); }
Status mul(Session&, const Buffer&, const Buffer&, const Buffer&) { return unsupported("mul", "not yet"); }
Status scale(Session&, const Buffer&, Scalar, const Buffer&) { return unsupported("scale", "not yet"); }
Status add_scalar(Session&, const Buffer&, Scalar, const Buffer&) { return unsupported("add_scalar", "not yet"); }
Status cast(Session&, const Buffer&, const Buffer&) { return unsupported("cast", "not yet"); }
}  // namespace mlxn::ops
