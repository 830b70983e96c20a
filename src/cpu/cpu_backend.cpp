// The CPU backend: host memory, ops run synchronously in recording order, graphs replay the recorded op list.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <thread>

#include "core/backend.h"

namespace mlxn::cpu {
void register_kernels(KernelRegistry& r);
}

namespace mlxn::detail {
namespace {

class CpuDevice final : public DeviceImpl {
 public:
  CpuDevice() {
    props_.backend = Backend::Cpu;
    props_.name = "cpu";
    props_.multiprocessor_count = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    props_.max_threads_per_block = 1;
    cpu::register_kernels(registry_);
  }
  Result<void*> allocate(size_t bytes) override {
    // 64-byte alignment: whole cache lines, and any vector type.
    const size_t rounded = (bytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (p == nullptr) return error(StatusCode::OutOfMemory, "alloc", "cannot allocate ", bytes, " bytes of host memory");
    return p;
  }
  void deallocate(void* p) noexcept override { std::free(p); }
  Status copy_to_device(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return Status::ok();
  }
  Status copy_to_host(void* dst, const void* src, size_t bytes) override {
    std::memcpy(dst, src, bytes);
    return Status::ok();
  }
  Status fill(void* dst, uint8_t value, size_t bytes) override {
    std::memset(dst, value, bytes);
    return Status::ok();
  }
  Status synchronize() override { return Status::ok(); }
  Result<std::shared_ptr<SessionImpl>> create_session(const SessionOptions& options) override;
};

struct CpuGraph final : Graph::Impl {
  std::shared_ptr<SessionImpl> keep;  // the session outlives its graphs
  std::vector<std::pair<std::string, OpFn>> ops;
  ExecContext ctx;
  Status replay() override {
    for (auto& [name, fn] : ops) {
      Status s = fn(ctx);
      if (!s.is_ok()) return s;
    }
    return Status::ok();
  }
};

class CpuSession final : public SessionImpl, public std::enable_shared_from_this<CpuSession> {
 public:
  using SessionImpl::SessionImpl;
  Status finish() override { return Status::ok(); }
  void* stream() const override { return nullptr; }
  const uint32_t* step_device() const override { return step_host_.data(); }
  Result<Marker> mark() override {
    marks_.push_back(std::chrono::steady_clock::now());
    return Marker{static_cast<int>(marks_.size() - 1)};
  }
  Result<double> elapsed_ms(Marker from, Marker to) override {
    if (from.id < 0 || to.id < 0 || static_cast<size_t>(from.id) >= marks_.size() ||
        static_cast<size_t>(to.id) >= marks_.size())
      return invalid_argument("session", "unknown marker");
    return std::chrono::duration<double, std::milli>(marks_[static_cast<size_t>(to.id)] -
                                                     marks_[static_cast<size_t>(from.id)])
        .count();
  }

 protected:
  Status run_eager(std::string_view, const OpFn& fn) override { return fn(context(nullptr)); }
  Status capture_start() override {
    pending_.clear();
    return Status::ok();
  }
  Status capture_op(uint32_t, const std::vector<uint32_t>&, std::string_view name, const OpFn& fn) override {
    pending_.emplace_back(std::string(name), fn);
    return Status::ok();
  }
  Result<std::shared_ptr<Graph::Impl>> capture_stop(std::vector<std::vector<uint32_t>> deps) override {
    auto g = std::make_shared<CpuGraph>();
    g->keep = shared_from_this();
    g->ops = std::move(pending_);
    g->deps = std::move(deps);
    g->ctx = context(nullptr);
    return std::shared_ptr<Graph::Impl>(std::move(g));
  }
  void capture_abort() override { pending_.clear(); }

 private:
  std::vector<std::pair<std::string, OpFn>> pending_;
  std::vector<std::chrono::steady_clock::time_point> marks_;
};

Result<std::shared_ptr<SessionImpl>> CpuDevice::create_session(const SessionOptions& options) {
  return std::shared_ptr<SessionImpl>(std::make_shared<CpuSession>(Device::cpu(), options));
}

}  // namespace

std::shared_ptr<DeviceImpl> make_cpu_device() { return std::make_shared<CpuDevice>(); }

}  // namespace mlxn::detail
