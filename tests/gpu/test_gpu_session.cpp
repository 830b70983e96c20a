// CUDA sessions and graphs: replay is bit-identical to eager execution, independent ops become parallel branches,
// step parameters change replays without re-capture, host copies through pinned staging.
#include "test_util.h"

namespace mlxn {
namespace {

struct Net {
  Buffer x, w, h1, h2, h3, a, b, out;
};

Net make_net(const Device& dev, int64_t rows, int64_t cols, uint64_t seed) {
  Net n;
  n.x = test::make_buffer(dev, DType::BF16, {rows, cols}, test::randn(static_cast<size_t>(rows * cols), seed));
  n.w = test::make_buffer(dev, DType::BF16, {cols}, test::randn(static_cast<size_t>(cols), seed + 1, 0.2f, 1.0f));
  // All intermediates are views of one allocation, so hazards are found on sub-ranges.
  auto arena = dev.alloc(DType::F32, {6, rows, cols}).value();
  test::poison(arena);
  n.h1 = arena.slice(0, 0, 1).value().reshape({rows, cols}).value();
  n.h2 = arena.slice(0, 1, 1).value().reshape({rows, cols}).value();
  n.h3 = arena.slice(0, 2, 1).value().reshape({rows, cols}).value();
  n.a = arena.slice(0, 3, 1).value().reshape({rows, cols}).value();
  n.b = arena.slice(0, 4, 1).value().reshape({rows, cols}).value();
  n.out = arena.slice(0, 5, 1).value().reshape({rows, cols}).value();
  return n;
}

// h1 = rms_norm(x) * w; two independent branches a = h1 * k(step 0), b = h1 + 1; h2 = a + b; h3 = h2 * h1;
// out = rms_norm(h3) (no weight). Explicit mode places barriers between dependency levels.
Status record_net(Session& s, const Net& n, bool barriers) {
  MLXN_TRY(ops::rms_norm(s, n.x, n.w, n.h1));
  if (barriers) s.barrier();
  MLXN_TRY(ops::scale(s, n.h1, Scalar::step(0), n.a));
  MLXN_TRY(ops::add_scalar(s, n.h1, Scalar::of(1.0f), n.b));
  if (barriers) s.barrier();
  MLXN_TRY(ops::add(s, n.a, n.b, n.h2));
  if (barriers) s.barrier();
  MLXN_TRY(ops::mul(s, n.h2, n.h1, n.h3));
  if (barriers) s.barrier();
  MLXN_TRY(ops::rms_norm(s, n.h3, Buffer(), n.out));
  return Status::ok();
}

TEST(GpuGraph, ReplayIsBitIdenticalToEager) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  const uint64_t seed = test::fresh_seed();
  SCOPED_TRACE(detail::cat("seed ", seed));
  for (HazardMode mode : {HazardMode::Automatic, HazardMode::Explicit}) {
    SCOPED_TRACE(mode == HazardMode::Automatic ? "automatic" : "explicit");
    Net eager_net = make_net(gpu, 33, 4097, seed);
    Net graph_net = make_net(gpu, 33, 4097, seed);
    SessionOptions o;
    o.hazards = mode;
    auto s = Session::create(gpu, o).value();
    for (float k : {0.5f, -2.0f, 3.25f}) {
      ASSERT_TRUE(s.set_step_f32(0, k).is_ok());
      ASSERT_TRUE(record_net(s, eager_net, mode == HazardMode::Explicit).is_ok());
    }
    ASSERT_TRUE(s.finish().is_ok());
    const auto eager = test::read_f32(eager_net.out);

    ASSERT_TRUE(s.set_step_f32(0, 1.0f).is_ok());
    ASSERT_TRUE(s.begin_capture().is_ok());
    ASSERT_TRUE(record_net(s, graph_net, mode == HazardMode::Explicit).is_ok());
    auto g = s.end_capture();
    ASSERT_TRUE(g.is_ok()) << g.status().to_string();
    EXPECT_EQ(g->op_count(), 6u);
    EXPECT_GE(g->native_node_count(), 6u);
    ASSERT_TRUE(s.finish().is_ok());
    for (float v : test::read_f32(graph_net.out)) ASSERT_TRUE(std::isnan(v)) << "capture must not run ops";
    // Replays with the step values of the eager runs; the last one must match the eager result bit for bit.
    for (float k : {0.5f, -2.0f, 3.25f}) {
      ASSERT_TRUE(s.set_step_f32(0, k).is_ok());
      ASSERT_TRUE(g->replay().is_ok());
    }
    ASSERT_TRUE(s.finish().is_ok());
    const auto replayed = test::read_f32(graph_net.out);
    ASSERT_EQ(replayed.size(), eager.size());
    EXPECT_EQ(std::memcmp(replayed.data(), eager.data(), eager.size() * 4), 0);
    // The step value matters: a different k gives a different result, again equal to eager.
    ASSERT_TRUE(s.set_step_f32(0, 0.125f).is_ok());
    ASSERT_TRUE(g->replay().is_ok());
    ASSERT_TRUE(record_net(s, eager_net, false).is_ok());
    ASSERT_TRUE(s.finish().is_ok());
    const auto r2 = test::read_f32(graph_net.out), e2 = test::read_f32(eager_net.out);
    EXPECT_EQ(std::memcmp(r2.data(), e2.data(), e2.size() * 4), 0);
    EXPECT_NE(std::memcmp(r2.data(), eager.data(), eager.size() * 4), 0);
  }
}

TEST(GpuGraph, IndependentChainsBecomeParallelBranches) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto arena = gpu.alloc(DType::F32, {8, 1000}).value();
  ASSERT_TRUE(arena.fill_bytes(0).is_ok());
  SessionOptions o;
  o.max_branches = 4;
  auto s = Session::create(gpu, o).value();
  ASSERT_TRUE(s.begin_capture().is_ok());
  for (int c = 0; c < 4; ++c) {
    auto src = arena.slice(0, 2 * c, 1).value(), dst = arena.slice(0, 2 * c + 1, 1).value();
    ASSERT_TRUE(ops::add_scalar(s, src, Scalar::of(static_cast<float>(c + 1)), dst).is_ok());
    ASSERT_TRUE(ops::scale(s, dst, Scalar::of(2.0f), dst).is_ok());
  }
  auto g = s.end_capture().value();
  EXPECT_EQ(g.root_count(), 4u);
  EXPECT_EQ(g.native_node_count(), 8u);
  EXPECT_EQ(g.native_edge_count(), 4u);  // one edge inside each chain, none between chains
  ASSERT_TRUE(g.replay().is_ok());
  ASSERT_TRUE(s.finish().is_ok());
  auto v = test::read_f32(arena);
  for (int c = 0; c < 4; ++c)
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(v[static_cast<size_t>((2 * c + 1) * 1000 + i)], 2.0f * (c + 1));

  // The same chains with max_branches = 1 capture a linear graph.
  o.max_branches = 1;
  auto s1 = Session::create(gpu, o).value();
  ASSERT_TRUE(s1.begin_capture().is_ok());
  for (int c = 0; c < 4; ++c) {
    auto src = arena.slice(0, 2 * c, 1).value(), dst = arena.slice(0, 2 * c + 1, 1).value();
    ASSERT_TRUE(ops::add_scalar(s1, src, Scalar::of(1.0f), dst).is_ok());
  }
  auto g1 = s1.end_capture().value();
  EXPECT_EQ(g1.native_edge_count(), 3u);
}

TEST(GpuGraph, ManyDependentOpsReplayCorrectly) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto x = test::make_buffer(gpu, DType::F32, {4096}, std::vector<float>(4096, 0.0f));
  auto s = Session::create(gpu).value();
  ASSERT_TRUE(s.begin_capture().is_ok());
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(ops::add_scalar(s, x, Scalar::step(5), x).is_ok());
  auto g = s.end_capture().value();
  EXPECT_EQ(g.native_edge_count(), 199u);
  ASSERT_TRUE(s.set_step_f32(5, 0.5f).is_ok());
  ASSERT_TRUE(g.replay().is_ok());
  ASSERT_TRUE(s.set_step_f32(5, 1.0f).is_ok());
  ASSERT_TRUE(g.replay().is_ok());
  ASSERT_TRUE(s.finish().is_ok());
  for (float v : test::read_f32(x)) ASSERT_EQ(v, 300.0f);
}

TEST(GpuBuffer, LargeCopiesThroughStagingAndViews) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  // 40 MiB + 12 bytes: several staging chunks and a ragged tail.
  const size_t n = (size_t{40} << 20) / 4 + 3;
  std::vector<float> host(n);
  std::mt19937 g(static_cast<uint32_t>(test::fresh_seed()));
  for (auto& v : host) v = static_cast<float>(g());
  auto b = gpu.alloc(DType::F32, {static_cast<int64_t>(n)}).value();
  ASSERT_TRUE(b.upload(host.data(), n * 4).is_ok());
  std::vector<float> back(n);
  ASSERT_TRUE(b.download(back.data(), n * 4).is_ok());
  EXPECT_EQ(std::memcmp(back.data(), host.data(), n * 4), 0);
  // A view at an offset reads the right bytes.
  auto v = b.view(4 * 1000, DType::F32, {5}).value();
  float five[5];
  ASSERT_TRUE(v.download(five, sizeof(five)).is_ok());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(five[i], host[1000 + static_cast<size_t>(i)]);
  EXPECT_EQ(gpu.properties().backend, Backend::Cuda);
  EXPECT_GT(gpu.properties().multiprocessor_count, 0);
  EXPECT_GT(gpu.properties().total_memory, size_t{1} << 30);
}

TEST(GpuSession, ErrorsAreStatuses) {
  MLXN_CUDA_DEVICE_OR_SKIP(gpu);
  auto s = Session::create(gpu).value();
  auto cpu_buf = Device::cpu().alloc(DType::F32, {4}).value();
  auto gpu_buf = gpu.alloc(DType::F32, {4}).value();
  Status st = ops::add_scalar(s, cpu_buf, Scalar::of(1.0f), gpu_buf);
  EXPECT_EQ(st.code(), StatusCode::InvalidArgument);
  EXPECT_NE(st.message().find("cpu"), std::string::npos);
  EXPECT_EQ(Device::open(Backend::Cuda, 9999).status().code(), StatusCode::InvalidArgument);
  auto huge = gpu.alloc(DType::F32, {int64_t{1} << 42});  // 16 TiB
  EXPECT_EQ(huge.status().code(), StatusCode::OutOfMemory);
  // The device still works after the failed allocation.
  ASSERT_TRUE(ops::add_scalar(s, gpu_buf, Scalar::of(1.0f), gpu_buf).is_ok());
  ASSERT_TRUE(s.finish().is_ok());
}

}  // namespace
}  // namespace mlxn
