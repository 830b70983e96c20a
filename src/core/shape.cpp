#include "mlxn/core/shape.h"

#include <ostream>
#include <sstream>

namespace mlxn {

Shape::Shape(std::initializer_list<int64_t> dims) {
  for (int64_t d : dims) {
    if (rank_ == kMaxDims) {
      overflow_ = true;
      break;
    }
    d_[rank_++] = d;
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) {
    if (d_[i] < 0) return -1;
    if (d_[i] != 0 && n > INT64_MAX / d_[i]) return -1;
    n *= d_[i];
  }
  return n;
}

int64_t Shape::rows() const {
  int64_t n = 1;
  for (int i = 0; i + 1 < rank_; ++i) n *= d_[i];
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (rank_ != o.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (d_[i] != o.d_[i]) return false;
  return true;
}

std::string Shape::to_string() const {
  std::ostringstream os;
  os << *this;
  return os.str();
}

Strides contiguous_strides(const Shape& s) {
  Strides st{};
  int64_t acc = 1;
  for (int i = s.rank() - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

std::ostream& operator<<(std::ostream& os, const Shape& s) {
  os << '[';
  for (int i = 0; i < s.rank(); ++i) os << (i ? ", " : "") << s[i];
  return os << ']';
}

}  // namespace mlxn
