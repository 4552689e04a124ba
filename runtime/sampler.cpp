#include "runtime/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_set>

namespace mf {

void SamplerParams::validate() const {
    auto bad = [](const char* what) { throw std::invalid_argument(what); };
    if (!(temperature >= 0) || !std::isfinite(temperature)) bad("--temperature must be >= 0");
    if (top_k < 0) bad("--top-k must be >= 0 (0 disables it)");
    if (!(top_p > 0 && top_p <= 1)) bad("--top-p must be in (0, 1]");
    if (!(min_p >= 0 && min_p < 1)) bad("--min-p must be in [0, 1)");
    if (!(repetition_penalty > 0) || !std::isfinite(repetition_penalty)) bad("--repeat-penalty must be > 0");
    if (repetition_window < 0) bad("--repeat-window must be >= 0");
}

Sampler::Sampler(const SamplerParams& p) : p_(p), rng_(p.seed) { p_.validate(); }

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> recent) {
    if (logits.empty()) throw std::invalid_argument("sampler: empty logits");
    candidates_.resize(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) candidates_[i] = {logits[i], int32_t(i)};

    if (p_.repetition_penalty != 1.0f && p_.repetition_window > 0) {
        // Same rule as llama.cpp and HF: divide positive logits, multiply negative ones; once per distinct token.
        const size_t n = std::min(recent.size(), size_t(p_.repetition_window));
        std::unordered_set<int32_t> seen(recent.end() - n, recent.end());
        for (int32_t t : seen) {
            if (t < 0 || size_t(t) >= candidates_.size()) continue;
            float& l = candidates_[t].first;
            l = l > 0 ? l / p_.repetition_penalty : l * p_.repetition_penalty;
        }
    }
    auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
    if (p_.temperature == 0.0f)
        return std::min_element(candidates_.begin(), candidates_.end(), by_logit)->second;

    size_t keep = candidates_.size();
    if (p_.top_k > 0 && size_t(p_.top_k) < keep) {
        keep = size_t(p_.top_k);
        std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), by_logit);
    } else {
        std::sort(candidates_.begin(), candidates_.end(), by_logit);
    }
    candidates_.resize(keep);
    // Softmax at temperature over the survivors, in place: first = probability.
    const float max_l = candidates_.front().first;
    double sum = 0;
    for (auto& c : candidates_) sum += (c.first = std::exp((c.first - max_l) / p_.temperature));
    for (auto& c : candidates_) c.first = float(c.first / sum);
    if (p_.min_p > 0) {
        const float floor = p_.min_p * candidates_.front().first;
        while (candidates_.size() > 1 && candidates_.back().first < floor) candidates_.pop_back();
    }
    if (p_.top_p < 1) {
        double cum = 0;
        size_t n = 0;
        while (n < candidates_.size() && cum < p_.top_p) cum += candidates_[n++].first;
        candidates_.resize(std::max<size_t>(n, 1));
    }
    double total = 0;
    for (const auto& c : candidates_) total += c.first;
    std::uniform_real_distribution<double> u(0.0, total);
    double r = u(rng_);
    for (const auto& c : candidates_) {
        if (r < c.first) return c.second;
        r -= c.first;
    }
    return candidates_.back().second;
}

}  // namespace mf
