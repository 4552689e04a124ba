// Streaming-read kernel for the DRAM bandwidth figure: sums a buffer as 64-bit lanes so the reads can't be elided
// and the result can be checked.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "codegen/x64/jit_kernel.hpp"

namespace mf {

struct StreamReadDesc {
    int unroll_bytes = 512;  // bytes per loop iteration, a multiple of 64
    int prefetch_bytes = 0;  // software prefetch (prefetcht0) this far ahead of each line read, a multiple of 64;
                             // 0: none (the hardware prefetchers alone)
    std::string name() const {
        return "stream_read_u64sum_" + std::to_string(unroll_bytes) + "b" +
               (prefetch_bytes ? "_pf" + std::to_string(prefetch_bytes) : "");
    }
};

// bytes: a multiple of desc.unroll_bytes; src 64-byte aligned. out[i] = sum of the u64 words at index = i mod 8.
struct StreamReadArgs {
    const void* src;
    uint64_t bytes;
    uint64_t* out;
};

std::unique_ptr<JitKernel> make_stream_read_kernel(const StreamReadDesc& desc);

}  // namespace mf
