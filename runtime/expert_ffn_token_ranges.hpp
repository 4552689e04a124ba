// The down pass of the fused expert FFN splits its work by output column block; this adds a split by token: item
// (column block, token range) owns the y rows of its tokens in its columns, so items never write the same element,
// the 16-core device gets a multiple of its workers (7168 / 256 = 28 column blocks leave 4 of 16 workers idle for a
// round), and a y tile stays in L2 across the routes of the item instead of being re-read from L3 per route.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace mf {

struct TokenRanges {
    int count = 1;                // ranges of token ids (1: no split)
    std::vector<int64_t> bounds;  // route r, range k: rows [bounds[r (count + 1) + k], bounds[r (count + 1) + k + 1])
    int64_t lo(size_t route, int k) const { return bounds[route * size_t(count + 1) + size_t(k)]; }
    int64_t hi(size_t route, int k) const { return bounds[route * size_t(count + 1) + size_t(k) + 1]; }
};

// route_tokens: each route's token ids; route_step: the rows one kernel call of the route rounds up to (1 for the
// GEMV). Ranges split the token ids [0, max + 1) evenly; a route's rows of one range are contiguous only when its
// tokens ascend, so any route that does not ascend gives count 1. The count (1..max_ranges) maximises
// (column_items x count) / (that rounded up to a multiple of workers) x (routed rows) / (rows the kernels compute,
// each (route, range) rounded up to its step); a larger count must win by more than 1%, and keep on average at
// least min_rows rows per non-empty route and range (each range re-reads the routes' weights of its column block).
TokenRanges split_token_ranges(std::span<const std::span<const int32_t>> route_tokens,
                               std::span<const int64_t> route_step, int64_t column_items, int workers,
                               int max_ranges = 8, int64_t min_rows = 1);

}  // namespace mf
