// The end of a CTA of the "P V first / late" MLA decode kernels (kernels/mla_decode_pvfirst.cuh,
// mla_decode_pvlate.cuh): from each row's softmax sum and running max, the row's 1 / sum and log2-sum-exp, then the
// split's lse partial and its normalised rows (the final bf16 rows with one split), through shared memory.
#pragma once
#include "bf16.cuh"
#include "mla_params.cuh"
#include "mla_wgmma_epilogue.cuh"  // mla_store_rows

namespace mf {

// red_sum[r]: the sum of row r over the whole CTA, m_run: the running max (log2 domain) of this thread's rows row0,
// row0 + 8; inv gets 1 / sum, lse max + log2(sum) (0 and -inf for a row with no token).
__device__ __forceinline__ void mla_row_inv_lse(const float* red_sum, const float (&m_run)[2], int row0,
                                                float (&inv)[2], float (&lse)[2]) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const float l = red_sum[row0 + 8 * h];
        inv[h] = l > 0.f ? 1.f / l : 0.f;
        lse[h] = l > 0.f ? m_run[h] + log2f(l) : neg_inf();
    }
}

// The grid schedule's epilogue (split `split` of row part_row / HEADS, heads head0 ..): the lse partials (warpgroup
// 0's lanes t == 0) and the rows, to p.out when `direct` (one split), else to the split's partial rows. smem: the
// Q and K buffers (free: every copy and wgmma is done); o: this thread's accumulators (warpgroup wg's O half);
// red_sum[r]: the sum of row r over the whole CTA (read after the previous row's lse store, as the kernels did
// before this helper: their machine code is unchanged); m_run: the running max (log2 domain) of rows row0, row0 + 8.
template <int HEADS, int LATENT, class PT>
__device__ __forceinline__ void mla_split_rows_store(const MlaDecodeParams& p, unsigned char* smem,
                                                     const float (&o)[128], const float* red_sum,
                                                     const float (&m_run)[2], int row0, int wg, int t, int tid,
                                                     size_t part_row, int head0, int split, bool direct) {
    constexpr int HB = 64;
    float inv[2];
    const int rows = min(HB, HEADS - head0);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = row0 + 8 * h;
        const float l = red_sum[row];
        inv[h] = l > 0.f ? 1.f / l : 0.f;
        const float lse = l > 0.f ? m_run[h] + log2f(l) : neg_inf();
        if (!direct && wg == 0 && t == 0 && head0 + row < HEADS)
            p.lse_part[(part_row + head0 + row) * p.num_splits + split] = lse;
    }
    if (direct)
        mla_store_rows<bf16, LATENT>(smem, o, inv, row0, wg, t, tid, p.out + (part_row + head0) * LATENT,
                                     (size_t)LATENT, rows);
    else
        mla_store_rows<PT, LATENT>(
            smem, o, inv, row0, wg, t, tid,
            reinterpret_cast<PT*>(p.o_part) + ((part_row + head0) * p.num_splits + split) * LATENT,
            (size_t)p.num_splits * LATENT, rows);
}

}  // namespace mf
