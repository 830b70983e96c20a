// Shapes and strides, outermost dimension first (row-major): shape {rows, cols} has cols innermost.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <string>

namespace mlxn {

inline constexpr int kMaxDims = 8;

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  template <typename It>
  Shape(It first, It last) {
    for (; first != last && rank_ < kMaxDims; ++first) d_[rank_++] = static_cast<int64_t>(*first);
    overflow_ = first != last;
  }

  int rank() const { return rank_; }
  int64_t operator[](int i) const { return d_[i]; }
  int64_t& operator[](int i) { return d_[i]; }
  // Dimension counted from the end: back(0) is the innermost.
  int64_t back(int i = 0) const { return d_[rank_ - 1 - i]; }
  const int64_t* data() const { return d_.data(); }
  // Product of the dimensions; 1 for rank 0. -1 if a dimension is negative or the product overflows int64.
  int64_t numel() const;
  // Product of all but the last dimension (rows of a row-major matrix view); 1 for rank <= 1.
  int64_t rows() const;
  bool valid() const { return !overflow_ && numel() >= 0; }
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  std::string to_string() const;  // "[4096, 4096]"

 private:
  std::array<int64_t, kMaxDims> d_{};
  int rank_ = 0;
  bool overflow_ = false;
};

// Strides in elements, one per dimension of the shape they go with.
using Strides = std::array<int64_t, kMaxDims>;
Strides contiguous_strides(const Shape& s);

std::ostream& operator<<(std::ostream& os, const Shape& s);

}  // namespace mlxn
