// Group-limited top-k routing (DeepSeek-V3: 256 experts in 8 groups, keep 4 groups, top 8), one warp per token.
// Scores (sigmoid or softmax of the logits) and the biased selection scores live in shared memory. A group's
// score is the sum of its GROUP_TOP best selection scores; lane 0 keeps the KEEP best groups; then TOP_K rounds
// of a warp argmax over the kept experts (ties go to the lower index) pick the experts.
#pragma once
#include "bf16.cuh"
#include "layer_params.cuh"

namespace mf {

constexpr int kRouterWarps = 4;

template <int E, int GROUPS, int KEEP, int GROUP_TOP, int TOP_K, bool SIGMOID, bool NORMALIZE>
__device__ __forceinline__ void router_topk(const RouterTopkParams& p) {
    constexpr int GS = E / GROUPS;
    static_assert(E % GROUPS == 0 && KEEP <= GROUPS && GROUP_TOP <= GS && TOP_K <= KEEP * GS, "bad routing shape");
    __shared__ float s_score[kRouterWarps][E];
    __shared__ float s_sel[kRouterWarps][E];
    __shared__ float s_group[kRouterWarps][GROUPS];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int tok = blockIdx.x * kRouterWarps + warp;
    if (tok >= p.tokens) return;
    const float* logits = p.logits + (size_t)tok * E;
    float* score = s_score[warp];
    float* sel = s_sel[warp];

    if (SIGMOID) {
        for (int e = lane; e < E; e += 32) score[e] = 1.f / (1.f + expf(-logits[e]));
    } else {
        float mx = neg_inf();
        for (int e = lane; e < E; e += 32) mx = fmaxf(mx, logits[e]);
        mx = warp_max(mx);
        float sum = 0.f;
        for (int e = lane; e < E; e += 32) sum += expf(logits[e] - mx);
        sum = warp_sum(sum);
        for (int e = lane; e < E; e += 32) score[e] = expf(logits[e] - mx) / sum;
    }
    for (int e = lane; e < E; e += 32) sel[e] = score[e] + (p.bias ? p.bias[e] : 0.f);
    __syncwarp();

    // group scores: lane gi sums the GROUP_TOP best of its group
    for (int gi = lane; gi < GROUPS; gi += 32) {
        float best[GROUP_TOP];
        for (int j = 0; j < GROUP_TOP; ++j) best[j] = neg_inf();
        for (int e = gi * GS; e < (gi + 1) * GS; ++e) {
            float v = sel[e];
            for (int j = 0; j < GROUP_TOP; ++j)
                if (v > best[j]) {
                    const float tmp = best[j];
                    best[j] = v;
                    v = tmp;
                }
        }
        float s = 0.f;
        for (int j = 0; j < GROUP_TOP; ++j) s += best[j];
        s_group[warp][gi] = s;
    }
    __syncwarp();
    if (lane == 0 && KEEP < GROUPS) {
        bool keep[GROUPS];
        for (int gi = 0; gi < GROUPS; ++gi) keep[gi] = false;
        for (int k = 0; k < KEEP; ++k) {
            int best = -1;
            for (int gi = 0; gi < GROUPS; ++gi)
                if (!keep[gi] && (best < 0 || s_group[warp][gi] > s_group[warp][best])) best = gi;
            keep[best] = true;
        }
        for (int gi = 0; gi < GROUPS; ++gi)
            if (!keep[gi])
                for (int e = gi * GS; e < (gi + 1) * GS; ++e) sel[e] = neg_inf();
    }
    __syncwarp();

    int chosen_id = 0;     // lane k < TOP_K keeps the k-th pick
    float chosen_w = 0.f;
    float wsum = 0.f;
    for (int k = 0; k < TOP_K; ++k) {
        float bv = neg_inf();
        int bi = E;
        for (int e = lane; e < E; e += 32)
            if (sel[e] > bv) {
                bv = sel[e];
                bi = e;
            }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (ov > bv || (ov == bv && oi < bi)) {
                bv = ov;
                bi = oi;
            }
        }
        const float w = score[bi];
        wsum += w;
        if (lane == k) {
            chosen_id = bi;
            chosen_w = w;
        }
        __syncwarp();
        if (lane == 0) sel[bi] = neg_inf();
        __syncwarp();
    }
    if (lane < TOP_K) {
        const float w = NORMALIZE ? chosen_w / (wsum + 1e-20f) : chosen_w;
        p.ids[(size_t)tok * TOP_K + lane] = chosen_id;
        p.weights[(size_t)tok * TOP_K + lane] = w * p.routed_scale;
    }
}

}  // namespace mf
