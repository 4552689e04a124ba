// The device headers codegen/cuda/kernels/*.cuh, embedded at build time by codegen/cuda/embed.cmake.
#pragma once
#include <string_view>
#include <vector>

namespace mf {

struct EmbeddedHeader {
    std::string_view name;  // as written in #include "..." (e.g. "mla_decode.cuh")
    std::string_view text;
};

// Sorted by name; the same on every call.
const std::vector<EmbeddedHeader>& embedded_cuda_headers();

}  // namespace mf
