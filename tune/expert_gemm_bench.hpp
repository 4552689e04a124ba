// Benchmark problems and search candidates for the expert GEMM kernels (codegen/x64: AMX int8 GEMM, AVX-512 VNNI
// GEMV) on a model's real shapes. One problem: m tokens through one GEMM of a routed expert (gate+up interleaved,
// or down), with the weights streamed from a pool of distinct experts larger than the last-level cache, so the
// kernels read DRAM as they do in a real MoE layer. Work is split over the thread pool by output panels (how
// experts are shared between threads is the fused driver's n_block, tuned in expert_ffn_bench.hpp).
//
// Every candidate is verified against a scalar int32 reference on a small ragged problem with the real K before
// it is timed (exact: the accumulation is integer).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codegen/kernel_cache.hpp"
#include "codegen/x64/expert_gemm_desc.hpp"
#include "codegen/x64/pack_int8.hpp"
#include "runtime/plan.hpp"
#include "runtime/thread_pool.hpp"
#include "tune/search.hpp"

namespace mf {

// One GEMM of a routed expert: n output channels over a reduction of k.
struct GemmRole {
    std::string name;  // "gate_up" or "down"
    int k = 0, n = 0;
};

// gate_up: n = 2 x moe_intermediate over k = hidden; down: n = hidden over k = moe_intermediate.
std::vector<GemmRole> expert_gemm_roles(const ModelShape& s);

// The candidate grids (valid combinations only; the default Config first).
std::vector<GemvConfig> gemv_config_grid(int m);
std::vector<AmxGemmConfig> amx_config_grid();

class ExpertGemmBench {
public:
    // pool_bytes: size of the weight pool shared by all roles (the caller picks it beyond the LLC).
    ExpertGemmBench(ThreadPool& pool, KernelCache& cache, const HostFigures& host, uint64_t pool_bytes);

    std::vector<Candidate> gemv_candidates(const GemmRole& r, int m);
    std::vector<Candidate> amx_candidates(const GemmRole& r, int m);
    // Seconds per call (one expert GEMM of m tokens, all workers), for the hand-over threshold.
    double time_gemv(const GemmRole& r, int m, const GemvConfig& c, double seconds);
    double time_amx(const GemmRole& r, int m, const AmxGemmConfig& c, double seconds);

    static double ops(const GemmRole& r, int m) { return 2.0 * m * double(r.n) * r.k; }
    static double weight_bytes(const GemmRole& r) { return double(round_up(r.n, kNAlign)) * round_up(r.k, kKAlign); }
    int workers() const { return pool_.size(); }
    int pool_experts(const GemmRole& r) const;

private:
    struct Bound;  // a kernel with its step sizes
    Bound bind_gemv(const GemmRole& r, int m, const GemvConfig& c);
    Bound bind_amx(const GemmRole& r, int m, const AmxGemmConfig& c);
    // Runs `experts` consecutive pool experts (from *next) through the kernel on all workers.
    void run(const GemmRole& r, const Bound& b, int experts, int threads_per_expert, uint64_t& next);
    double time_bound(const GemmRole& r, const Bound& b, int experts, int threads_per_expert, double seconds);
    std::string verify_bound(const GemmRole& r, const Bound& b, int experts, int threads_per_expert);
    double bound_seconds(const GemmRole& r, int m_computed, bool amx) const;
    void ensure_buffers(const GemmRole& r, int rows, int experts);

    ThreadPool& pool_;
    KernelCache& cache_;
    HostFigures host_;
    AlignedBytes weights_;
    AlignedBytes act_;
    std::vector<AlignedBytes> out_;  // one C buffer per concurrently running expert
    uint64_t next_ = 0;
    std::map<std::string, std::string> verified_;  // kernel name -> result (AMX results do not depend on m)
};

}  // namespace mf
