#include "codegen/x64/aligned_bytes.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace mf {

AlignedBytes::AlignedBytes(size_t bytes) : size_(bytes) {
    if (!bytes) return;
    const size_t huge = size_t(2) << 20;
    const size_t align = bytes >= huge ? huge : 64;
    const size_t rounded = (bytes + align - 1) / align * align;
    auto* p = static_cast<uint8_t*>(std::aligned_alloc(align, rounded));
    if (!p)
        throw std::runtime_error("out of memory: " + std::to_string(bytes >> 20) +
                                 " MiB of aligned memory (packed weights or activation rows) could not be allocated");
    if (align == huge) madvise(p, rounded, MADV_HUGEPAGE);
    std::memset(p, 0, rounded);
    p_.reset(p);
}

void AlignedBytes::Free::operator()(uint8_t* p) const {
    std::free(p);
}

}  // namespace mf
