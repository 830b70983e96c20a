#include "test_util.h"
TEST(Smoke, CpuDevice) { EXPECT_EQ(mlxn::Device::cpu().backend(), mlxn::Backend::Cpu); }
