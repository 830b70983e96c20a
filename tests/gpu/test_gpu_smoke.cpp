#include "test_util.h"
TEST(GpuSmoke, Open) { MLXN_CUDA_DEVICE_OR_SKIP(dev); EXPECT_EQ(dev.backend(), mlxn::Backend::Cuda); }
