// The unit of work of the "P V late" kernel's UNIT mode (kernels/mla_decode_pvlate.cuh, used by the balanced
// schedule in kernels/mla_decode_balanced.cuh) and the store of a unit's rows.
#pragma once
#include "bf16.cuh"
#include "mla_wgmma_epilogue.cuh"  // mla_store_rows

namespace mf {

// One CTA's work in the P V late kernels: tokens [t_begin, t_end) of row b (t_end > t_begin) for heads head0 ..
// head0 + 63; the normalised rows go to `out` (final bf16 rows, row stride LATENT) when it is set, else head
// head0 + r's to part + r * part_stride with its log2-sum-exp at lse[r * lse_stride]. pre: this unit's mbarriers and
// tile 0 were set up by the previous unit; next_b >= 0: set up the next unit's (row next_b from token next_t_begin)
// before the epilogue (its tile 0 lands in stage 0 while the rows are stored: the epilogue must leave the K stages
// alone).
template <class PT>
struct MlaPvLateUnit {
    int b, head0, t_begin, t_end;
    bf16* out;
    PT* part;
    size_t part_stride;
    float* lse;
    int lse_stride;
    int pre, next_b, next_t_begin;
};

// A unit's rows and (partials) their lse, as mla_decode_pvlate's epilogue with UNIT (rows of warpgroup 0's lanes
// t == 0 carry the lse).
template <int HEADS, int LATENT, class PT>
__device__ __forceinline__ void mla_pvlate_store(const MlaPvLateUnit<PT>& u, unsigned char* smem, const float (&o)[128],
                                                 const float (&inv)[2], const float (&lse)[2], int row0, int wg, int t,
                                                 int tid, int rows) {
#pragma unroll
    for (int h = 0; h < 2; ++h)
        if (!u.out && wg == 0 && t == 0 && u.head0 + row0 + 8 * h < HEADS) u.lse[(row0 + 8 * h) * u.lse_stride] = lse[h];
    if (u.out)
        mla_store_rows<bf16, LATENT>(smem, o, inv, row0, wg, t, tid, u.out, (size_t)LATENT, rows);
    else
        mla_store_rows<PT, LATENT>(smem, o, inv, row0, wg, t, tid, u.part, u.part_stride, rows);
}

}  // namespace mf
