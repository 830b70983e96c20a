// A read-only view of a whole file through mmap (private, copy-on-write: a stray write through a wrapped Buffer
// never reaches the file). Shared by every tensor Buffer that wraps part of it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "mlxn/core/status.h"

namespace mlxn::io {

class MappedFile {
 public:
  // Maps `path`; an empty file maps to a zero-length view.
  static Result<std::shared_ptr<MappedFile>> open(const std::string& path);
  // Wraps bytes the caller keeps alive (tests, fuzzers); nothing is mapped.
  static std::shared_ptr<MappedFile> borrow(const void* data, size_t size, std::string name = "<memory>");

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::string path_;
};

}  // namespace mlxn::io
