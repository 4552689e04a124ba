#include "model/moe_router.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "model/reference_ops.hpp"

namespace mf {
namespace {

// Indices of the k largest values, best first, ties to the lower index.
std::vector<int> top_k(const std::vector<float>& v, int64_t k) {
    std::vector<int> idx(v.size());
    std::iota(idx.begin(), idx.end(), 0);
    // Only the first k are ordered (a decode step routes every token of every MoE layer through here).
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
        return v[size_t(a)] > v[size_t(b)] || (v[size_t(a)] == v[size_t(b)] && a < b);
    });
    idx.resize(size_t(k));
    return idx;
}

}  // namespace

RoutedExperts route_token(const DeepSeekV3Config& c, const float* logits, const float* bias) {
    const int64_t n = c.n_experts, per_group = c.experts_per_group();
    std::vector<float> score(static_cast<size_t>(n));
    if (c.sigmoid_gating) {
        for (int64_t e = 0; e < n; ++e) score[size_t(e)] = sigmoid(logits[e]);
    } else {
        const float mx = *std::max_element(logits, logits + n);
        double sum = 0;
        for (int64_t e = 0; e < n; ++e) sum += std::exp(double(logits[e] - mx));
        for (int64_t e = 0; e < n; ++e) score[size_t(e)] = float(std::exp(double(logits[e] - mx)) / sum);
    }
    std::vector<float> choice(score);
    if (bias)
        for (int64_t e = 0; e < n; ++e) choice[size_t(e)] += bias[e];

    RoutedExperts r;
    std::vector<float> group_score(size_t(c.n_groups));
    for (int64_t g = 0; g < c.n_groups; ++g) {
        std::vector<float> members(choice.begin() + g * per_group, choice.begin() + (g + 1) * per_group);
        std::sort(members.begin(), members.end(), std::greater<float>());
        group_score[size_t(g)] = c.sigmoid_gating && per_group >= 2 ? members[0] + members[1] : members[0];
    }
    r.groups = top_k(group_score, c.n_groups_used);
    std::vector<float> masked(size_t(n), -std::numeric_limits<float>::infinity());
    for (int g : r.groups)
        for (int64_t e = g * per_group; e < (g + 1) * per_group; ++e) masked[size_t(e)] = choice[size_t(e)];
    r.ids = top_k(masked, c.n_experts_used);
    r.margin = std::numeric_limits<float>::infinity();
    if (c.n_groups_used < c.n_groups) {
        const auto kept_all = top_k(group_score, c.n_groups_used + 1);
        r.margin = group_score[size_t(kept_all[size_t(c.n_groups_used - 1)])] -
                   group_score[size_t(kept_all[size_t(c.n_groups_used)])];
    }
    if (c.n_experts_used < n) {
        const auto chosen_all = top_k(masked, c.n_experts_used + 1);
        const float next = masked[size_t(chosen_all[size_t(c.n_experts_used)])];
        if (std::isfinite(next))
            r.margin = std::min(r.margin, masked[size_t(chosen_all[size_t(c.n_experts_used - 1)])] - next);
    }

    double sum = 0;
    for (int e : r.ids) sum += score[size_t(e)];
    for (int e : r.ids) {
        float w = score[size_t(e)];
        if (c.norm_topk_prob && sum > 0) w = float(double(w) / sum);
        r.weights.push_back(w * c.routed_scaling);
    }
    return r;
}

}  // namespace mf
