// PLACEHOLDER: being written.
#include "kernels/elementwise.h"
namespace mlxn::cpu {
Status binary(const kern::BinaryParams&, const ExecContext&) { return unsupported("binary", "not yet"); }
Status unary(const kern::UnaryParams&, const ExecContext&) { return unsupported("unary", "not yet"); }
Status copy(const kern::CopyParams&, const ExecContext&) { return unsupported("copy", "not yet"); }
}  // namespace mlxn::cpu
