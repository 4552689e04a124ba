// Benchmark problems and candidates for the fused routed-expert FFN (runtime/expert_ffn.hpp, ExpertFfnConfig): a
// batch of experts with m tokens each on the model's real shapes, weights streamed from a pool of distinct experts
// larger than the last-level cache. Candidates are verified against a scalar reference of the whole FFN (quantise,
// int32 gate/up, SiLU*up, requantise, down, router-weighted accumulate) on a small ragged batch with the real widths:
// one token routed to three experts, experts of 1, 3 and 21 tokens and one with none.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "codegen/kernel_cache.hpp"
#include "codegen/x64/expert_ffn_desc.hpp"
#include "runtime/expert_ffn.hpp"
#include "runtime/plan.hpp"
#include "runtime/thread_pool.hpp"
#include "tune/search.hpp"

namespace mf {

// Experts in one benchmark batch of m tokens per expert: top-k experts for decode-sized m, fewer for large m so a
// call stays short (the work per expert grows with m). Every expert of the call takes the same m tokens: at m = 1
// this is a decode step (one token routed to its top-k experts), and as no benchmark call has more experts than
// top-k, it is how m tokens each routed to top-k experts meet. `bench kernels` (tune's final check) poses the same
// calls: this many experts per call, all on the same m tokens.
int ffn_bench_experts(const ModelShape& s, int m);

class ExpertFfnBench {
public:
    ExpertFfnBench(ThreadPool& pool, KernelCache& cache, const ModelShape& shape, uint64_t pool_bytes);
    ~ExpertFfnBench();

    // Candidates for m tokens per expert: each of `cfgs` (the first is the default and must be marked so).
    std::vector<Candidate> candidates(int m, const std::vector<ExpertFfnConfig>& cfgs, int default_index);

    double time(int m, const ExpertFfnConfig& c, double seconds);
    std::string verify(const ExpertFfnConfig& c);

    ExpertFfnDesc desc() const;
    double ops(int m) const;           // multiply-adds x 2 of one benchmark call
    double weight_bytes(int m) const;  // expert weight bytes one call streams
    int pool_experts() const { return int(pool_.size()); }

private:
    struct VerifyProblem;
    const VerifyProblem& verify_problem();
    ExpertFfn& driver(const ExpertFfnConfig& c);

    ThreadPool& threads_;
    KernelCache& cache_;
    ModelShape shape_;
    std::vector<ExpertFfnWeights> pool_;
    std::vector<std::unique_ptr<ExpertFfn>> drivers_;
    std::vector<ExpertFfnConfig> driver_cfgs_;
    std::unique_ptr<VerifyProblem> verify_;
    std::vector<std::pair<ExpertFfnConfig, std::string>> verified_;  // the result does not depend on m
    std::vector<float> x_, y_;
    std::vector<int32_t> tokens_;
    std::vector<float> gates_;
    uint64_t next_ = 0;
};

}  // namespace mf
