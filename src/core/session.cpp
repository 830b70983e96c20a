#include "mlxn/core/session.h"

#include <algorithm>

#include "core/backend.h"
#include "mlxn/core/half.h"

namespace mlxn {
namespace detail {

SessionImpl::SessionImpl(Device device, SessionOptions options)
    : device_(std::move(device)), options_(options) {}

ExecContext SessionImpl::context(void* stream) const {
  ExecContext c;
  c.backend = device_.backend();
  c.stream = stream;
  c.props = &device_.properties();
  c.kernels = &device_.kernels();
  c.step_params = step_device();
  return c;
}

std::vector<uint32_t> SessionImpl::explicit_deps() { return prev_group_; }

Status SessionImpl::record(std::string_view name, std::span<const MemRange> reads, std::span<const MemRange> writes,
                           const OpFn& fn) {
  ++stats_.ops;
  if (!capturing_) return run_eager(name, fn);
  if (!capture_status_.is_ok()) return capture_status_;

  const auto index = static_cast<uint32_t>(deps_.size());
  std::vector<uint32_t> deps;
  if (options_.hazards == HazardMode::Automatic) {
    for (const auto& d : tracker_.add(index, reads, writes)) deps.push_back(d.op);
    if (!deps.empty()) ++stats_.barriers;
  } else {
    deps = explicit_deps();
    group_.push_back(index);
    for (const MemRange& r : reads) group_ranges_.push_back({r, false});
    for (const MemRange& w : writes) group_ranges_.push_back({w, true});
  }
  // Drop edges already implied through another dependency's own direct edges.
  if (deps.size() > 1) {
    std::vector<uint32_t> kept;
    for (uint32_t d : deps) {
      bool implied = false;
      for (uint32_t e : deps) {
        if (e == d) continue;
        const auto& de = deps_[e];
        if (std::binary_search(de.begin(), de.end(), d)) {
          implied = true;
          break;
        }
      }
      if (!implied) kept.push_back(d);
    }
    deps.swap(kept);
  }
  stats_.dependencies += deps.size();
  deps_.push_back(deps);
  Status s = capture_op(index, deps_.back(), name, fn);
  if (!s.is_ok()) capture_status_ = s;
  return s;
}

void SessionImpl::barrier() {
  if (options_.hazards != HazardMode::Explicit || group_.empty()) return;
  ++stats_.barriers;
  prev_group_.swap(group_);
  group_.clear();
  group_ranges_.clear();
}

void SessionImpl::barrier_between(std::span<const MemRange> reads, std::span<const MemRange> writes) {
  if (options_.hazards != HazardMode::Explicit) return;
  for (const auto& [r, is_write] : group_ranges_) {
    for (const MemRange& w : writes)
      if (w.overlaps(r)) return barrier();  // WAR or WAW
    if (is_write)
      for (const MemRange& q : reads)
        if (q.overlaps(r)) return barrier();  // RAW
  }
}

Status SessionImpl::begin_capture() {
  if (capturing_) return invalid_argument("session", "begin_capture while already capturing");
  deps_.clear();
  tracker_.reset();
  group_.clear();
  prev_group_.clear();
  group_ranges_.clear();
  capture_status_ = Status::ok();
  MLXN_TRY(capture_start());
  capturing_ = true;
  return Status::ok();
}

Result<std::shared_ptr<GraphImplBase>> SessionImpl::end_capture() {
  if (!capturing_) return invalid_argument("session", "end_capture without begin_capture");
  capturing_ = false;
  if (!capture_status_.is_ok()) {
    capture_abort();
    return capture_status_;
  }
  return capture_stop(std::move(deps_));
}

Status SessionImpl::set_step(int slot, uint32_t bits) {
  if (slot < 0 || slot >= kStepParamSlots)
    return Status(StatusCode::OutOfRange, detail::cat("[session] step-parameter slot ", slot, " is not in [0, ",
                                                      kStepParamSlots, ")"));
  step_host_[static_cast<size_t>(slot)] = bits;
  step_dirty_ = true;
  return Status::ok();
}

Result<Buffer> SessionImpl::scratch(size_t bytes) {
  if (!scratch_.empty() && scratch_.back().nbytes() >= bytes) return scratch_.back();
  // Grow by at least 1.5x so a sequence of slightly larger requests does not pile up buffers; older ones stay
  // alive because ops recorded into a graph may still read or write them on replay.
  size_t want = std::max<size_t>(bytes, size_t{1} << 20);
  if (!scratch_.empty()) want = std::max(want, scratch_.back().nbytes() / 2 * 3);
  MLXN_ASSIGN_OR_RETURN(Buffer b, allocate_scratch(want));
  scratch_.push_back(b);
  return b;
}

}  // namespace detail

Session::Session(std::shared_ptr<detail::SessionImpl> impl) : impl_(std::move(impl)) {}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

Result<Session> Session::create(const Device& device, SessionOptions options) {
  if (device.impl() == nullptr) return invalid_argument("session", "no device");
  if (options.max_branches < 1 || options.max_branches > 32)
    return invalid_argument("session", "max_branches ", options.max_branches, " is not in [1, 32]");
  MLXN_ASSIGN_OR_RETURN(auto impl, device.impl()->create_session(options));
  return Session(std::move(impl));
}

Device Session::device() const { return impl_->device(); }
HazardMode Session::hazard_mode() const { return impl_->options().hazards; }

Status Session::record(std::string_view name, std::span<const MemRange> reads, std::span<const MemRange> writes,
                       const OpFn& fn) {
  return impl_->record(name, reads, writes, fn);
}
void Session::barrier() { impl_->barrier(); }
void Session::barrier_between(std::span<const MemRange> reads, std::span<const MemRange> writes) {
  impl_->barrier_between(reads, writes);
}
Status Session::finish() { return impl_->finish(); }

Status Session::set_step_u32(int slot, uint32_t value) { return impl_->set_step(slot, value); }
Status Session::set_step_i32(int slot, int32_t value) { return impl_->set_step(slot, static_cast<uint32_t>(value)); }
Status Session::set_step_f32(int slot, float value) { return impl_->set_step(slot, f32_bits(value)); }
uint32_t Session::step_u32(int slot) const {
  return (slot < 0 || slot >= kStepParamSlots) ? 0u : impl_->step(slot);
}
const uint32_t* Session::step_params_device() const { return impl_->step_device(); }

Status Session::begin_capture() { return impl_->begin_capture(); }
Result<Graph> Session::end_capture() {
  MLXN_ASSIGN_OR_RETURN(auto g, impl_->end_capture());
  return Graph(std::move(g));
}
bool Session::capturing() const { return impl_->capturing(); }

Result<Marker> Session::mark() { return impl_->mark(); }
Result<double> Session::elapsed_ms(Marker from, Marker to) { return impl_->elapsed_ms(from, to); }
Result<Buffer> Session::scratch(size_t bytes) { return impl_->scratch(bytes); }
SessionStats Session::stats() const { return impl_->stats(); }
void* Session::native_stream() const { return impl_->stream(); }

}  // namespace mlxn

namespace mlxn {

Status Graph::replay() { return impl_->replay(); }
size_t Graph::op_count() const { return impl_->deps.size(); }
const std::vector<std::vector<uint32_t>>& Graph::dependencies() const { return impl_->deps; }
size_t Graph::root_count() const {
  size_t n = 0;
  for (const auto& d : impl_->deps) n += d.empty() ? 1 : 0;
  return n;
}
size_t Graph::native_node_count() const { return impl_->native_nodes(); }
size_t Graph::native_edge_count() const { return impl_->native_edges(); }

}  // namespace mlxn
