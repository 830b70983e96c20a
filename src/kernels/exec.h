// What kernel launchers may include: the plain types they take. Never Session or Buffer.
#pragma once

#include "mlxn/core/dtype.h"
#include "mlxn/core/kernel_registry.h"
#include "mlxn/core/session.h"  // ExecContext (a plain struct of pointers)
