#include "codegen/cuda/cuda_memory.hpp"

#include <stdexcept>
#include <string>
#include <utility>

namespace mf {

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes == 0) return;
    CuResult r = cuda_driver().mem_alloc(&ptr_, bytes);
    if (r != 0) cu_check(r, ("cuMemAlloc of " + std::to_string(bytes) + " bytes").c_str());
}

DeviceBuffer::~DeviceBuffer() {
    if (ptr_) cuda_driver().mem_free(ptr_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, 0)), bytes_(std::exchange(o.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
        if (ptr_) cuda_driver().mem_free(ptr_);
        ptr_ = std::exchange(o.ptr_, 0);
        bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
}

void DeviceBuffer::upload(const void* src, size_t bytes, size_t offset) {
    if (offset + bytes > bytes_) throw std::logic_error("DeviceBuffer::upload past the end (" __FILE__ ")");
    if (bytes) cu_check(cuda_driver().memcpy_htod(ptr_ + offset, src, bytes), "cuMemcpyHtoD");
}

void DeviceBuffer::download(void* dst, size_t bytes, size_t offset) const {
    if (offset + bytes > bytes_) throw std::logic_error("DeviceBuffer::download past the end (" __FILE__ ")");
    if (bytes) cu_check(cuda_driver().memcpy_dtoh(dst, ptr_ + offset, bytes), "cuMemcpyDtoH");
}

void DeviceBuffer::fill_bytes(unsigned char value) {
    if (bytes_) cu_check(cuda_driver().memset_d8(ptr_, value, bytes_), "cuMemsetD8");
}

PinnedBuffer::PinnedBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes == 0) return;
    CuResult r = cuda_driver().mem_host_alloc(&data_, bytes, kCuMemHostAllocPortable);
    if (r != 0) cu_check(r, ("cuMemHostAlloc of " + std::to_string(bytes) + " bytes").c_str());
}

PinnedBuffer::~PinnedBuffer() {
    if (data_) cuda_driver().mem_free_host(data_);
}

PinnedBuffer::PinnedBuffer(PinnedBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& o) noexcept {
    if (this != &o) {
        if (data_) cuda_driver().mem_free_host(data_);
        data_ = std::exchange(o.data_, nullptr);
        bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
}

}  // namespace mf
