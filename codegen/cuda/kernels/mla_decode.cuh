// MLA decode in absorbed form over a paged latent cache, split over the context (split-K), plus the combine step.
//
// One CTA = one split of the context x 64 heads x one query row; 8 warps, 256 threads, one CTA per SM.
// Per tile of TILE cache tokens, K = V = the tile's [latent | rope] rows (latent only for V):
//   phase A  S[64 heads][TILE] = Q . K^T over latent + rope dims. Warp w: heads 16*(w%4).., tokens (w/4)*TILE/2..
//            (ldmatrix A from Q, B from K, mma.sync m16n8k16). Row max exchanged between the two token halves
//            through shared memory; P = exp2(S*scale*log2e - m) goes to shared memory as bf16.
//   phase B  O[64][latent] += P . V. Warp w owns latent columns 64w..64w+63 for all 64 heads (4 m-tiles x 8
//            n-tiles = 128 fp32 accumulators per thread); B fragments from K with ldmatrix.trans.
// Shared memory: Q [64][D] and STAGES x K [TILE][D] with 16-byte chunks XOR-swizzled by row % 8 (rows are
// 1152 bytes, a multiple of 128, so without the swizzle ldmatrix would hit one bank 8 times); P [64][TILE+8]
// padded; small row buffers. With STAGES == 2 the next tile streams in (cp.async) while this one is computed.
// Each split writes its normalised partial O (fp32) and its log2-sum-exp; mla_combine merges the splits.
// CLUSTER > 1 (sm_90): CLUSTER consecutive splits form a thread-block cluster; each stages its partial O in its own
// shared memory (over the Q/K buffers, rows padded to LATENT + 8 floats), and after a cluster barrier CTA rank r
// merges rows r*64/CLUSTER.. of all CLUSTER partials through distributed shared memory, so only
// num_splits / CLUSTER partials per head reach global memory (at batch 1 the partials outweigh the cache itself).
#pragma once
#include "bf16.cuh"
#include "cluster_sm90.cuh"
#include "grid_dependency.cuh"
#include "mla_params.cuh"
#include "mma_sm80.cuh"

namespace mf {

constexpr int kMlaHeadsPerCta = 64;
constexpr int kMlaWarps = 8;

template <int LATENT, int ROPE, int TILE, int STAGES>
struct MlaDecodeSmem {
    static constexpr int D = LATENT + ROPE;
    static constexpr int q_bytes = kMlaHeadsPerCta * D * 2;
    static constexpr int k_bytes = TILE * D * 2;
    static constexpr int p_stride = TILE + 8;  // bf16 elements per P row
    static constexpr int p_bytes = kMlaHeadsPerCta * p_stride * 2;
    static constexpr int row_bytes = 5 * kMlaHeadsPerCta * 4;  // red_max[2], red_sum[2], alpha
    static constexpr int total = q_bytes + STAGES * k_bytes + p_bytes + row_bytes;
};

// Byte offset of 16-byte chunk c of row r in a swizzled [rows][D] bf16 tile.
template <int D>
__device__ __forceinline__ unsigned swz(int r, int c) {
    return (unsigned)(r * D * 2 + ((c ^ (r & 7)) << 4));
}

// The cut of a row's context into splits, shared by every decode kernel and matching the host's split count: whole
// tiles, the same number per split, so the last splits may be short or empty.
struct MlaSplitTiles {
    int tiles_per_split, t_begin, t_end, n_tiles;  // tokens [t_begin, t_end) of the row in n_tiles tiles
};
template <int TILE>
__device__ __forceinline__ MlaSplitTiles mla_split_tiles(int len, int num_splits, int split) {
    MlaSplitTiles s;
    s.tiles_per_split = ((len + TILE - 1) / TILE + num_splits - 1) / num_splits;
    s.t_begin = split * s.tiles_per_split * TILE;
    s.t_end = min(len, s.t_begin + s.tiles_per_split * TILE);
    s.n_tiles = s.t_end > s.t_begin ? (s.t_end - s.t_begin + TILE - 1) / TILE : 0;
    return s;
}

// Zeros rows 0 .. min(64, rows_left) - 1 of a [rows][LATENT] bf16 output block (a row without context).
template <int LATENT>
__device__ __forceinline__ void mla_zero_rows(bf16* dst, int rows_left, int tid, int threads) {
    const int rows = min(rows_left, 64);
    for (int i = tid; i < rows * (LATENT / 8); i += threads)
        reinterpret_cast<uint4*>(dst)[i] = make_uint4(0u, 0u, 0u, 0u);
}

// A split without tokens (a row shorter than its splits): it writes the final rows as zeros when it is the only
// split, else lse -inf for its partials (weight 0 in the merge). Every thread of the CTA calls it, then returns.
template <int HEADS, int LATENT, int HB>
__device__ __forceinline__ void mla_empty_split(const MlaDecodeParams& p, size_t part_row, int head0, int split,
                                                bool direct, int tid) {
    if (direct)
        mla_zero_rows<LATENT>(p.out + (part_row + head0) * LATENT, HEADS - head0, tid, blockDim.x);
    else
        for (int r = tid; r < HB; r += blockDim.x)
            if (head0 + r < HEADS) p.lse_part[(part_row + head0 + r) * p.num_splits + split] = neg_inf();
}

template <int HEADS, int LATENT, int ROPE, int PAGE, int TILE, int STAGES, int CLUSTER>
__device__ __forceinline__ void mla_decode(const MlaDecodeParams& p) {
    constexpr int D = LATENT + ROPE;
    constexpr int CH = D / 8;  // 16-byte chunks per row
    constexpr int HB = kMlaHeadsPerCta;
    constexpr int NT = TILE / 16;  // n8 tiles per warp in phase A (TILE/2 tokens)
    using Smem = MlaDecodeSmem<LATENT, ROPE, TILE, STAGES>;
    static_assert(LATENT == 64 * kMlaWarps, "phase B gives each warp 64 latent columns");
    static_assert(D % 64 == 0, "rows must be whole groups of 8 chunks for the swizzle");
    static_assert(TILE == 16 || TILE == 32 || TILE == 64, "tile of 16, 32 or 64 tokens");
    static_assert(STAGES == 1 || STAGES == 2, "one or two K stages");
    static_assert(CLUSTER == 1 || CLUSTER == 2 || CLUSTER == 4 || CLUSTER == 8, "cluster of 1, 2, 4 or 8 splits");
    static_assert(CLUSTER == 1 || HB * (LATENT + 8) * 4 <= Smem::q_bytes + STAGES * Smem::k_bytes,
                  "the staged partial O must fit over the Q and K buffers");

    extern __shared__ __align__(128) unsigned char smem[];
    unsigned char* sQ = smem;
    unsigned char* sK = smem + Smem::q_bytes;
    bf16* sP = reinterpret_cast<bf16*>(sK + STAGES * Smem::k_bytes);
    float* red_max = reinterpret_cast<float*>(reinterpret_cast<unsigned char*>(sP) + Smem::p_bytes);  // [2][HB]
    float* red_sum = red_max + 2 * HB;                                                                 // [2][HB]
    float* s_alpha = red_sum + 2 * HB;                                                                 // [HB]

    const int split = blockIdx.x, head0 = blockIdx.y * HB, b = blockIdx.z;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;

    const int len = p.seq_lens[b];
    const MlaSplitTiles cut = mla_split_tiles<TILE>(len, p.num_splits, split);
    const int t_begin = cut.t_begin, t_end = cut.t_end, n_tiles = cut.n_tiles;

    const size_t part_row = (size_t)b * HEADS;  // + head, then * num_splits + split
    const bool direct = CLUSTER == 1 && p.num_splits == 1 && p.out != nullptr;  // final output, no partials
    if (CLUSTER == 1 && n_tiles == 0) {
        mla_empty_split<HEADS, LATENT, HB>(p, part_row, head0, split, direct, tid);
        return;
    }

    const int* table = p.block_table + (size_t)b * p.block_table_stride;
    auto load_tile = [&](int i, int stage) {
        unsigned char* dst = sK + stage * Smem::k_bytes;
        for (int idx = tid; idx < TILE * CH; idx += kMlaWarps * 32) {
            const int r = idx / CH, c = idx % CH;
            const int tok = t_begin + i * TILE + r;
            const bool valid = tok < t_end;
            const unsigned short* src = p.kv_cache;
            if (valid) src += ((size_t)table[tok / PAGE] * PAGE + tok % PAGE) * D + c * 8;
            cp_async_16(dst + swz<D>(r, c), src, valid);
        }
    };

    // Q rows of this head block (rows past HEADS are zero) and the first tile: one async group.
    for (int idx = tid; idx < HB * CH; idx += kMlaWarps * 32) {
        const int r = idx / CH, c = idx % CH;
        const bool valid = head0 + r < HEADS;
        const unsigned short* src = p.q;
        if (valid) src += (part_row + head0 + r) * D + c * 8;
        cp_async_16(sQ + swz<D>(r, c), src, valid);
    }
    load_tile(0, 0);
    cp_async_commit();

    const float sl2 = p.scale * 1.4426950408889634f;
    const int hg = warp & 3, th = warp >> 2;  // phase A: head group, token half
    float m_run[2] = {neg_inf(), neg_inf()};  // rows g, g+8 of head group hg (log2 domain)
    float l_run[2] = {0.f, 0.f};              // this thread's partial row sums
    float o[4][8][4];
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) o[mt][nt][e] = 0.f;

    const unsigned sQa = smem_addr(sQ);
    for (int i = 0; i < n_tiles; ++i) {
        cp_async_wait_all();
        __syncthreads();
        if (STAGES == 2 && i + 1 < n_tiles) {
            load_tile(i + 1, (i + 1) & 1);
            cp_async_commit();
        }
        const unsigned sKa = smem_addr(sK + (STAGES == 2 ? (i & 1) : 0) * Smem::k_bytes);
        const int tile_start = t_begin + i * TILE;

        // ---- phase A: S = Q K^T for 16 heads x TILE/2 tokens
        float s[NT][4];
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) s[nt][e] = 0.f;
        const int arow = hg * 16 + (lane & 15);
        const int tok0 = th * (TILE / 2);
#pragma unroll 4
        for (int ks = 0; ks < D / 16; ++ks) {
            unsigned a[4];
            ldmatrix_x4(sQa + swz<D>(arow, ks * 2 + (lane >> 4)), a[0], a[1], a[2], a[3]);
            if constexpr (NT == 1) {
                unsigned b0, b1;
                ldmatrix_x2(sKa + swz<D>(tok0 + (lane & 7), ks * 2 + ((lane >> 3) & 1)), b0, b1);
                mma_bf16_16816(s[0], a, b0, b1);
            } else {
#pragma unroll
                for (int np = 0; np < NT / 2; ++np) {
                    const int mat = lane >> 3;
                    const int row = tok0 + np * 16 + (mat >> 1) * 8 + (lane & 7);
                    unsigned b0, b1, b2, b3;
                    ldmatrix_x4(sKa + swz<D>(row, ks * 2 + (mat & 1)), b0, b1, b2, b3);
                    mma_bf16_16816(s[2 * np], a, b0, b1);
                    mma_bf16_16816(s[2 * np + 1], a, b2, b3);
                }
            }
        }
        // scale, mask the tail, row max over this warp's tokens
        float mx[2] = {neg_inf(), neg_inf()};
#pragma unroll
        for (int nt = 0; nt < NT; ++nt)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int tok = tile_start + tok0 + nt * 8 + 2 * t + (e & 1);
                s[nt][e] = tok < t_end ? s[nt][e] * sl2 : neg_inf();
                mx[e >> 1] = fmaxf(mx[e >> 1], s[nt][e]);
            }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
            mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
        }
        if (t == 0) {
            red_max[th * HB + hg * 16 + g] = mx[0];
            red_max[th * HB + hg * 16 + g + 8] = mx[1];
        }
        __syncthreads();
        float alpha[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int row = hg * 16 + g + 8 * h;
            const float m_new = fmaxf(m_run[h], fmaxf(red_max[row], red_max[HB + row]));
            alpha[h] = exp2f(m_run[h] - m_new);  // m_run = -inf on the first tile: alpha = 0
            m_run[h] = m_new;
            l_run[h] *= alpha[h];
        }
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) {
            const float p0 = exp2f(s[nt][0] - m_run[0]), p1 = exp2f(s[nt][1] - m_run[0]);
            const float p2 = exp2f(s[nt][2] - m_run[1]), p3 = exp2f(s[nt][3] - m_run[1]);
            l_run[0] += p0 + p1;
            l_run[1] += p2 + p3;
            const int col = tok0 + nt * 8 + 2 * t;
            const int row = hg * 16 + g;
            *reinterpret_cast<unsigned*>(sP + row * Smem::p_stride + col) = pack_bf16x2(p0, p1);
            *reinterpret_cast<unsigned*>(sP + (row + 8) * Smem::p_stride + col) = pack_bf16x2(p2, p3);
        }
        if (th == 0 && t == 0) {
            s_alpha[hg * 16 + g] = alpha[0];
            s_alpha[hg * 16 + g + 8] = alpha[1];
        }
        __syncthreads();

        // ---- phase B: O[64][64w..64w+63] = O * alpha + P V
#pragma unroll
        for (int mt = 0; mt < 4; ++mt) {
            const float a0 = s_alpha[mt * 16 + g], a1 = s_alpha[mt * 16 + g + 8];
#pragma unroll
            for (int nt = 0; nt < 8; ++nt) {
                o[mt][nt][0] *= a0;
                o[mt][nt][1] *= a0;
                o[mt][nt][2] *= a1;
                o[mt][nt][3] *= a1;
            }
        }
        const unsigned sPa = smem_addr(sP);
#pragma unroll
        for (int kk = 0; kk < TILE / 16; ++kk) {
            unsigned a[4][4];
#pragma unroll
            for (int mt = 0; mt < 4; ++mt) {
                const int row = mt * 16 + (lane & 15);
                const int col = kk * 16 + (lane >> 4) * 8;
                ldmatrix_x4(sPa + (row * Smem::p_stride + col) * 2, a[mt][0], a[mt][1], a[mt][2], a[mt][3]);
            }
#pragma unroll
            for (int np = 0; np < 4; ++np) {
                const int mat = lane >> 3;
                const int row = kk * 16 + (mat & 1) * 8 + (lane & 7);
                const int chunk = (warp * 64 + np * 16) / 8 + (mat >> 1);
                unsigned b0, b1, b2, b3;
                ldmatrix_x4_trans(sKa + swz<D>(row, chunk), b0, b1, b2, b3);
#pragma unroll
                for (int mt = 0; mt < 4; ++mt) {
                    mma_bf16_16816(o[mt][2 * np], a[mt], b0, b1);
                    mma_bf16_16816(o[mt][2 * np + 1], a[mt], b2, b3);
                }
            }
        }
        if (STAGES == 1 && i + 1 < n_tiles) {
            __syncthreads();
            load_tile(i + 1, 0);
            cp_async_commit();
        }
    }

    // ---- row sums over both token halves, then the normalised partial output and its log2-sum-exp
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 1);
        l_run[h] += __shfl_xor_sync(0xffffffffu, l_run[h], 2);
    }
    cp_async_wait_all();  // a split with no tiles still has its prologue copies in flight
    __syncthreads();      // red_max / s_alpha (and with CLUSTER > 1 the Q/K buffers) are reused below
    if (t == 0) {
        red_sum[th * HB + hg * 16 + g] = l_run[0];
        red_sum[th * HB + hg * 16 + g + 8] = l_run[1];
        if (th == 0) {
            s_alpha[hg * 16 + g] = m_run[0];
            s_alpha[hg * 16 + g + 8] = m_run[1];
        }
    }
    __syncthreads();
    if constexpr (CLUSTER == 1) {
#pragma unroll
        for (int mt = 0; mt < 4; ++mt)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int row = mt * 16 + g + 8 * h;
                const int head = head0 + row;
                if (head >= HEADS) continue;
                const float l = red_sum[row] + red_sum[HB + row];
                const float inv = 1.f / l;
                const size_t prow = (part_row + head) * p.num_splits + split;
                if (direct) {
                    bf16* dst = p.out + (part_row + head) * LATENT + warp * 64;
#pragma unroll
                    for (int nt = 0; nt < 8; ++nt)
                        *reinterpret_cast<unsigned*>(dst + nt * 8 + 2 * t) =
                            pack_bf16x2(o[mt][nt][2 * h] * inv, o[mt][nt][2 * h + 1] * inv);
                    continue;
                }
                float* dst = p.o_part + prow * LATENT + warp * 64;
#pragma unroll
                for (int nt = 0; nt < 8; ++nt)
                    *reinterpret_cast<float2*>(dst + nt * 8 + 2 * t) =
                        make_float2(o[mt][nt][2 * h] * inv, o[mt][nt][2 * h + 1] * inv);
                if (warp == 0 && t == 0) p.lse_part[prow] = s_alpha[row] + log2f(l);
            }
    } else {
        // stage the normalised partial and its lse in this CTA's shared memory (Q/K are no longer read)
        constexpr int OS = LATENT + 8;  // padded row stride in floats
        float* sO = reinterpret_cast<float*>(smem);
        float* s_lse = red_max;
#pragma unroll
        for (int mt = 0; mt < 4; ++mt)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int row = mt * 16 + g + 8 * h;
                const float l = red_sum[row] + red_sum[HB + row];
                const float inv = l > 0.f ? 1.f / l : 0.f;
#pragma unroll
                for (int nt = 0; nt < 8; ++nt)
                    *reinterpret_cast<float2*>(sO + row * OS + warp * 64 + nt * 8 + 2 * t) =
                        make_float2(o[mt][nt][2 * h] * inv, o[mt][nt][2 * h + 1] * inv);
                if (warp == 0 && t == 0) s_lse[row] = l > 0.f ? s_alpha[row] + log2f(l) : neg_inf();
            }
        cluster_sync();
        constexpr int RPC = HB / CLUSTER;  // rows merged by each CTA of the cluster
        const unsigned rank = cluster_ctarank();
        const int n_parts = p.num_splits / CLUSTER, part = split / CLUSTER;
        const unsigned sO_a = smem_addr(sO), lse_a = smem_addr(s_lse);
        for (int idx = tid; idx < RPC * (LATENT / 4); idx += kMlaWarps * 32) {
            const int row = rank * RPC + idx / (LATENT / 4), c = (idx % (LATENT / 4)) * 4;
            const int head = head0 + row;
            if (head >= HEADS) continue;
            float lse[CLUSTER];
            float m = neg_inf();
#pragma unroll
            for (int r = 0; r < CLUSTER; ++r) {
                lse[r] = ld_cluster_f32(cluster_map(lse_a + row * 4, r));
                m = fmaxf(m, lse[r]);
            }
            float acc[4] = {0.f, 0.f, 0.f, 0.f}, wsum = 0.f;
#pragma unroll
            for (int r = 0; r < CLUSTER; ++r) {
                const float w = lse[r] == neg_inf() ? 0.f : exp2f(lse[r] - m);
                const float4 v = ld_cluster_f32x4(cluster_map(sO_a + (row * OS + c) * 4, r));
                wsum += w;
                acc[0] += w * v.x;
                acc[1] += w * v.y;
                acc[2] += w * v.z;
                acc[3] += w * v.w;
            }
            const float inv = wsum > 0.f ? 1.f / wsum : 0.f;
            const size_t prow = (part_row + head) * n_parts + part;
            *reinterpret_cast<float4*>(p.o_part + prow * LATENT + c) =
                make_float4(acc[0] * inv, acc[1] * inv, acc[2] * inv, acc[3] * inv);
            if (c == 0) p.lse_part[prow] = wsum > 0.f ? m + log2f(wsum) : neg_inf();
        }
        cluster_sync();  // no CTA leaves while another still reads its shared memory
    }
}

// Four consecutive partial values as fp32.
template <class PT>
__device__ __forceinline__ float4 load_part4(const PT* src);
template <>
__device__ __forceinline__ float4 load_part4<float>(const float* src) {
    return *reinterpret_cast<const float4*>(src);
}
template <>
__device__ __forceinline__ float4 load_part4<bf16>(const bf16* src) {
    const uint2 v = *reinterpret_cast<const uint2*>(src);
    return make_float4(__uint_as_float(v.x << 16), __uint_as_float(v.x & 0xffff0000u), __uint_as_float(v.y << 16),
                       __uint_as_float(v.y & 0xffff0000u));
}

// One CTA per (head, row): LATENT / 4 column threads (4 latent columns each) x kMlaCombineSplitGroups split
// groups; group g merges splits g, g + 8, ..., loading 8 partials before using the first, so that a thread
// waits on one or two L2 round trips (at batch 1 there are ~64 splits: one group alone waited ~8; H200 run 1:
// the combine still cost 3-5 us at batch 1 with 4 groups and dependent loads). The split weights are
// computed in parallel (one split per thread, in chunks of the block size) into shared memory; the groups'
// sums meet in shared memory. PT: the partials' type (float, or bf16 from partial_bf16 configs). WAIT: launched
// as a programmatic dependent of the decode kernel (config pdl): waits for the decode grid before reading.
template <int HEADS, int LATENT, class PT = float, bool WAIT = false>
__device__ __forceinline__ void mla_combine(const MlaCombineParams& p) {
    if constexpr (WAIT) griddep_wait();
    constexpr int CT = LATENT / 4;
    constexpr int SG = kMlaCombineSplitGroups;
    constexpr int THREADS = CT * SG;
    static_assert(CT % 32 == 0, "whole warps per split group");
    __shared__ float s_w[THREADS];
    __shared__ float s_max[THREADS / 32];
    __shared__ float4 s_acc[SG - 1][CT];
    __shared__ float s_wsum[SG - 1][CT];
    const int h = blockIdx.x, b = blockIdx.y, tid = threadIdx.x;
    const int ct = tid % CT, grp = tid / CT;
    const size_t row = (size_t)b * HEADS + h;
    const float* lse = p.lse_part + row * p.num_splits;
    const int n = p.num_splits;

    float m = neg_inf();
    for (int s = tid; s < n; s += THREADS) m = fmaxf(m, lse[s]);
    m = warp_max(m);
    if ((tid & 31) == 0) s_max[tid >> 5] = m;
    __syncthreads();
#pragma unroll
    for (int w = 0; w < THREADS / 32; ++w) m = fmaxf(m, s_max[w]);

    const int c = ct * 4;
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    float wsum = 0.f;
    const PT* src = reinterpret_cast<const PT*>(p.o_part) + row * n * LATENT + c;
    for (int s0 = 0; s0 < n; s0 += THREADS) {
        __syncthreads();  // the previous chunk's weights are consumed
        const float l = s0 + tid < n ? lse[s0 + tid] : neg_inf();
        s_w[tid] = l == neg_inf() ? 0.f : exp2f(l - m);  // a split with no tokens wrote no partial: weight 0
        __syncthreads();
        const int cnt = min(THREADS, n - s0);
        constexpr int B = 8;  // partial loads in flight per thread: all issued before the first is used
        for (int j0 = grp; j0 < cnt; j0 += SG * B) {
            float w[B];
            float4 v[B];
#pragma unroll
            for (int u = 0; u < B; ++u) {
                const int j = j0 + u * SG;
                w[u] = j < cnt ? s_w[j] : 0.f;
                v[u] = w[u] != 0.f ? load_part4<PT>(src + (size_t)(s0 + j) * LATENT) : make_float4(0.f, 0.f, 0.f, 0.f);
            }
#pragma unroll
            for (int u = 0; u < B; ++u) {
                wsum += w[u];
                acc[0] += w[u] * v[u].x;
                acc[1] += w[u] * v[u].y;
                acc[2] += w[u] * v[u].z;
                acc[3] += w[u] * v[u].w;
            }
        }
    }
    if (grp > 0) {
        s_acc[grp - 1][ct] = make_float4(acc[0], acc[1], acc[2], acc[3]);
        s_wsum[grp - 1][ct] = wsum;
    }
    __syncthreads();
    if (grp > 0) return;
#pragma unroll
    for (int g = 0; g < SG - 1; ++g) {
        const float4 a = s_acc[g][ct];
        acc[0] += a.x;
        acc[1] += a.y;
        acc[2] += a.z;
        acc[3] += a.w;
        wsum += s_wsum[g][ct];
    }
    const float inv = wsum > 0.f ? 1.f / wsum : 0.f;
    unsigned* dst = reinterpret_cast<unsigned*>(p.out + row * LATENT + c);
    dst[0] = pack_bf16x2(acc[0] * inv, acc[1] * inv);
    dst[1] = pack_bf16x2(acc[2] * inv, acc[3] * inv);
}

// One warp per row; 16-byte copies.
template <int D, int PAGE>
__device__ __forceinline__ void kv_append(const KvAppendParams& p) {
    griddep_launch_dependents();  // a decode launched as its programmatic dependent (early_tiles) may start now
    const int i = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    if (i >= p.n) return;
    const int pos = p.positions[i];
    const int* table = p.block_table + (size_t)i * p.block_table_stride;
    unsigned short* dst = p.kv_cache + ((size_t)table[pos / PAGE] * PAGE + pos % PAGE) * D;
    const unsigned short* src = p.src + (size_t)i * p.src_stride;
    for (int c = threadIdx.x % 32; c < D / 8; c += 32)
        reinterpret_cast<uint4*>(dst)[c] = *reinterpret_cast<const uint4*>(src + c * 8);
}

}  // namespace mf
