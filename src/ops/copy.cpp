// PLACEHOLDER: being written.
#include "mlxn/ops/copy.h"
namespace mlxn::ops {
Status copy(Session&, const Buffer&, const Buffer&) { return unsupported("copy", "not yet"); }
}  // namespace mlxn::ops
