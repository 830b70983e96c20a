// NumPy .npy (format 1.0) writer for f32 arrays: `mlxn inspect --dump` and debugging.
#pragma once

#include <span>
#include <string>

#include "mlxn/core/shape.h"
#include "mlxn/core/status.h"

namespace mlxn::io {

Status write_npy_f32(const std::string& path, const Shape& shape, std::span<const float> data);

}  // namespace mlxn::io
