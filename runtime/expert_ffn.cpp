#include "runtime/expert_ffn.hpp"

#include <xmmintrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>

#include "codegen/isa.hpp"
#include "codegen/x64/pack_int4.hpp"
#include "codegen/x64/pack_int4_sb.hpp"
#include "runtime/expert_ffn_epilogue.hpp"
#include "runtime/expert_ffn_token_ranges.hpp"
#include "runtime/stage_times.hpp"

namespace mf {
namespace {

int8_t* act(const AlignedBytes& b) {
    return reinterpret_cast<int8_t*>(b.data());
}

// Work items of the quantise pass (tokens, then padding rows) and of the requantise pass (rows).
constexpr int64_t kTokensPerItem = 4;
constexpr int64_t kRowsPerItem = 8;

// int4 AMX kernels that unpack the packed weights themselves prefetch this many groups (6 lines a panel each)
// ahead. VM, one core streaming from DRAM: 16-24 groups 8-10% faster than 6, 0 slower still.
constexpr int kInt4UnpackPrefetch = 16;

// The int4 super-block kernel that unpacks the form itself fetches the packed groups this many super blocks
// ahead into L2.
constexpr int kInt4SbPrefetch = 1;

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

ExpertFfn::ExpertFfn(const ExpertFfnDesc& desc, const ExpertFfnConfig& cfg, KernelCache& cache, int workers)
    : desc_(desc), cfg_(cfg) {
    const auto bad = [&](const std::string& what) {
        throw std::runtime_error("expert FFN " + kernel_name(desc, cfg) + ": " + what);
    };
    int4_ = desc.wtype == WeightType::int4;
    bf16_ = desc.wtype == WeightType::bf16;
    float_out_ = int4_ || bf16_;
    if (desc.hidden <= 0 || desc.inter <= 0) bad("hidden and inter must be positive");
    if (cfg.n_block <= 0 || cfg.n_block % kNAlign || cfg.n_block_down <= 0 || cfg.n_block_down % kNAlign)
        bad("n_block and n_block_down must be positive multiples of 64");
    if (cfg.gemv_max_m < 0 || cfg.gemv_max_m > 16) bad("gemv_max_m must be in 0..16");
    if (cfg.int4_amx_min_m < 0) bad("int4_amx_min_m must be 0 (GEMV only) or positive");
    if (cfg.m_block < 1) bad("m_block must be positive");
    const IsaSet isa = detect_cpu_isa();
    if (!isa.has(IsaFeature::avx512_vnni)) bad("this CPU lacks AVX-512 VNNI, which the expert kernels need");
    if (bf16_ && !isa.has(IsaFeature::avx512_bf16))
        bad("this CPU lacks AVX-512 BF16, which bf16 weights need");
    kp_h_ = round_up(desc.hidden, kKAlign);
    kp_i_ = round_up(desc.inter, kKAlign);
    n_pad_h_ = round_up(desc.hidden, kNAlign);
    n_pad_i_ = round_up(desc.inter, kNAlign);
    groups_h_ = kp_h_ / kInt4Group;
    groups_i_ = kp_i_ / kInt4Group;
    gu_blocks_ = (n_pad_i_ + cfg.n_block - 1) / cfg.n_block;
    a_row_h_ = kp_h_ * (bf16_ ? 2 : 1);
    a_row_i_ = kp_i_ * (bf16_ ? 2 : 1);
    const bool amx = (!int4_ || cfg.int4_amx_min_m > 0) &&
                     isa.has(bf16_ ? IsaFeature::amx_bf16 : IsaFeature::amx_int8) && request_amx_permission();
    if (amx) {
        AmxGemmConfig ac = cfg.amx();
        // int4: one dot tile per set, so the float accumulators stay in registers (measured fastest).
        if (int4_) {
            ac = AmxGemmConfig{1, 1, cfg.order};
            ac.pf_a = cfg.int4_amx_pf_a;  // the int4 kernel's A rows prefetched into L1 (its B has its own prefetch)
        }
        amx_mt_ = ac.m_tiles;
        amx_nt_ = ac.n_tiles;
        // The next call's A rows into L2 (amx_pf_call) in the down pass only: a gate/up call's 448 KiB of next rows
        // crowd L2 (VM, same process: gate/up +10-12% time with it, down -4-6%).
        auto gu = [](AmxGemmConfig c) {
            c.pf_call = 0;
            return c;
        };
        amx_gu_ = &cache.require(AmxGemmDesc{desc.wtype, desc.hidden}, gu(ac));
        amx_dn_ = &cache.require(AmxGemmDesc{desc.wtype, desc.inter}, ac);
        // Routes under amx_chunk_min_m tokens (narrow ones among them) run all of K at once.
        AmxGemmConfig whole = ac;
        whole.k_block = whole.pf_next = whole.k_inner = 0;
        const bool split = ac.k_block > 0 && cfg.amx_chunk_min_m > 0;
        if (split) {
            amx_guw_ = &cache.require(AmxGemmDesc{desc.wtype, desc.hidden}, gu(whole));
            amx_dnw_ = &cache.require(AmxGemmDesc{desc.wtype, desc.inter}, whole);
        }
        AmxGemmConfig narrow = split ? whole : ac;
        narrow.m_tiles = 1;
        amx_gu16_ = &cache.require(AmxGemmDesc{desc.wtype, desc.hidden}, gu(narrow));
        amx_dn16_ = &cache.require(AmxGemmDesc{desc.wtype, desc.inter}, narrow);
        if (int4_ && cfg.int4_amx_unpack > 0) {
            const AmxGemmConfig packed{1, 1, cfg.order, kInt4UnpackPrefetch, 0, cfg.int4_amx_pf_a, 0, 0, 0, 1};
            amx_gu_packed_ = &cache.require(AmxGemmDesc{desc.wtype, desc.hidden}, packed);
            amx_dn_packed_ = &cache.require(AmxGemmDesc{desc.wtype, desc.inter}, packed);
        }
        if (int4_ && cfg.int4_sb_min_m > 0) {
            AmxGemmConfig sb{1, 1, cfg.order};
            sb.int4_sb = 1;
            amx_gu_sb_ = &cache.require(AmxGemmDesc{desc.wtype, desc.hidden}, sb);
            amx_dn_sb_ = &cache.require(AmxGemmDesc{desc.wtype, desc.inter}, sb);
            if (cfg.int4_amx_unpack > 0) {
                sb.unpack_b = 1;
                sb.prefetch = kInt4SbPrefetch;
                sb.n_tiles = 2;  // one A tile for two panels: VM, one core, 8 panels x K 7168: 47 -> 35 ns per 16 x
                                 // 16 x 64 step at 64 rows, 52 -> 48 at 256
                amx_gu_sbu_ = &cache.require(AmxGemmDesc{desc.wtype, desc.hidden}, sb);
                amx_dn_sbu_ = &cache.require(AmxGemmDesc{desc.wtype, desc.inter}, sb);
            }
        }
    }
    if (cfg.amx_chunk_min_m < 0) bad("amx_chunk_min_m must be 0 (chunk every route) or positive");
    if (cfg.int4_amx_unpack < 0) bad("int4_amx_unpack must be 0 (never) or positive");
    if (cfg.int4_sb_min_m < 0) bad("int4_sb_min_m must be 0 (never) or positive");
    if (cfg.down_token_ranges < 0 || cfg.down_token_ranges > 64) bad("down_token_ranges must be in 0..64");
    if (cfg.down_range_min_rows < 1) bad("down_range_min_rows must be positive");
    if (cfg.int4_amx_pf_a < 0 || cfg.int4_amx_pf_a > 16) bad("int4_amx_pf_a must be in 0..16");
    if (cfg.amx_k_inner != 0 && cfg.amx_k_inner != 1) bad("amx_k_inner must be 0 or 1");
    if (cfg.amx_pf_call < 0 || cfg.amx_pf_call > 32) bad("amx_pf_call must be in 0..32");
    m_step_rows_ = amx ? 16 * amx_mt_ : 16;
    m_block_ = round_up(std::max(cfg.m_block, 16), m_step_rows_);
    gemv_max_m_ = !amx ? 1 << 30 : int4_ ? cfg.int4_amx_min_m - 1 : cfg.gemv_max_m;
    gemv_rows_ = int4_ ? kInt4GemvMaxRows : 16;
    for (int m = 1; m <= gemv_rows_; ++m) {
        gemv_gu_.push_back(&cache.require(GemvDesc{desc.wtype, desc.hidden, m}, cfg.gemv(m, desc.wtype)));
        gemv_dn_.push_back(&cache.require(GemvDesc{desc.wtype, desc.inter, m}, cfg.gemv(m, desc.wtype)));
    }
    // int4's AMX kernel reads rows; the int8/bf16 one takes them tiled when the config asks.
    a_tiled_ = amx && !int4_ && cfg.amx_a_tiled;
    if (a_tiled_)
        row_tmp_.assign(size_t(std::max(workers, 1)),
                        std::vector<int8_t>(size_t(std::max(a_row_h_, a_row_i_))));
    row_zero_.assign(size_t(std::max(a_row_h_, a_row_i_)), 0);
    kernel_time_.assign(size_t(std::max(workers, 1)), WorkerClock{});
    const int64_t cols = std::max<int64_t>(2 * cfg.n_block, cfg.n_block_down);
    // C blocks: 64-byte aligned (a tile row is one cache line; malloc's 16-byte alignment split every row in
    // two, and which drivers got it varied run to run by +-6%).
    scratch_.clear();
    for (int w = 0; w < std::max(workers, 1); ++w)
        scratch_.emplace_back(size_t(m_block_ * cols) * sizeof(int32_t));
    if (amx && int4_) {  // allocated by each worker on first use: routes the kernel unpacks itself need none
        unpacked_bytes_ = std::max(2 * cfg.n_block * kp_h_, cfg.n_block_down * kp_i_);
        if (amx_gu_sb_)  // the super-block form: about two bytes per weight
            unpacked_bytes_ = std::max({unpacked_bytes_, 2 * cfg.n_block / kPanelCols * int4_sb_panel_bytes(kp_h_),
                                        cfg.n_block_down / kPanelCols * int4_sb_panel_bytes(kp_i_)});
        unpacked_.resize(size_t(std::max(workers, 1)));
    }
}

const uint8_t* ExpertFfn::unpack_for(int worker, const RouteRows& rr, const PackedMatrix& w, int64_t first,
                                     int64_t panels) {
    if (!rr.amx || !int4_ || rr.packed) return nullptr;
    AlignedBytes& buf = unpacked_[size_t(worker)];
    if (!buf.data()) buf = AlignedBytes(size_t(unpacked_bytes_));
    uint8_t* dst = buf.data();
    if (rr.sb)
        unpack_int4_panels_sb(w, first, panels, dst);
    else
        unpack_int4_panels(w, first, panels, dst);
    return dst;
}

void ExpertFfn::gemm(const int8_t* a, const float* gs, int64_t rows, const RouteRows& rr,
                     const PackedMatrix& w, int64_t first, int64_t panels, int32_t* c, bool down,
                     const uint8_t* unpacked, const int8_t* a_next, const uint8_t* b_next) const {
    const int64_t ldc = panels * 64;
    if (rr.amx) {
        const int64_t step = rr.narrow ? 16 : m_step_rows_;
        ExpertGemmArgs args{
            a, unpacked ? unpacked : w.panel(first), c, ldc, (rows + step - 1) / step, panels / amx_nt_, gs};
        args.b_groups = int4_ ? w.panel(first) : nullptr;
        args.a_next = int4_ ? nullptr : a_next;
        args.b_next = int4_ ? nullptr : b_next;
        if (rr.sb) args.b_sb = w.sb.data() + first * int4_sb_blocks(w.k_pad) * kInt4SbBytes;
        if (rr.sb && rr.packed) {  // the kernel's two panels per step (panels: 4 k)
            if (panels % 2) throw std::logic_error("ExpertFfn: the int4 super-block kernel needs an even panel count");
            args.n_steps = panels / 2;
        }
        const JitKernel* k = rr.sb       ? (rr.packed ? (down ? amx_dn_sbu_ : amx_gu_sbu_)
                                                      : (down ? amx_dn_sb_ : amx_gu_sb_))
                             : rr.packed ? (down ? amx_dn_packed_ : amx_gu_packed_)
                             : rr.narrow ? (down ? amx_dn16_ : amx_gu16_)
                             : rr.whole  ? (down ? amx_dnw_ : amx_guw_)
                                         : (down ? amx_dn_ : amx_gu_);
        (*k)(&args);
        return;
    }
    const int64_t lda = down ? a_row_i_ : a_row_h_, groups = down ? groups_i_ : groups_h_;
    for (int64_t r0 = 0; r0 < rows; r0 += gemv_rows_) {
        const int m = int(std::min<int64_t>(gemv_rows_, rows - r0));
        const int64_t n_steps = panels / cfg_.gemv(m, desc_.wtype).panels;
        const float* g = gs ? gs + r0 * groups : nullptr;
        const ExpertGemmArgs args{a + r0 * lda, w.panel(first), c + r0 * (ldc / 4), ldc, 0, n_steps, g};
        (*(down ? gemv_dn_ : gemv_gu_)[size_t(m - 1)])(&args);
    }
}

template <class F>
void ExpertFfn::parallel_for(ThreadPool& pool, int64_t items, F&& body) {
    if (items <= 0) return;
    next_.store(0, std::memory_order_relaxed);
    pool.run([&](int worker) {
        for (;;) {
            const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
            if (i >= items) break;
            body(worker, i);
        }
    });
}

void ExpertFfn::run(ThreadPool& pool, const ExpertFfnBatch& b) {
    if (pool.size() > int(scratch_.size()))
        throw std::invalid_argument("ExpertFfn::run: pool larger than workers");
    if (!lay_out_rows(b)) return;
    group_rows_by_token(b);
    {
        StageClock clock(times_.quantise);
        quantise(pool, b);
    }
    {
        StageClock clock(times_.gate_up);
        gate_up(pool, b);
    }
    {
        StageClock clock(times_.requantise);
        requantise(pool);
    }
    StageClock clock(times_.down);
    down(pool, b);
}

bool ExpertFfn::lay_out_rows(const ExpertFfnBatch& b) {
    rows_.clear();
    gu_items_.clear();
    total_ = 0;
    int4_unpacks_ = false;
    for (size_t r = 0; r < b.routes.size(); ++r) {
        const auto& rt = b.routes[r];
        const int64_t m = int64_t(rt.tokens.size());
        if (rt.gates.size() != rt.tokens.size() || (m && !rt.weights))
            throw std::invalid_argument("ExpertFfn::run: route " + std::to_string(r) +
                                        " needs weights and one gate per token");
        if (m && !weights_match(*rt.weights, desc_))
            throw std::invalid_argument("ExpertFfn::run: route " + std::to_string(r) +
                                        " weights do not match " + kernel_name(desc_, cfg_));
        const bool amx = amx_gu_ && m > gemv_max_m_, narrow = amx && m <= 16;
        const int64_t padded = amx ? round_up(m, narrow ? 16 : m_step_rows_) : m;
        const bool whole = amx && amx_guw_ && m < cfg_.amx_chunk_min_m;
        const bool sb = amx && amx_gu_sb_ && m >= cfg_.int4_sb_min_m && rt.weights->gate_up.sb.size() &&
                        rt.weights->down.sb.size();
        const bool packed = amx && (sb ? amx_gu_sbu_ : amx_gu_packed_) && m <= cfg_.int4_amx_unpack;
        rows_.push_back({total_, m, padded, amx, narrow, whole, packed, sb});
        total_ += padded;
        int4_unpacks_ |= amx && int4_ && !packed;
        for (int64_t j = 0; m && j < gu_blocks_; ++j) gu_items_.emplace_back(int32_t(r), int32_t(j));
    }
    if (!total_) return false;
    row_route_.resize(size_t(total_));
    for (size_t r = 0; r < rows_.size(); ++r)
        std::fill_n(row_route_.begin() + rows_[r].offset, rows_[r].padded, int32_t(r));
    if (int64_t(xs_.size()) < total_) {
        // Activations (int8 or bf16 rows, or tiles): 2 MiB pages once they are that large (AlignedBytes).
        xq_ = AlignedBytes(size_t(total_ * a_row_h_));
        // + one kernel step of rows: a down call of a token range may start off the route's row-group grid
        // and compute (not use) rows past the last route's padding.
        hq_ = AlignedBytes(size_t((total_ + m_step_rows_) * a_row_i_));
        hf_ = AlignedBytes(size_t(total_ * n_pad_i_) * sizeof(float));
        hmax_.resize(size_t(total_ * gu_blocks_));
        xs_.resize(size_t(total_));
        hs_.resize(size_t(total_));
        xsum_.resize(size_t(total_));
        hsum_.resize(size_t(total_));
        if (int4_) {
            xgs_.resize(size_t(total_ * groups_h_));
            hgs_.resize(size_t((total_ + m_step_rows_) * groups_i_));  // the same extra step of rows as hq_
        }
    }
    return true;
}

void ExpertFfn::group_rows_by_token(const ExpertFfnBatch& b) {
    // Counting sort of the routed rows by token, so each token is quantised once however many experts it goes
    // to; and the AMX routes' padding rows.
    int32_t max_t = -1;
    for (size_t r = 0; r < rows_.size(); ++r)
        for (int32_t t : b.routes[r].tokens) {
            if (t < 0)
                throw std::invalid_argument("ExpertFfn::run: route " + std::to_string(r) +
                                            " has a negative token");
            max_t = std::max(max_t, t);
        }
    tok_start_.assign(size_t(max_t) + 2, 0);
    for (size_t r = 0; r < rows_.size(); ++r)
        for (int32_t t : b.routes[r].tokens) ++tok_start_[size_t(t) + 1];
    tok_list_.clear();
    for (int32_t t = 0; t <= max_t; ++t) {
        if (tok_start_[size_t(t) + 1]) tok_list_.push_back(t);
        tok_start_[size_t(t) + 1] += tok_start_[size_t(t)];
    }
    tok_rows_.resize(size_t(tok_start_.back()));
    pad_rows_.clear();
    tok_fill_.assign(tok_start_.begin(), tok_start_.end() - 1);
    for (size_t r = 0; r < rows_.size(); ++r) {
        for (int64_t i = 0; i < rows_[r].rows; ++i)
            tok_rows_[size_t(tok_fill_[size_t(b.routes[r].tokens[size_t(i)])]++)] = rows_[r].offset + i;
        for (int64_t i = rows_[r].rows; i < rows_[r].padded; ++i) pad_rows_.push_back(rows_[r].offset + i);
    }
}

bool ExpertFfn::row_tiled(int64_t row) const {
    return a_tiled_ && rows_[size_t(row_route_[size_t(row)])].amx;
}

void ExpertFfn::store_row(const int8_t* src, int64_t row, const AlignedBytes& buf, int64_t row_bytes) const {
    const RouteRows& rr = rows_[size_t(row_route_[size_t(row)])];
    if (row_tiled(row))
        store_act_row_tiled(src, row_bytes, row - rr.offset, act(buf) + rr.offset * row_bytes);
    else if (src != act(buf) + row * row_bytes)
        std::memcpy(act(buf) + row * row_bytes, src, size_t(row_bytes));
}

void ExpertFfn::quantise(ThreadPool& pool, const ExpertFfnBatch& b) {
    // Each routed token once, into each of its route rows; padding rows are zero.
    const int64_t tok_items = (int64_t(tok_list_.size()) + kTokensPerItem - 1) / kTokensPerItem;
    const int64_t pad_items = (int64_t(pad_rows_.size()) + kRowsPerItem - 1) / kRowsPerItem;
    parallel_for(pool, tok_items + pad_items, [&](int worker, int64_t item) {
        if (item >= tok_items) {
            const int64_t p0 = (item - tok_items) * kRowsPerItem;
            for (int64_t p = p0; p < std::min<int64_t>(int64_t(pad_rows_.size()), p0 + kRowsPerItem); ++p) {
                const int64_t row = pad_rows_[size_t(p)];
                store_row(row_zero_.data(), row, xq_, a_row_h_);
                xs_[size_t(row)] = 0;
                xsum_[size_t(row)] = 0;
                if (int4_) std::fill_n(&xgs_[size_t(row * groups_h_)], groups_h_, 0.0f);
            }
            return;
        }
        for (int64_t k = item * kTokensPerItem;
             k < std::min<int64_t>(int64_t(tok_list_.size()), (item + 1) * kTokensPerItem); ++k) {
            const int32_t t = tok_list_[size_t(k)];
            const int64_t* rws = tok_rows_.data() + tok_start_[size_t(t)];
            const int64_t n = tok_start_[size_t(t) + 1] - tok_start_[size_t(t)], r0 = rws[0];
            // Quantised straight into the first route row where it is stored row-major.
            int8_t* dst = !row_tiled(r0) ? act(xq_) + r0 * a_row_h_ : row_tmp_[size_t(worker)].data();
            if (bf16_) {
                convert_row_bf16(b.x + t * b.ldx, desc_.hidden, kp_h_, reinterpret_cast<uint16_t*>(dst));
                xs_[size_t(r0)] = 1.0f;
            } else {
                xs_[size_t(r0)] =
                    quantize_act_row(b.x + t * b.ldx, desc_.hidden, kp_h_, dst, &xsum_[size_t(r0)],
                                     int4_ ? &xgs_[size_t(r0 * groups_h_)] : nullptr);
            }
            for (int64_t j = 0; j < n; ++j) {
                const int64_t row = rws[j];
                store_row(dst, row, xq_, a_row_h_);
                if (j == 0) continue;
                xs_[size_t(row)] = xs_[size_t(r0)];
                xsum_[size_t(row)] = xsum_[size_t(r0)];
                if (int4_)
                    std::copy_n(&xgs_[size_t(r0 * groups_h_)], groups_h_, &xgs_[size_t(row * groups_h_)]);
            }
        }
    });
}

void ExpertFfn::gate_up(ThreadPool& pool, const ExpertFfnBatch& b) {
    // gate and up in one GEMM per (route, block of intermediate channels) and call of m_block rows, then
    // SiLU(gate) * up of the call's rows.
    parallel_for(pool, int64_t(gu_items_.size()), [&](int worker, int64_t item) {
        const auto [r, jb] = gu_items_[size_t(item)];
        const RouteRows& rr = rows_[size_t(r)];
        const PackedMatrix& w = b.routes[size_t(r)].weights->gate_up;
        const int64_t c0 = int64_t(jb) * cfg_.n_block, ncols = std::min<int64_t>(cfg_.n_block, n_pad_i_ - c0);
        const int64_t first = c0 / kPanelCols * 2, panels = 2 * ncols / kPanelCols;
        auto* c = reinterpret_cast<int32_t*>(scratch_[size_t(worker)].data());
        const uint8_t* unpacked = unpack_for(worker, rr, w, first, panels);
        for (int64_t m0 = 0; m0 < rr.rows; m0 += m_block_) {
            const int64_t rows = std::min(m_block_, rr.padded - m0);
            // The next call of this item, if any, has the next rows and the same panels.
            const bool more = m0 + m_block_ < rr.rows;
            const auto k0 = std::chrono::steady_clock::now();
            gemm(act(xq_) + (rr.offset + m0) * a_row_h_,
                 int4_ ? &xgs_[size_t((rr.offset + m0) * groups_h_)] : nullptr, rows, rr, w, first, panels, c,
                 false, unpacked, more ? act(xq_) + (rr.offset + m0 + m_block_) * a_row_h_ : nullptr,
                 more ? w.panel(first) : nullptr);
            const auto e0 = std::chrono::steady_clock::now();
            kernel_time_[size_t(worker)].gate_up += std::chrono::duration<double>(e0 - k0).count();
            silu_up(rr, w, jb, m0, std::min(rr.rows, m0 + rows), c);
            kernel_time_[size_t(worker)].gate_up_epi += seconds_since(e0);
        }
    });
}

void ExpertFfn::silu_up(const RouteRows& rr, const PackedMatrix& w, int64_t jb, int64_t m0, int64_t m1,
                        const int32_t* c) {
    const int64_t c0 = jb * cfg_.n_block, ncols = std::min<int64_t>(cfg_.n_block, n_pad_i_ - c0);
    const int64_t first = c0 / kPanelCols * 2, panels = 2 * ncols / kPanelCols;
    const int valid = int(std::min<int64_t>(ncols, desc_.inter - c0));
    for (int64_t i = m0; i < m1; ++i) {
        const int64_t row = rr.offset + i;
        const int32_t* ci = c + (i - m0) * panels * kPanelCols;
        float* dst = hf() + row * n_pad_i_ + c0;
        // The block's max|h| goes with the row: the requantisation then skips its max pass.
        hmax_[size_t(row * gu_blocks_ + jb)] =
            float_out_ ? silu_mul_pairs_f32(reinterpret_cast<const float*>(ci), xs_[size_t(row)],
                                            int(panels / 2), valid, dst)
                       : silu_mul_pairs(ci, w.scale.data() + first * kPanelCols, xs_[size_t(row)],
                                        xsum_[size_t(row)], int(panels / 2), valid, dst);
    }
}

void ExpertFfn::requantise(ThreadPool& pool) {
    // The intermediate rows to int8 (or bf16) with their block maxima; padding rows are zero.
    parallel_for(pool, (total_ + kRowsPerItem - 1) / kRowsPerItem, [&](int worker, int64_t item) {
        for (int64_t row = item * kRowsPerItem; row < std::min(total_, (item + 1) * kRowsPerItem); ++row) {
            const RouteRows& rr = rows_[size_t(row_route_[size_t(row)])];
            const bool tiled = row_tiled(row);
            int8_t* dst = tiled ? row_tmp_[size_t(worker)].data() : act(hq_) + row * a_row_i_;
            if (row - rr.offset < rr.rows) {
                if (bf16_) {
                    convert_row_bf16(hf() + row * n_pad_i_, desc_.inter, kp_i_,
                                     reinterpret_cast<uint16_t*>(dst));
                    hs_[size_t(row)] = 1.0f;
                } else {
                    const float* hm = hmax_.data() + row * gu_blocks_;
                    hs_[size_t(row)] = quantize_act_row_amax(
                        hf() + row * n_pad_i_, desc_.inter, kp_i_, *std::max_element(hm, hm + gu_blocks_),
                        dst, &hsum_[size_t(row)], int4_ ? &hgs_[size_t(row * groups_i_)] : nullptr);
                }
            } else {
                std::memset(dst, 0, size_t(a_row_i_));
                hs_[size_t(row)] = 0;
                hsum_[size_t(row)] = 0;
                if (int4_) std::fill_n(&hgs_[size_t(row * groups_i_)], groups_i_, 0.0f);
            }
            if (tiled) store_act_row_tiled(dst, a_row_i_, row - rr.offset, act(hq_) + rr.offset * a_row_i_);
        }
    });
}

void ExpertFfn::down(ThreadPool& pool, const ExpertFfnBatch& b) {
    // Per (block of hidden channels, range of tokens) over all routes, accumulated into y: each item owns its
    // columns of its tokens' rows of y. Token ranges (expert_ffn_token_ranges.hpp) need the rows of a range
    // to be contiguous in every route; the tiled activation layout and int4 routes with panels unpacked per
    // item keep one.
    const int64_t dn_cols = (n_pad_h_ + cfg_.n_block_down - 1) / cfg_.n_block_down;
    route_tokens_.clear();
    route_step_.clear();
    for (size_t r = 0; r < rows_.size(); ++r) {
        route_tokens_.push_back(b.routes[r].tokens);
        route_step_.push_back(!rows_[r].amx ? 1 : rows_[r].narrow ? 16 : m_step_rows_);
    }
    const TokenRanges ranges = split_token_ranges(
        route_tokens_, route_step_, dn_cols, pool.size(),
        int4_unpacks_ || a_tiled_ ? 1 : std::max(1, cfg_.down_token_ranges), cfg_.down_range_min_rows);
    const int nr = ranges.count;
    parallel_for(pool, dn_cols * nr, [&](int worker, int64_t item) {
        // Items of one column block are adjacent: its ranges run at once on several workers, which then read
        // the same down weights close together (L3 hits).
        const int k = int(item % nr);
        const int64_t c0 = item / nr * cfg_.n_block_down,
                      ncols = std::min<int64_t>(cfg_.n_block_down, n_pad_h_ - c0);
        const int64_t first = c0 / kPanelCols, panels = ncols / kPanelCols;
        auto* c = reinterpret_cast<int32_t*>(scratch_[size_t(worker)].data());
        for (size_t r = 0; r < rows_.size(); ++r) {
            const RouteRows& rr = rows_[r];
            const ExpertRoute& rt = b.routes[r];
            const int64_t lo = ranges.lo(r, k), hi = ranges.hi(r, k);
            const uint8_t* unpacked =
                hi > lo ? unpack_for(worker, rr, rt.weights->down, first, panels) : nullptr;
            for (int64_t m0 = lo; m0 < hi; m0 += m_block_) {
                // Rows [m0, m0 + rows) are this item's; the kernel computes them rounded up to its step (rows
                // of the next range or the padding: not accumulated).
                const int64_t rows = std::min(m_block_, hi - m0);
                // The block's output rows are scattered (one token each); start fetching them into L2 now so
                // the accumulate after the GEMM does not wait on each row in turn.
                const auto p0 = std::chrono::steady_clock::now();
                const int64_t n_valid = std::min(ncols, desc_.hidden - c0);
                for (int64_t i = m0; i < m0 + rows; ++i)
                    for (int64_t n = 0; n < n_valid; n += 16)
                        _mm_prefetch(
                            reinterpret_cast<const char*>(b.y + rt.tokens[size_t(i)] * b.ldy + c0 + n),
                            _MM_HINT_T1);
                // The item's next AMX call: the route's next rows, else the next AMX route's first rows.
                const int8_t* a_next = nullptr;
                const uint8_t* b_next = nullptr;
                if (m0 + m_block_ < hi) {
                    a_next = act(hq_) + (rr.offset + m0 + m_block_) * a_row_i_;
                    b_next = rt.weights->down.panel(first);
                } else {
                    for (size_t r2 = r + 1; r2 < rows_.size() && !a_next; ++r2)
                        if (ranges.hi(r2, k) > ranges.lo(r2, k) && rows_[r2].amx) {
                            a_next = act(hq_) + (rows_[r2].offset + ranges.lo(r2, k)) * a_row_i_;
                            b_next = b.routes[r2].weights->down.panel(first);
                        }
                }
                const auto k0 = std::chrono::steady_clock::now();
                kernel_time_[size_t(worker)].down_epi += std::chrono::duration<double>(k0 - p0).count();
                gemm(act(hq_) + (rr.offset + m0) * a_row_i_,
                     int4_ ? &hgs_[size_t((rr.offset + m0) * groups_i_)] : nullptr, rows, rr,
                     rt.weights->down, first, panels, c, true, unpacked, a_next, b_next);
                const auto e0 = std::chrono::steady_clock::now();
                kernel_time_[size_t(worker)].down += std::chrono::duration<double>(e0 - k0).count();
                accumulate(b, r, m0, m0 + rows, c0, ncols, c);
                kernel_time_[size_t(worker)].down_epi += seconds_since(e0);
            }
        }
    });
}

void ExpertFfn::accumulate(const ExpertFfnBatch& b, size_t r, int64_t m0, int64_t m1, int64_t c0,
                           int64_t ncols, const int32_t* c) const {
    const RouteRows& rr = rows_[r];
    const ExpertRoute& rt = b.routes[r];
    const int64_t n_valid = std::min(ncols, desc_.hidden - c0);
    const float* w_scale = rt.weights->down.scale.data() + c0;
    for (int64_t i = m0; i < m1; ++i) {
        const int64_t row = rr.offset + i;
        float* y = b.y + rt.tokens[size_t(i)] * b.ldy + c0;
        const float coef = rt.gates[size_t(i)] * hs_[size_t(row)];
        if (float_out_)
            accumulate_f32(reinterpret_cast<const float*>(c + (i - m0) * ncols), coef, n_valid, y);
        else
            accumulate_scaled(c + (i - m0) * ncols, w_scale, coef, hsum_[size_t(row)], n_valid, y);
    }
}

ExpertFfnTimes ExpertFfn::times() const {
    ExpertFfnTimes t = times_;
    for (const auto& w : kernel_time_) {
        t.gate_up_kernel += w.gate_up;
        t.down_kernel += w.down;
        t.gate_up_epilogue += w.gate_up_epi;
        t.down_epilogue += w.down_epi;
    }
    return t;
}

void ExpertFfn::reset_times() {
    times_ = {};
    for (auto& w : kernel_time_) w = {};
}

}  // namespace mf