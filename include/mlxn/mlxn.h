// mlx-native: a GPU compute library for transformer inference. This header includes the whole public API.
#pragma once

#include "mlxn/core/buffer.h"
#include "mlxn/core/buffer_pool.h"
#include "mlxn/core/device.h"
#include "mlxn/core/dtype.h"
#include "mlxn/core/half.h"
#include "mlxn/core/kernel_registry.h"
#include "mlxn/core/session.h"
#include "mlxn/core/shape.h"
#include "mlxn/core/status.h"
#include "mlxn/ops/copy.h"
#include "mlxn/ops/elementwise.h"
#include "mlxn/ops/matmul.h"
#include "mlxn/ops/moe.h"
#include "mlxn/ops/norm.h"
#include "mlxn/ops/reduce.h"
#include "mlxn/ops/sample.h"
