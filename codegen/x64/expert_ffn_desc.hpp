// The fused expert FFN (gate+up GEMM, SiLU(gate)*up, requantise, down GEMM, router-weighted accumulate) as a
// problem (Desc) and the tuner's choices (Config). The driver lives in runtime/expert_ffn.hpp; the GEMM
// kernels it calls are derived from these through amx_desc()/gemv_desc() and friends.
#pragma once
#include "codegen/kernel_fields.hpp"
#include "codegen/x64/expert_gemm_desc.hpp"

namespace mf {

struct ExpertFfnDesc {
    static constexpr const char* kPrefix = "moe_ffn";
    WeightType wtype = WeightType::int8;
    int hidden = 0;  // model width: gate/up reduce over it, down produces it
    int inter = 0;   // expert intermediate width
    template <class S, class F>
    static void visit(S& s, F&& f) {
        f("wtype", "", s.wtype);
        f("hidden", "h", s.hidden);
        f("inter", "i", s.inter);
    }
    bool operator==(const ExpertFfnDesc& o) const { return fields_equal(*this, o); }
};

struct ExpertFfnConfig {
    int gemv_max_m = 15;  // experts with at most this many tokens take the AVX-512 GEMV path (0..16), else
                          // AMX (int8, bf16)
    int int4_amx_min_m = 16;   // int4: experts with at least this many tokens take the AMX int4 kernel (one
                               // 16 x 16 tile: m_tiles / n_tiles are int8 / bf16 only), the others the int4
                               // GEMV; 0 = GEMV only. 2-core VM (session 5, same process): AMX unpacking the
                               // weights itself (int4_amx_unpack) +33% at M = 16, +32% at 64 against the GEMV
                               // (at 16 the GEMV needs 2x int8's vpdpbusd per byte: VNNI-bound); device, same
                               // process: 1.59x at M = 16 (92.9% of the DRAM bound), 1.73x at
                               // 64; AMX +20-35% at M >= 256 (session 3)
    int m_tiles = 2;  // AMX accumulator block (see AmxGemmConfig)
    int n_tiles = 2;
    LoopOrder order = LoopOrder::nm;
    int amx_prefetch = 0;    // AMX: B tiles ahead prefetched to L2
    int gemv_panels = 2;     // GEMV: panels streamed together
    int gemv_prefetch = 32;  // GEMV: cache lines ahead
    int gemv_k_unroll = 4;   // GEMV: 64-byte rows per loop trip
    int n_block = 64;         // gate/up work item: intermediate channels (multiple of 64)
    int n_block_down = 256;   // down work item: hidden channels (multiple of 64): 7168 / 256 = 28 items. Each
                              // item reads every route's intermediate rows, so fewer, wider items read them less
                              // often
    int m_block = 64;         // AMX: token rows per kernel call (rounded up to 16 * m_tiles)
    int amx_k_block = 0;      // AMX: k steps (64 bytes) per K chunk, C through memory between chunks (0 = none)
    int amx_pf_a = 1;         // AMX: k steps ahead to prefetch A tiles into L1 (0 = none); 1 since session 8
    int amx_pf_b = 1;         // AMX: k steps ahead to prefetch B tiles into L1 (0 = none); 1 since session 8:
                              // device, same process: +35% at M = 256 (13.5 vs 10.0 TOPS), +19% at 1024 (13.8 vs
                              // 11.6): the next k step's tiles are in L1 when their tileloadd issues, instead of
                              // each load waiting on L2 behind the products that still read its tile register
    int amx_pf_next = 32;     // AMX with K chunks: at most this many lines of the next chunk (or call) prefetched
                              // into L2 per k step, spread over the chunk (0 = none)
    int amx_a_tiled = 0;      // AMX int8/bf16: activations of AMX routes stored tiled (AmxGemmConfig::a_tiled)
    int amx_chunk_min_m = 128;  // with amx_k_block: routes of fewer tokens run the whole-K kernel (no chunks, no
                                // next-chunk prefetch); 0 = every AMX route chunked. VM: chunks lose at m = 64
    int down_token_ranges = 8;  // down pass: at most this many token ranges per column block (0 or 1: none), where
                                // every route's tokens ascend and the ranges keep at least 128 rows per route
                                // (runtime/expert_ffn_token_ranges.hpp)
    int int4_amx_unpack = 65536;  // int4 AMX routes of at most this many tokens: the kernel unpacks each group of the
                                  // packed weights itself (AmxGemmConfig::unpack_b); longer routes: each work item
                                  // first unpacks its panels to int8 in a buffer the kernel then reads (0: always).
                                  // Device, same process (session 6): the kernel's own unpack for every route +6.5% at
                                  // M = 256, +3% at 1024, equal at 64, against per-item unpack above 64 tokens (the
                                  // session-5 default, 64; the per-item pass then cost 13% of gate/up at 256)
    int int4_sb_min_m = 0;  // int4 AMX routes of at least this many tokens whose weights hold the Q4_K super-block
                            // form (pack_int4_sb.hpp: every decoded Q4_K does) run the int4_sb kernel: sc folded
                            // into lo / hi weight bytes, each 256 k merged in integer (two K = 64 products per 64 k,
                            // one float step per super block); up to int4_amx_unpack tokens the kernel unpacks the
                            // form itself (once per panel and super block for all rows of a call), longer routes'
                            // work items unpack their panels to it first; 0 = never (the per-group kernel). Same
                            // process (session 7): 2-core VM +6% at M = 24, +10% at 32, +17-30% at 64, +22-27% at
                            // 256, -13% at 16; but the 16-core device -18% at 64, -21% at 256, -15% at 1024: off by
                            // default, a tuner candidate (32)
    int amx_k_inner = 0;  // with amx_k_block: the K chunk loop inside the outer m / n loop (AmxGemmConfig::k_inner)
    int down_range_min_rows = 128;  // down pass: token ranges keep at least this many rows per route and range on
                                    // average (each range re-reads its column block's weights of every route).
                                    // Device (16 cores, m = 1024, interleaved): ranges of 256 rows +11% (down pass
                                    // -14%); 64 lets m = 256 split 4 ways (112 items: 7 whole rounds of 16)
    int int4_amx_pf_a = 1;  // int4 AMX kernels: lines (2 groups each) ahead to prefetch the A rows into L1, like
                            // amx_pf_a for int8 (0 = none). 1 since session 9: device, same process (session 8)
                            // +9% / +4% / -1% / +4% at M = 16 / 64 / 256 / 1024; VM, same process, within the
                            // noise (-6% to +7%)
    int amx_pf_call = 0;  // AMX int8/bf16, the down pass's whole-K calls: lines per k step of the next call's A
                          // rows prefetched into L2 (AmxGemmConfig::pf_call; 0 = none, <= 32): a call's first
                          // panel group otherwise streams its rows from L3. Not in gate/up, where the next call's
                          // 448 KiB of rows crowd L2 (VM, same process: gate/up +10-12% time, down -4-6%)
    // Defaults: 2x2 tiles, order nm (the AMX kernel loads each tile just before its first product), whole K per
    // call. n_block_down 256: best measured on the 16-core device (session 3). m_block 64 (session 4, device: m = 1024
    // 15.4 TOPS against 11.7-13.2 for 256 in separate runs, +3% interleaved in one process, m = 256 -2% to equal; VM
    // interleaved +11% at 1024, equal at 256): a call's A rows (64 x 7 KiB) and the item's B panels (896 KiB) then
    // stay in L2 together across the item's calls. down_token_ranges 8: device interleaved +11% at m = 1024.
    // amx_pf_a / amx_pf_b 1 (session 8): each k step prefetches the next one's A rows and B tiles into L1 (device,
    // same process, +35% at m = 256, +19% at 1024).
    // On the 2-core VM, K chunks of 8 with tiled activations ('{"amx_k_block":8,"amx_a_tiled":1,"n_block":128,
    // "n_block_down":448}') run +15-24% at m = 256 / 1024, one or two threads; on the device they measured equal
    // (aligned C scratch) to 25% slower (before it): a tuner candidate, not the default.
    // gemv_max_m and gemv_prefetch as measured best on the device (bench kernels: m=16 65% -> 94% of roofline).
    template <class S, class F>
    static void visit(S& s, F&& f) {
        f("gemv_max_m", "g", s.gemv_max_m);
        f("int4_amx_min_m", "q", s.int4_amx_min_m);
        f("m_tiles", "mt", s.m_tiles);
        f("n_tiles", "nt", s.n_tiles);
        f("order", "", s.order);
        f("amx_prefetch", "apf", s.amx_prefetch);
        f("gemv_panels", "np", s.gemv_panels);
        f("gemv_prefetch", "pf", s.gemv_prefetch);
        f("gemv_k_unroll", "u", s.gemv_k_unroll);
        f("n_block", "n", s.n_block);
        f("n_block_down", "nd", s.n_block_down);
        f("m_block", "m", s.m_block);
        f("amx_k_block", "akb", s.amx_k_block);
        f("amx_pf_a", "apa", s.amx_pf_a);
        f("amx_pf_b", "apb", s.amx_pf_b);
        f("amx_pf_next", "apn", s.amx_pf_next);
        f("amx_a_tiled", "aat", s.amx_a_tiled);
        f("amx_chunk_min_m", "acm", s.amx_chunk_min_m);
        f("down_token_ranges", "dtr", s.down_token_ranges);
        f("int4_amx_unpack", "qu", s.int4_amx_unpack);
        f("int4_sb_min_m", "qsb", s.int4_sb_min_m);
        f("amx_k_inner", "aki", s.amx_k_inner);
        f("down_range_min_rows", "drm", s.down_range_min_rows);
        f("int4_amx_pf_a", "qpa", s.int4_amx_pf_a);
        f("amx_pf_call", "apc", s.amx_pf_call);
    }
    bool operator==(const ExpertFfnConfig& o) const { return fields_equal(*this, o); }

    AmxGemmConfig amx() const {
        AmxGemmConfig a{m_tiles,  n_tiles,  order,       amx_prefetch, amx_k_block,
                        amx_pf_a, amx_pf_b, amx_a_tiled, amx_pf_next};
        a.k_inner = amx_k_inner;
        a.pf_call = amx_pf_call;
        return a;
    }
    GemvConfig gemv(int m, WeightType wtype) const {
        GemvConfig g{gemv_panels, gemv_prefetch, wtype == WeightType::int4 ? 1 : gemv_k_unroll};
        g.panels = gemv_panels_for(m, g, wtype);
        return g;
    }
};

}  // namespace mf
