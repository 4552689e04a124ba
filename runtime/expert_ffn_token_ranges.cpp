#include "runtime/expert_ffn_token_ranges.hpp"

#include <algorithm>

namespace mf {
namespace {

// Rows of each route per range of `count` even ranges of [0, span): bounds as TokenRanges::bounds.
std::vector<int64_t> range_bounds(std::span<const std::span<const int32_t>> route_tokens, int64_t span, int count) {
    std::vector<int64_t> b;
    b.reserve(route_tokens.size() * size_t(count + 1));
    for (const auto& toks : route_tokens)
        for (int k = 0; k <= count; ++k) {
            const int64_t edge = span * k / count;
            b.push_back(k == count ? int64_t(toks.size())
                                   : std::lower_bound(toks.begin(), toks.end(), edge) - toks.begin());
        }
    return b;
}

}  // namespace

TokenRanges split_token_ranges(std::span<const std::span<const int32_t>> route_tokens,
                               std::span<const int64_t> route_step, int64_t column_items, int workers,
                               int max_ranges, int64_t min_rows) {
    TokenRanges best;
    int64_t span = 0, rows = 0, used = 0;
    bool ascending = true;
    for (const auto& toks : route_tokens) {
        rows += int64_t(toks.size());
        used += !toks.empty();
        for (size_t i = 0; i < toks.size(); ++i) {
            if (i && toks[i] <= toks[i - 1]) ascending = false;
            span = std::max<int64_t>(span, int64_t(toks[i]) + 1);
        }
    }
    if (!ascending || rows == 0 || column_items <= 0 || workers <= 0) {
        best.bounds = range_bounds(route_tokens, std::max<int64_t>(span, 1), 1);
        return best;
    }
    double best_score = -1;
    for (int count = 1; count <= max_ranges && count <= span; ++count) {
        if (count > 1 && rows < min_rows * used * count) break;
        std::vector<int64_t> b = range_bounds(route_tokens, span, count);
        int64_t computed = 0;
        for (size_t r = 0; r < route_tokens.size(); ++r) {
            const int64_t step = std::max<int64_t>(1, route_step[r]);
            for (int k = 0; k < count; ++k) {
                const int64_t n = b[r * size_t(count + 1) + size_t(k) + 1] - b[r * size_t(count + 1) + size_t(k)];
                computed += (n + step - 1) / step * step;
            }
        }
        const int64_t items = column_items * count, rounds = (items + workers - 1) / workers;
        const double score = double(items) / double(rounds * workers) * double(rows) / double(computed);
        if (score > best_score * 1.01) {
            best_score = score;
            best.count = count;
            best.bounds = std::move(b);
        }
    }
    return best;
}

}  // namespace mf
