// Device memory and page-locked host memory, owned by RAII buffers (plain cuMemAlloc, never managed memory).
#pragma once
#include <cstddef>

#include "codegen/cuda/cuda_driver.hpp"

namespace mf {

class DeviceBuffer {
  public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(size_t bytes);  // throws (naming the size) when the device is out of memory
    ~DeviceBuffer();
    DeviceBuffer(DeviceBuffer&& o) noexcept;
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    CuDevicePtr ptr() const { return ptr_; }
    template <class T>
    T* as() const {
        return reinterpret_cast<T*>(ptr_);
    }
    size_t bytes() const { return bytes_; }

    void upload(const void* src, size_t bytes, size_t offset = 0);
    void download(void* dst, size_t bytes, size_t offset = 0) const;
    void fill_bytes(unsigned char value);

  private:
    CuDevicePtr ptr_ = 0;
    size_t bytes_ = 0;
};

// Page-locked host memory (portable to all contexts): the staging area for hidden states crossing to the CPU.
class PinnedBuffer {
  public:
    PinnedBuffer() = default;
    explicit PinnedBuffer(size_t bytes);
    ~PinnedBuffer();
    PinnedBuffer(PinnedBuffer&& o) noexcept;
    PinnedBuffer& operator=(PinnedBuffer&& o) noexcept;
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;

    void* data() const { return data_; }
    template <class T>
    T* as() const {
        return static_cast<T*>(data_);
    }
    size_t bytes() const { return bytes_; }

  private:
    void* data_ = nullptr;
    size_t bytes_ = 0;
};

}  // namespace mf
