// The fused routed-expert FFN over a batch of experts, each with its own token list, on the thread pool:
//     y[t] += gate_e(t) * down_e( SiLU(gate_proj_e x[t]) * up_proj_e x[t] )   for every (expert e, token t)
//     route.
// int8 weights with one scale per output channel or int4 with a scale and min per group of 32; activations
// are quantised to int8 per row on the fly; or bf16 weights with activations rounded to bf16. Experts with
// few tokens run the AVX-512 GEMV, the others AMX (int4: the AMX int4 kernel applies the per-group scales and
// mins; it unpacks the weights itself for routes of up to int4_amx_unpack tokens, longer routes' work items
// first unpack their panels to int8 once). Work items are claimed through an atomic counter; no lock.
#pragma once
#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "codegen/kernel_cache.hpp"
#include "codegen/x64/expert_ffn_desc.hpp"
#include "codegen/x64/pack_int8.hpp"
#include "runtime/expert_ffn_weights.hpp"
#include "runtime/thread_pool.hpp"

namespace mf {

struct ExpertRoute {
    const ExpertFfnWeights* weights = nullptr;
    std::span<const int32_t> tokens;  // rows of x and y routed to this expert (may be empty)
    std::span<const float> gates;     // router weight of each routed token (same length as tokens)
};

struct ExpertFfnBatch {
    const float* x = nullptr;  // [tokens][hidden] input rows, row t at x + t * ldx
    int64_t ldx = 0;
    float* y = nullptr;  // [tokens][hidden] output rows, accumulated into (+=)
    int64_t ldy = 0;
    std::span<const ExpertRoute> routes;
};

// Where run()'s time went, summed over calls since ExpertFfn::reset_times(): wall seconds of each pass
// (between the pool's barriers), and worker-seconds spent inside the GEMM kernels of the two GEMM passes
// (summed over workers; divide by wall x workers for the kernels' share of the pass), and in the epilogues after
// them. Two clock reads per kernel call and one per epilogue.
struct ExpertFfnTimes {
    double quantise = 0;        // activations to int8 (or bf16), once per routed token
    double gate_up = 0;         // gate+up GEMMs and SiLU(gate)*up
    double requantise = 0;      // the intermediate rows to int8
    double down = 0;            // down GEMMs and the router-weighted accumulate
    double gate_up_kernel = 0;  // worker-seconds in the gate+up kernels
    double down_kernel = 0;     // worker-seconds in the down kernels
    double gate_up_epilogue = 0;  // worker-seconds in SiLU(gate) * up (gate/up pass, outside the kernels)
    double down_epilogue = 0;     // worker-seconds in the router-weighted accumulate and its prefetch of y (down pass)
};

class ExpertFfn {
  public:
    // Resolves every kernel up front (throws std::runtime_error for a Config no kernel accepts). Without AMX
    // (cpu or OS permission) every expert takes the GEMV path, 16 rows at a time.
    ExpertFfn(const ExpertFfnDesc& desc, const ExpertFfnConfig& cfg, KernelCache& cache, int workers);

    // Runs the batch on every worker of pool (pool.size() <= workers). Not reentrant.
    void run(ThreadPool& pool, const ExpertFfnBatch& batch);

    bool uses_amx() const { return amx_gu_ != nullptr; }
    ExpertFfnTimes times() const;
    void reset_times();
    const ExpertFfnDesc& desc() const { return desc_; }
    const ExpertFfnConfig& config() const { return cfg_; }

  private:
    struct RouteRows {
        int64_t offset;  // first row in the activation buffers
        int64_t rows;    // routed tokens
        int64_t padded;  // rows reserved (AMX: multiple of 16 * m_tiles, or 16 when narrow)
        bool amx;
        bool narrow;  // AMX with one row tile (at most 16 rows: m_tiles > 1 would pad them)
        bool whole;   // AMX over all of K at once (fewer rows than amx_chunk_min_m)
        bool packed;  // int4 AMX: the kernel reads the packed weights (int4_amx_unpack), no unpack per item
        bool sb;      // int4 AMX: the super-block kernel (int4_sb_min_m; with `packed` it unpacks the form itself)
    };
    // The passes of run(), in order. lay_out_rows: rows_, gu_items_ and the buffers (false: no routed token);
    // group_rows_by_token: tok_* and pad_rows_.
    bool lay_out_rows(const ExpertFfnBatch& b);
    void group_rows_by_token(const ExpertFfnBatch& b);
    void quantise(ThreadPool& pool, const ExpertFfnBatch& b);
    void gate_up(ThreadPool& pool, const ExpertFfnBatch& b);
    void requantise(ThreadPool& pool);
    void down(ThreadPool& pool, const ExpertFfnBatch& b);
    // gate_up's epilogue: SiLU(gate) * up of route rows [m0, m1) of gate/up block jb from one call's C (rows
    // from m0), into hf() with each row's block max in hmax_.
    void silu_up(const RouteRows& rr, const PackedMatrix& w, int64_t jb, int64_t m0, int64_t m1,
                 const int32_t* c);
    // down's epilogue: rows [m0, m1) of route r from one call's C (rows from m0, ncols columns from c0) added
    // into their tokens' rows of y, scaled by the router weight.
    void accumulate(const ExpertFfnBatch& b, size_t r, int64_t m0, int64_t m1, int64_t c0, int64_t ncols,
                    const int32_t* c) const;
    // Whether activation row `row` is stored tiled (an AMX route's, with a_tiled_); store_row puts src there.
    bool row_tiled(int64_t row) const;
    void store_row(const int8_t* src, int64_t row, const AlignedBytes& buf, int64_t row_bytes) const;
    // C[rows][panels*16] int32 = A rows x packed panels [first, first + panels) of w over its K.
    // int4: c receives floats and gs points at the rows' group sums; `unpacked` holds the panels unpacked by
    // unpack_for (int4 AMX routes that are not `packed`), else nullptr.
    // a_next / b_next: the A rows and first panel of the worker's next AMX call (ExpertGemmArgs::a_next), or
    // nullptr.
    void gemm(const int8_t* a, const float* gs, int64_t rows, const RouteRows& rr, const PackedMatrix& w,
              int64_t first_panel, int64_t panels, int32_t* c, bool down, const uint8_t* unpacked,
              const int8_t* a_next = nullptr, const uint8_t* b_next = nullptr) const;
    // int4 AMX routes that are not `packed`: unpacks panels [first, first + panels) of w into the worker's
    // buffer (nullptr otherwise).
    const uint8_t* unpack_for(int worker, const RouteRows& rr, const PackedMatrix& w, int64_t first,
                              int64_t panels);
    template <class F>
    void parallel_for(ThreadPool& pool, int64_t items, F&& body);

    ExpertFfnDesc desc_;
    ExpertFfnConfig cfg_;
    int64_t kp_h_, kp_i_, n_pad_h_, n_pad_i_, m_step_rows_, m_block_;
    const JitKernel* amx_gu_ = nullptr;    // K = hidden
    const JitKernel* amx_dn_ = nullptr;    // K = inter
    const JitKernel* amx_gu16_ = nullptr;  // the same with m_tiles = 1, for routes of <= 16 rows
    const JitKernel* amx_dn16_ = nullptr;
    const JitKernel* amx_guw_ = nullptr;  // the same without K chunks (amx_chunk_min_m), else null
    const JitKernel* amx_dnw_ = nullptr;
    const JitKernel* amx_gu_packed_ = nullptr;  // int4: unpacking the packed weights itself (int4_amx_unpack)
    const JitKernel* amx_dn_packed_ = nullptr;
    const JitKernel* amx_gu_sb_ = nullptr;  // int4: the super-block kernel (int4_sb_min_m) over panels unpacked
    const JitKernel* amx_dn_sb_ = nullptr;  // per item, and the one unpacking them itself (int4_amx_unpack)
    const JitKernel* amx_gu_sbu_ = nullptr;
    const JitKernel* amx_dn_sbu_ = nullptr;
    std::vector<const JitKernel*> gemv_gu_, gemv_dn_;  // index m - 1, m = 1..16
    int gemv_max_m_;
    int amx_mt_ = 1, amx_nt_ = 1;   // tiles of the AMX kernels (int4 caps them)
    int gemv_rows_;                 // most rows per GEMV call (16 int8, 8 int4)
    bool int4_, bf16_, float_out_;  // float_out_: kernels return float sums (int4, bf16)
    int64_t a_row_h_, a_row_i_;     // bytes per activation row (int8: K_pad; bf16: 2 K_pad)
    int64_t groups_h_, groups_i_;   // int4 activation group sums per row
    int64_t gu_blocks_;             // gate/up column blocks (of n_block intermediate channels)

    // run(): every route's rows; their number (padding included); whether some int4 AMX route unpacks per
    // item.
    std::vector<RouteRows> rows_;
    int64_t total_ = 0;
    bool int4_unpacks_ = false;
    std::vector<std::pair<int32_t, int32_t>> gu_items_;  // (route, n block)
    AlignedBytes xq_, hq_;  // quantised activations of every route's rows (hidden, intermediate)
    std::vector<float> xs_, hs_, xgs_, hgs_;
    AlignedBytes hf_;  // float intermediate rows [row][n_pad_i_] (2 MiB pages: the rows are 8 KiB apart)
    float* hf() const { return reinterpret_cast<float*>(hf_.data()); }
    std::vector<float> hmax_;  // [row][gate/up block]: max|h| of the block's part of the intermediate row
    std::vector<int32_t> xsum_, hsum_;
    bool a_tiled_ = false;                      // AMX routes' activations stored tiled (store_act_row_tiled)
    std::vector<std::vector<int8_t>> row_tmp_;  // per worker: one activation row before it is stored tiled
    std::vector<int8_t> row_zero_;              // a zero activation row (padding rows)
    // run(): routed rows by token: rows tok_rows_[tok_start_[t] .. tok_start_[t + 1]) are token t's; the
    // tokens routed at least once; the AMX routes' padding rows.
    std::vector<int64_t> tok_start_, tok_fill_, tok_rows_, pad_rows_;
    std::vector<int32_t> tok_list_;
    std::vector<int32_t> row_route_;  // run(): the route of each activation row (padding rows included)
    std::vector<std::span<const int32_t>>
        route_tokens_;  // run(): each route's tokens, for the down pass's ranges
    std::vector<int64_t> route_step_;
    std::vector<AlignedBytes> scratch_;   // per worker: int32 (or float) C of one kernel call
    std::vector<AlignedBytes> unpacked_;  // per worker: int4 panels unpacked for AMX (allocated on first use)
    int64_t unpacked_bytes_ = 0;
    std::atomic<int64_t> next_{0};
    struct alignas(64) WorkerClock {
        double gate_up = 0, down = 0;          // seconds inside kernels
        double gate_up_epi = 0, down_epi = 0;  // seconds in the epilogues (SiLU * up; accumulate)
    };
    std::vector<WorkerClock> kernel_time_;  // per worker
    ExpertFfnTimes times_;
};

}  // namespace mf
