// Large buffers the CPU kernels stream (packed weights, activation rows): 2 MiB pages cut the TLB misses of rows
// touched in scattered order, which 4 KiB pages pay on hosts whose transparent huge pages are madvise-only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace mf {

// 64-byte aligned (2 MiB and transparent-huge-page advised when large) zero-filled bytes.
class AlignedBytes {
  public:
    AlignedBytes() = default;
    explicit AlignedBytes(size_t bytes);
    uint8_t* data() const { return p_.get(); }
    size_t size() const { return size_; }

  private:
    struct Free {
        void operator()(uint8_t* p) const;
    };
    std::unique_ptr<uint8_t, Free> p_;
    size_t size_ = 0;
};

}  // namespace mf
