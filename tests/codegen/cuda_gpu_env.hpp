// Shared state of the GPU tests: one context, the device's arch, a CUBIN cache under the build dir.
// Without a GPU (CI) `skip_reason` says why and each GPU test prints it with MESSAGE and returns.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "codegen/cuda/cuda_context.hpp"
#include "codegen/cuda/cuda_dtype.hpp"
#include "codegen/cuda/cuda_kernel_build.hpp"
#include "codegen/cuda/cuda_memory.hpp"
#include "codegen/cuda/nvrtc_compiler.hpp"

namespace mf::test {

struct GpuTestEnv {
    std::unique_ptr<CudaContext> ctx;
    CudaArch arch;
    int sm = 0;
    std::filesystem::path cache;
    std::string skip_reason;

    std::unique_ptr<CudaKernel> build(const CudaKernelSource& src) const {
        return build_cuda_kernel(src, arch, cache);
    }
};

inline GpuTestEnv& gpu_test_env() {
    static GpuTestEnv env = [] {
        GpuTestEnv e;
        if (!nvrtc_available()) {
            e.skip_reason = "moeforge was built without NVRTC";
            return e;
        }
        const GpuQuery q = query_cuda_gpus();
        if (q.gpus.empty()) {
            e.skip_reason = "no CUDA GPU here (" + q.unavailable + "); these tests run on the device machine";
            return e;
        }
        e.ctx = std::make_unique<CudaContext>(0);
        e.arch = CudaArch::for_device(q.gpus[0].cc_major, q.gpus[0].cc_minor);
        e.sm = q.gpus[0].cc_major * 10 + q.gpus[0].cc_minor;
        e.cache = std::filesystem::path(MOEFORGE_BINARY_DIR) / "test_tmp" / "cuda_cache";
        return e;
    }();
    if (env.ctx) env.ctx->make_current();
    return env;
}

#define MF_GPU_TEST_OR_SKIP(env)                          \
    auto& env = ::mf::test::gpu_test_env();               \
    if (!env.ctx) {                                       \
        MESSAGE("GPU test skipped: " << env.skip_reason); \
        return;                                           \
    }

inline uint16_t to_bf16(float f) { return bf16_from_float(f); }
inline float from_bf16(uint16_t h) { return bf16_to_float32(h); }

inline std::vector<uint16_t> random_bf16(size_t n, std::mt19937& rng, float lo = -1.f, float hi = 1.f) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<uint16_t> v(n);
    for (auto& x : v) x = to_bf16(d(rng));
    return v;
}

template <class T>
DeviceBuffer to_device(const std::vector<T>& v) {
    DeviceBuffer b(v.size() * sizeof(T) + 16);
    b.upload(v.data(), v.size() * sizeof(T));
    return b;
}

template <class T>
std::vector<T> from_device(const DeviceBuffer& b, size_t n) {
    std::vector<T> v(n);
    b.download(v.data(), n * sizeof(T));
    return v;
}

// ||a - b|| / ||b||; NaN anywhere in a gives infinity.
inline double rel_l2(const std::vector<double>& a, const std::vector<double>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::isnan(a[i])) return INFINITY;
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return std::sqrt(num / (den > 0 ? den : 1));
}

}  // namespace mf::test
