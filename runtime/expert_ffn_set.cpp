#include "runtime/expert_ffn_set.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "codegen/kernel_fields.hpp"
#include "runtime/plan.hpp"

namespace mf {

std::vector<ExpertFfnChoice> expert_ffn_choices(const Plan& plan) {
    std::vector<ExpertFfnChoice> v;
    for (const PlannedKernel& k : plan.kernels)
        if (k.family == "moe_ffn" && k.role == "expert")
            v.push_back({k.m_min, k.m_max, fields_from_json<ExpertFfnConfig>(k.config)});
    return v;
}

ExpertFfnSet::ExpertFfnSet(const ExpertFfnDesc& desc, const std::vector<ExpertFfnChoice>& choices,
                           const ExpertFfnConfig& fallback, KernelCache& cache, int workers) {
    drivers_.push_back(std::make_unique<ExpertFfn>(desc, fallback, cache, workers));
    for (const ExpertFfnChoice& c : choices) {
        if (c.m_min < 1 || c.m_max < c.m_min)
            throw std::runtime_error(fmt::format("expert FFN config {}: bad token range {}..{}",
                                                 kernel_name(desc, c.config), c.m_min, c.m_max));
        for (const Range& r : ranges_)
            if (c.m_min <= r.m_max && r.m_min <= c.m_max)
                throw std::runtime_error(
                    fmt::format("expert FFN configs: token ranges {}..{} and {}..{} overlap", r.m_min,
                                r.m_max, c.m_min, c.m_max));
        ExpertFfn* d = nullptr;
        for (const auto& x : drivers_)
            if (x->config() == c.config) d = x.get();
        if (!d) {
            drivers_.push_back(std::make_unique<ExpertFfn>(desc, c.config, cache, workers));
            d = drivers_.back().get();
        }
        ranges_.push_back({c.m_min, c.m_max, d});
    }
}

int64_t ExpertFfnSet::tokens_per_expert(const ExpertFfnBatch& batch) {
    int64_t rows = 0, experts = 0;
    for (const ExpertRoute& r : batch.routes)
        if (!r.tokens.empty()) {
            rows += int64_t(r.tokens.size());
            ++experts;
        }
    return experts ? (rows + experts / 2) / experts : 0;
}

ExpertFfn& ExpertFfnSet::driver_for(int64_t tokens_per_expert) {
    for (const Range& r : ranges_)
        if (tokens_per_expert >= r.m_min && tokens_per_expert <= r.m_max) return *r.driver;
    return *drivers_.front();
}

void ExpertFfnSet::run(ThreadPool& pool, const ExpertFfnBatch& batch) {
    driver_for(tokens_per_expert(batch)).run(pool, batch);
}

bool ExpertFfnSet::uses_int4_super_blocks() const {
    for (const auto& d : drivers_)
        if (d->config().int4_sb_min_m > 0) return true;
    return false;
}

}  // namespace mf
