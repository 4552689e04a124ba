// MLA's attention over the latent KV cache for a group of heads of one query, in one pass over the cache rows:
//   score[g][t] = scale * q[g] . row[t]           (q[g] = [q_lat | q_pe], row[t] = [c_kv | k_pe]: `row` values)
//   o_lat[g]    = sum_t softmax_t(score[g]) * row[t][0:kv_lora]
// Rows are taken in blocks of 16: each block's scores for every head of the group, then an online-softmax update
// (running max and sum, the accumulator rescaled only when the max grows), then the block's rows are added into the
// accumulators while they are still in L1, so the context is read once per group of up to 8 heads. The result of
// one head does not depend on the group it was computed in, nor on how the caller chunked queries or split heads
// over workers (blocks start at row 0).
#pragma once
#include <cstdint>

namespace mf {

constexpr int kLatentAttendMaxHeads = 8;

// q: heads rows of `row` floats, ldq apart; rows: ctx cache rows of `row` floats, contiguous; o_lat: heads rows of
// kv_lora floats, ldo apart (overwritten). 1 <= heads <= kLatentAttendMaxHeads, ctx >= 1, kv_lora <= row.
void attend_latent(const float* q, int64_t ldq, int heads, const float* rows, int64_t row, int64_t ctx,
                   int64_t kv_lora, float scale, float* o_lat, int64_t ldo);

}  // namespace mf
