// Descriptors of the expert GEMM kernels (AMX for many tokens, AVX-512 VNNI GEMV for few) and their one ABI.
//
// (bf16: the same shapes with 2 bf16 per 4-byte cell, pack_bf16.hpp, fp32 results; int4: pack_int4.hpp.)
// Both kernels read the same packed weights (codegen/x64/pack_int8.hpp): panels of 16 output channels, each
// panel K_pad/4 rows of 64 bytes (16 channels x 4 consecutive k), stored as unsigned bytes w + 128. A 1 KiB
// run of a panel is one AMX B tile (64 k x 16 n); one 64-byte row is one zmm for vpdpbusd. Activations are
// signed int8, rows of K_pad bytes. Both kernels produce C[m][n] = sum_k a[m][k] * (w[n][k] + 128) in int32;
// the caller subtracts 128 * rowsum(a[m]) and applies the scales.
#pragma once
#include <cstdint>
#include <string>

#include "codegen/kernel_fields.hpp"

namespace mf {

enum class WeightType : int { int8 = 0, int4 = 1, bf16 = 2 };
std::string enum_name(WeightType t);
void enum_parse(const std::string& s, WeightType& t);  // throws std::invalid_argument

enum class LoopOrder : int { nm = 0, mn = 1 };  // outer loop first: nm = N blocks outer (B stays in cache)
std::string enum_name(LoopOrder o);
void enum_parse(const std::string& s, LoopOrder& o);

constexpr int kPanelCols = 16;  // output channels per packed panel
constexpr int kKAlign = 64;     // K is padded to this (one AMX int8 tile row)
constexpr int kNAlign = 64;     // N is padded to this (4 panels), so 1, 2 or 4 panels per step always divide
inline int64_t round_up(int64_t x, int64_t a) {
    return (x + a - 1) / a * a;
}

// The one argument struct of both kernels (rdi points at it).
struct ExpertGemmArgs {
    const int8_t*
        a;  // activations: rows of K_pad signed bytes (AMX: 16 * m_tiles * m_steps rows; GEMV: m rows)
    const uint8_t* b;  // first packed panel to use
    int32_t* c;        // int32 results; row r at c + r * ldc bytes, panel p at +64 p bytes
    int64_t ldc;       // bytes between rows of c
    int64_t m_steps;   // AMX only: row groups of 16 * m_tiles
    int64_t n_steps;   // panel groups (AMX: n_tiles panels; GEMV: panels panels)
    // int4 only: per row, K_pad / 32 float sums of the row's int8 activations over each group of 32 k (row
    // stride K_pad / 32 floats). int4 kernels write float results to c: sum_g scale * dot_g - min *
    // group_sum_g.
    const float* a_group_sums = nullptr;
    // AMX int4 only (gemm_amx_int4.hpp): args.b holds the panels unpacked to the int8 layout (or, with unpack_b,
    // the packed data itself); this points at the packed int4 data of the same first panel, for its per-group
    // scales and mins.
    const uint8_t* b_groups = nullptr;
    // AMX int8/bf16 with K chunks and pf_next: the caller's next call on the same kernel (its args.a and args.b;
    // nullptr: none). During the last chunk the prefetch stream fetches that call's first chunk, assuming the same
    // m_steps and n_steps.
    const int8_t* a_next = nullptr;
    const uint8_t* b_next = nullptr;
    // AMX int4 with int4_sb and unpack_b: the super-block table (PackedMatrix::sb) of the same first panel.
    const uint8_t* b_sb = nullptr;
};

constexpr int kInt4Group = 32;        // k per int4 scale/min group
constexpr int kInt4GroupBytes = 384;  // per panel and group: 256 bytes of nibbles, 16 scales, 16 mins
// Rows one int4 GEMV call handles at most (accumulators for two formats per row).
constexpr int kInt4GemvMaxRows = 8;

// AMX int8: tdpbsud over 16-row A tiles and 16-column B tiles.
struct AmxGemmDesc {
    static constexpr const char* kPrefix = "gemm_amx";
    WeightType wtype = WeightType::int8;
    int k = 0;  // reduction length (unpadded)
    template <class S, class F>
    static void visit(S& s, F&& f) {
        f("wtype", "", s.wtype);
        f("k", "k", s.k);
    }
    bool operator==(const AmxGemmDesc& o) const { return fields_equal(*this, o); }
};

struct AmxGemmConfig {
    int m_tiles =
        2;  // accumulator block is m_tiles x n_tiles tiles; m_tiles*n_tiles + m_tiles + n_tiles <= 8
    int n_tiles = 2;  // 1, 2 or 4
    LoopOrder order = LoopOrder::nm;
    int prefetch = 0;  // B tiles ahead to prefetch into L2 (0 = none)
    int k_block = 0;   // k steps (64 bytes of an A row) per K chunk; C leaves the tiles between chunks
                       // (0 = all of K in one chunk: C stays in tiles)
    int pf_a = 0;      // k steps ahead to prefetch A tiles into L1 (prefetcht0 per row; 0 = none, <= 16)
    int pf_b = 0;      // k steps ahead to prefetch B tiles into L1 (0 = none, <= 16)
    int a_tiled = 0;   // A layout: 0 = rows of K_pad bytes; 1 = tiled (store_act_row_tiled): each 16-row group
                       // is k_steps contiguous 1 KiB tiles, so a tile load reads 16 consecutive lines
    int pf_next = 0;   // K chunks only: the NEXT chunk's A rows (tiles), then B panels, prefetched into L2, spread
                       // evenly over the current chunk's k steps, at most pf_next lines per k step (0 = none,
                       // <= 32): the operands arrive while the previous chunk computes instead of in a burst of
                       // tile loads that miss L2
    int unpack_b = 0;  // int4 only: args.b is the packed int4 data itself (pack_int4.hpp), and each group's B tile
                       // is unpacked (mask / shift) into an L1 scratch just before its tile load, instead of the
                       // caller unpacking the panels to int8 first; prefetch then counts groups ahead
                       // (prefetcht0 of the group's 6 lines in each panel)
    int int4_sb = 0;   // int4 only: args.b is the Q4_K super-block form unpacked by unpack_int4_panels_sb (sc folded
                       // into two weight bytes, lo / hi tiles and d per 256 k: pack_int4_sb.hpp); two K = 64 products
                       // per 64 k accumulate over a super block, one float step per super block. m_tiles = n_tiles
                       // = 1. unpack_b = 1: args.b is the packed data and the kernel unpacks each super block
                       // of a panel into L1 once for all of the call's rows (panels outer, super blocks, then row
                       // groups; C through memory; args.b_sb the form's table; prefetch: super blocks ahead
                       // fetched into L2, 0..8)
    int k_inner = 0;   // K chunks only: 1 = the chunk loop runs inside the outer loop (row groups for mn, panel
                       // groups for nm) instead of around both, so the C blocks of one outer step (mn: 16 m_tiles
                       // rows x all panels) stay in L1 across the chunks while the chunk of the outer operand is
                       // reused from L1 by every inner block; pf_next is ignored
    int pf_call = 0;   // whole K (no chunks) only: the caller's NEXT call's A rows (args.a_next, assumed the same
                       // m_steps) prefetched into L2, spread evenly over this call's k steps, at most pf_call lines
                       // per k step (0 = none, <= 32). Each call streams its own A from L3 in its first panel
                       // group otherwise; B is not prefetched (the same panels within a route; another
                       // expert's at a route's end)
    template <class S, class F>
    static void visit(S& s, F&& f) {
        f("m_tiles", "mt", s.m_tiles);
        f("n_tiles", "nt", s.n_tiles);
        f("order", "", s.order);
        f("prefetch", "pf", s.prefetch);
        f("k_block", "kb", s.k_block);
        f("pf_a", "pa", s.pf_a);
        f("pf_b", "pb", s.pf_b);
        f("a_tiled", "at", s.a_tiled);
        f("pf_next", "pn", s.pf_next);
        f("unpack_b", "ub", s.unpack_b);
        f("int4_sb", "sb", s.int4_sb);
        f("k_inner", "ki", s.k_inner);
        f("pf_call", "pc", s.pf_call);
    }
    bool operator==(const AmxGemmConfig& o) const { return fields_equal(*this, o); }
};

// AVX-512 VNNI GEMV for few rows: m rows, vpdpbusd with the activations as embedded 4-byte broadcasts.
struct GemvDesc {
    static constexpr const char* kPrefix = "gemv_avx512";
    WeightType wtype = WeightType::int8;
    int k = 0;
    int m = 1;  // rows (tokens) handled together, 1..16
    template <class S, class F>
    static void visit(S& s, F&& f) {
        f("wtype", "", s.wtype);
        f("k", "k", s.k);
        f("m", "m", s.m);
    }
    bool operator==(const GemvDesc& o) const { return fields_equal(*this, o); }
};

struct GemvConfig {
    int panels = 2;    // panels streamed together (1, 2 or 4); needs m*panels + panels <= 32 zmm
    int prefetch = 8;  // cache lines ahead per stream for prefetcht0 (0 = none)
    int k_unroll = 4;  // k rows of 64 bytes per loop trip (divides 16)
    template <class S, class F>
    static void visit(S& s, F&& f) {
        f("panels", "np", s.panels);
        f("prefetch", "pf", s.prefetch);
        f("k_unroll", "u", s.k_unroll);
    }
    bool operator==(const GemvConfig& o) const { return fields_equal(*this, o); }
};

// Stores activation row i of an AMX A block in the tiled layout (AmxGemmConfig::a_tiled): 64-byte piece s of the
// row (row_bytes = K_pad, or 2 K_pad for bf16) goes to block + (i / 16) * 16 * row_bytes + s * 1024 + (i % 16) * 64.
// Row groups sit where the row-major layout has them, so a block of rows starts at the same offset in both.
void store_act_row_tiled(const void* row, int64_t row_bytes, int64_t i, void* block);

// Largest of cfg.panels, /2, /4 whose accumulators for m rows fit the zmm file (int4 needs twice as many).
int gemv_panels_for(int m, const GemvConfig& cfg, WeightType wtype = WeightType::int8);
// The zmm registers a GEMV kernel needs for m rows of np panels.
int gemv_zmm_needed(int m, int np, WeightType wtype);

}  // namespace mf
