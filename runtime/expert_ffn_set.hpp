// The fused expert FFN with a tuned config per range of tokens per expert: the plan's "moe_ffn" entries
// (PlannedKernel m_min..m_max) as drivers resolved up front, one per distinct config. Each batch runs on the
// driver whose range holds its tokens per expert: the routed rows over the experts that received any, rounded
// to the nearest whole number (a decode step of one token is 1; a prefill chunk of 256 tokens over 256
// experts of which 8 are picked per token is about 8). Token counts no range holds run the fallback config.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/expert_ffn.hpp"

namespace mf {

struct ExpertFfnChoice {
    int m_min = 1, m_max = 1 << 30;  // tokens per expert served, inclusive
    ExpertFfnConfig config;
    bool operator==(const ExpertFfnChoice&) const = default;
};

struct Plan;

// The plan's "moe_ffn" entries as choices, in the plan's order (throws std::runtime_error naming a bad
// config).
std::vector<ExpertFfnChoice> expert_ffn_choices(const Plan& plan);

class ExpertFfnSet {
  public:
    // Throws std::runtime_error for a config no kernel accepts (naming it) or for overlapping ranges.
    ExpertFfnSet(const ExpertFfnDesc& desc, const std::vector<ExpertFfnChoice>& choices,
                 const ExpertFfnConfig& fallback, KernelCache& cache, int workers);

    // Runs the batch on the driver chosen for its tokens per expert. Not reentrant.
    void run(ThreadPool& pool, const ExpertFfnBatch& batch);

    // The driver serving `tokens_per_expert` (the fallback's when no range holds it).
    ExpertFfn& driver_for(int64_t tokens_per_expert);
    // Distinct drivers (configs) held.
    size_t drivers() const { return drivers_.size(); }
    const ExpertFfnDesc& desc() const { return drivers_.front()->desc(); }
    // Whether any driver runs the int4 super-block kernel (int4_sb_min_m): only then need the packed weights keep
    // their Q4_K super-block form (+6.25% of the int4 bytes).
    bool uses_int4_super_blocks() const;

    // Routed rows over routes with at least one row, rounded to nearest (0 for a batch without rows).
    static int64_t tokens_per_expert(const ExpertFfnBatch& batch);

  private:
    struct Range {
        int m_min, m_max;
        ExpertFfn* driver;
    };
    std::vector<std::unique_ptr<ExpertFfn>> drivers_;  // [0]: the fallback
    std::vector<Range> ranges_;
};

}  // namespace mf
