// A dense projection y[m][n] = sum_k x[m][k] * W[n][k] with W packed once at load, in one compute type:
//   f32  - AVX-512 FMA over fp32 rows (the router, whose scores are taken in fp32);
//   bf16 - AVX-512 BF16 (vdpbf16ps) over bf16 rows, activations rounded to bf16;
//   int8 - the JIT expert kernels (codegen/x64): per-channel int8 weights, activations quantised per row to int8;
//          AVX-512 VNNI GEMV for up to 16 rows, AMX for more.
// Work is split over output channels among the workers of a thread pool (or a subset of them: the workers of one
// NUMA node), with no lock: each worker owns a contiguous range of 64-channel units.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codegen/x64/pack_int8.hpp"

namespace mf {

class ThreadPool;
class KernelCache;
class JitKernel;

enum class ComputeType { f32, bf16, int8, int4 };  // int4: routed experts only (fused expert FFN)
std::string compute_type_name(ComputeType t);
ComputeType parse_compute_type(const std::string& s);  // throws std::invalid_argument naming the value

// Workers [first, first + count) of a pool; count 0 means all of them.
struct WorkerRange {
    int first = 0;
    int count = 0;
};

// The JIT kernels one reduction length needs, resolved once at load (no lookup on the hot path).
struct Int8Kernels {
    const JitKernel* gemv[17] = {};  // gemv[m] for m = 1..16 rows
    const JitKernel* amx = nullptr;  // 16 * amx_rows-row blocks; null where AMX is unavailable
    int amx_rows = 32;               // rows per AMX step (16 * m_tiles)
    int amx_panels = 2;              // panels per AMX step (n_tiles)
};

class Linear {
public:
    Linear() = default;
    // src: [n][k] weights (f32, bf16 or int8 + per-row scale). cache: for int8 kernels (may be null otherwise).
    static Linear pack(const MatrixSrc& src, ComputeType type, KernelCache* cache, int numa_node = -1);

    int64_t n() const { return n_; }
    int64_t k() const { return k_; }
    ComputeType type() const { return type_; }
    size_t weight_bytes() const;
    bool empty() const { return n_ == 0; }

    // y (m rows of ldy floats, ldy >= n) = x (m rows of ldx floats) * W^T. pool null: on the calling thread.
    void forward(const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy, ThreadPool* pool,
                 WorkerRange workers = {}) const;
    void forward(const float* x, int64_t m, float* y, ThreadPool* pool, WorkerRange workers = {}) const {
        forward(x, k_, m, y, n_, pool, workers);
    }

private:
    void run_units(const void* act, const float* act_scale, const int32_t* act_sum, int64_t m, float* y,
                   int64_t ldy, int64_t unit0, int64_t unit1, int32_t* scratch) const;

    ComputeType type_ = ComputeType::f32;
    int64_t n_ = 0, k_ = 0;
    int64_t k_pad_ = 0;     // f32/bf16: k rounded to 32; int8: to 64
    AlignedBytes rows_;     // f32/bf16: n rows of k_pad values
    std::shared_ptr<PackedMatrix> packed_;  // int8
    Int8Kernels kernels_;
};

// Number of 64-channel work units of an n-channel projection.
inline int64_t linear_units(int64_t n) { return (n + 63) / 64; }

}  // namespace mf
