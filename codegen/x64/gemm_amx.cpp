#include "codegen/x64/gemm_amx.hpp"

#include "codegen/x64/gemm_amx_int4.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>

namespace mf {
namespace {

// int8: tdpbsud (signed activations x unsigned weights, int32 C); bf16: tdpbf16ps (fp32 C). A k step is one
// 64-byte tile row: 64 k of int8 or 32 k of bf16.
// Tiles: tmm[i*nt + j] accumulate C block (i, j) for i < mt, j < nt; then mt A tiles, then nt B tiles.
//        All tiles are 16 rows x 64 bytes (A: 16 tokens x 64 bytes of k; B: 16 rows of 16 channels x 4 bytes
//        of k (4 int8 or 2 bf16); C: 16x16 int32 or fp32).
// K chunks (k_block > 0): the m/n loops run once per chunk of k_block k steps; C goes back to memory between
//        chunks (the first chunk starts from zero, later ones reload it), so one chunk's A rows stay in L1
//        while the n loop streams B (order mn), or one chunk's B panels stay in L1 across the m loop (nm).
// Next-chunk prefetch (pf_next > 0 with K chunks): while chunk c computes, each k step prefetches pf_next
//        cache lines of chunk c+1 into L2, walking a stream of regions: first every A row of the call (the
//        chunk's k range of the row), then every B panel (the chunk's tiles of the panel). The tile loads of
//        chunk c+1 then hit L2 instead of waiting on L3/DRAM in a burst at the chunk's start.
// Next-call prefetch (pf_call > 0, whole K): the same stream with the caller's next call as the "next chunk",
//        A rows only (within a route the next call reads the same B panels, already in L2; at a route's end the
//        next call is another expert's, whose B this stream does not fetch): the next call's first panel group
//        then finds its A rows in L2 instead of streaming them from L3.
// K chunks inside the outer loop (k_inner): for each outer step (row group for mn, panel group for nm), for each
//        chunk, for each inner step: block. The outer operand's chunk (2 KiB per k step) is reused from L1 by every
//        inner block, and the C blocks of the outer step (mn: m_tiles row tiles x all panels) are small enough to
//        stay in L1 between chunks, so only the inner operand streams from L2.
// Registers: rdi args; r8 A of the current row group, r9 B of the current panel group, r10 C of the current
//            block, rcx start of the inner loop's C, r11 ldc, r12 = K_pad (A row stride), r13 = 64 (B row
//            stride), r14 m count, r15 n count, rsi/rdx A/B walking along K, rax k count (then a scratch),
//            rbx C row / scratch (in the k loop: the prefetch stream's next line), rbp scratch.
//            k_inner: r14 outer count, r15 inner count (r8 / r9 re-derived per chunk from kSOuter).
// Stack: see the kS* offsets below.
class GemmAmx : public JitKernel {
  public:
    GemmAmx(const AmxGemmDesc& d, const AmxGemmConfig& c) : JitKernel(kernel_name(d, c)), d_(d), c_(c) {}

  private:
    // Stack slots (bytes from rsp).
    static constexpr int kSChunk = 0;       // byte offset of the current chunk in an A row (B offset: 16x that)
    static constexpr int kSCStep = 8;       // 16 * mt * ldc: C bytes of one row group
    static constexpr int kSPfPtr = 16;      // prefetch stream: next line
    static constexpr int kSPfLeft = 24;     // lines left in the current region
    static constexpr int kSPfRegions = 32;  // regions left in the current phase (0: stream done)
    static constexpr int kSPfPhase = 40;    // 0: A rows, 1: B panels
    static constexpr int kSPfLines = 48;    // lines per region of the current phase
    static constexpr int kSPfJump = 56;     // bytes from a region's end to the next region's start
    static constexpr int kSPfBRegions = 64;  // the B phase's regions, lines, jump and first line
    static constexpr int kSPfBLines = 72;
    static constexpr int kSPfBJump = 80;
    static constexpr int kSPfBBase = 88;
    static constexpr int kSPfRate = 96;    // lines per k step in this chunk
    static constexpr int kSPfCount = 104;  // lines left in this k step
    static constexpr int kSPfA = 112;      // the A and B the stream's chunk belongs to (this call's or the next's)
    static constexpr int kSPfB = 120;
    static constexpr int kSOuter = 128;    // k_inner: A (mn) or B (nm) of the current outer step, chunk 0
    static constexpr int kFrame = 144;

    JitStatus check() const override {
        if (d_.wtype == WeightType::int4 || d_.k <= 0) return JitStatus::bad_desc;
        const int mt = c_.m_tiles, nt = c_.n_tiles;
        if (mt < 1 || nt < 1 || nt > 4 || (nt & (nt - 1)) || mt * nt + mt + nt > 8)
            return JitStatus::bad_desc;
        if (c_.prefetch < 0 || c_.prefetch > 64) return JitStatus::bad_desc;
        if (c_.k_block < 0 || c_.pf_a < 0 || c_.pf_a > 16 || c_.pf_b < 0 || c_.pf_b > 16 || c_.pf_next < 0 ||
            c_.pf_next > 32 || c_.a_tiled < 0 || c_.a_tiled > 1 || c_.unpack_b != 0 || c_.k_inner < 0 ||
            c_.k_inner > 1 || c_.pf_call < 0 || c_.pf_call > 32)
            return JitStatus::bad_desc;
        return JitStatus::ok;
    }

    Xbyak::Tmm tile(int i) const { return Xbyak::Tmm(i); }
    bool bf16() const { return d_.wtype == WeightType::bf16; }
    int64_t lda() const { return round_up(d_.k, kKAlign) * (bf16() ? 2 : 1); }  // A row bytes
    int64_t k_steps() const { return lda() / 64; }
    // K steps per chunk; == k_steps() when C stays in tiles across all of K.
    int64_t chunk() const { return c_.k_block > 0 ? std::min<int64_t>(c_.k_block, k_steps()) : k_steps(); }
    bool chunked() const { return chunk() < k_steps(); }
    bool k_inner() const { return chunked() && c_.k_inner; }
    // The L2 prefetch stream: the next chunk's A and B (K chunks), or the next call's A (whole K, pf_call).
    bool pf_next() const { return chunked() ? !k_inner() && c_.pf_next > 0 : c_.pf_call > 0; }
    int pf_lines() const { return chunked() ? c_.pf_next : c_.pf_call; }
    bool a_tiled() const { return c_.a_tiled != 0; }

    // Sets up the prefetch stream of the chunk after the current one: after the last, the first chunk of the
    // caller's next call (args.a_next / b_next), or none. Uses rax, rbx, rsi, rdx.
    void pf_stream_start() {
        const int64_t kp = lda(), pstride = k_steps() * 1024;
        Xbyak::Label last, set, have;
        mov(rbx, ptr[rdi + offsetof(ExpertGemmArgs, a)]);
        mov(qword[rsp + kSPfA], rbx);
        mov(rbx, ptr[rdi + offsetof(ExpertGemmArgs, b)]);
        mov(qword[rsp + kSPfB], rbx);
        mov(rax, qword[rsp + kSChunk]);
        add(rax, int(chunk() * 64));  // the next chunk's byte offset in an A row
        cmp(rax, int(k_steps() * 64));
        jl(have, T_NEAR);
        mov(rbx, ptr[rdi + offsetof(ExpertGemmArgs, a_next)]);
        test(rbx, rbx);
        jz(last, T_NEAR);
        mov(qword[rsp + kSPfA], rbx);
        mov(rbx, ptr[rdi + offsetof(ExpertGemmArgs, b_next)]);
        mov(qword[rsp + kSPfB], rbx);
        xor_(eax, eax);
        L(have);
        // its k steps: min(chunk, k_steps - offset / 64)
        mov(rbx, k_steps() * 64);
        sub(rbx, rax);
        shr(rbx, 6);
        mov(rsi, chunk());
        cmp(rbx, rsi);
        cmovg(rbx, rsi);
        if (a_tiled()) {
            // A: like B, 16 lines (one tile) per k step of each row tile, row tiles k_steps KiB apart
            shl(rbx, 4);
            mov(qword[rsp + kSPfLines], rbx);
            mov(qword[rsp + kSPfLeft], rbx);
            mov(qword[rsp + kSPfBLines], rbx);
            shl(rbx, 6);
            mov(rsi, pstride);
            sub(rsi, rbx);
            mov(qword[rsp + kSPfJump], rsi);
            mov(qword[rsp + kSPfBJump], rsi);
            shl(rax, 4);
            mov(rbx, qword[rsp + kSPfA]);
            add(rbx, rax);
            mov(qword[rsp + kSPfPtr], rbx);
            add(rax, qword[rsp + kSPfB]);
            mov(qword[rsp + kSPfBBase], rax);
            mov(rax, ptr[rdi + offsetof(ExpertGemmArgs, m_steps)]);
            imul(rax, rax, c_.m_tiles);
        } else {
            mov(qword[rsp + kSPfLines], rbx);  // A: one line per k step of each row
            mov(qword[rsp + kSPfLeft], rbx);
            mov(rsi, kp);
            shl(rbx, 6);
            sub(rsi, rbx);
            mov(qword[rsp + kSPfJump], rsi);
            shl(rbx, 4);  // B: 16 lines (one tile) per k step of each panel
            mov(rsi, pstride);
            sub(rsi, rbx);
            mov(qword[rsp + kSPfBJump], rsi);
            shr(rbx, 6);
            mov(qword[rsp + kSPfBLines], rbx);
            mov(rbx, qword[rsp + kSPfA]);
            add(rbx, rax);
            mov(qword[rsp + kSPfPtr], rbx);
            shl(rax, 4);
            add(rax, qword[rsp + kSPfB]);
            mov(qword[rsp + kSPfBBase], rax);
            mov(rax, ptr[rdi + offsetof(ExpertGemmArgs, m_steps)]);
            imul(rax, rax, 16 * c_.m_tiles);
        }
        mov(qword[rsp + kSPfRegions], rax);
        if (chunked()) {
            mov(rax, ptr[rdi + offsetof(ExpertGemmArgs, n_steps)]);
            imul(rax, rax, c_.n_tiles);
            mov(qword[rsp + kSPfBRegions], rax);
        } else {
            mov(qword[rsp + kSPfBRegions], 0);  // pf_call: A rows only
        }
        mov(qword[rsp + kSPfPhase], 0);
        // Lines per k step: the stream spread evenly over this chunk's k steps (a burst at the chunk's start
        // measured slower), at most pf_next: ceil((A regions x lines + B regions x lines) / (this chunk's k steps
        // x m_steps x n_steps)).
        mov(rax, qword[rsp + kSPfRegions]);
        imul(rax, qword[rsp + kSPfLines]);
        mov(rsi, qword[rsp + kSPfBRegions]);
        imul(rsi, qword[rsp + kSPfBLines]);
        add(rax, rsi);
        mov(rsi, k_steps() * 64);
        sub(rsi, qword[rsp + kSChunk]);
        shr(rsi, 6);
        mov(rbx, chunk());
        cmp(rsi, rbx);
        cmovg(rsi, rbx);  // this chunk's k steps
        imul(rsi, ptr[rdi + offsetof(ExpertGemmArgs, m_steps)]);
        imul(rsi, ptr[rdi + offsetof(ExpertGemmArgs, n_steps)]);
        add(rax, rsi);
        dec(rax);
        xor_(edx, edx);
        div(rsi);
        mov(rbx, pf_lines());
        cmp(rax, rbx);
        cmovg(rax, rbx);
        mov(qword[rsp + kSPfRate], rax);
        jmp(set, T_NEAR);
        L(last);
        mov(qword[rsp + kSPfRegions], 0);
        mov(qword[rsp + kSPfPhase], 1);
        mov(qword[rsp + kSPfRate], 0);  // no stream (whole K: no earlier chunk has set a rate)
        L(set);
    }

    // One line of the prefetch stream (rbx), then the stream's bookkeeping. Uses rbp.
    void pf_stream_line() {
        Xbyak::Label skip;
        cmp(qword[rsp + kSPfRegions], 0);
        je(skip, T_NEAR);
        prefetcht1(ptr[rbx]);
        add(rbx, 64);
        dec(qword[rsp + kSPfLeft]);
        jnz(skip, T_NEAR);
        add(rbx, qword[rsp + kSPfJump]);
        mov(rbp, qword[rsp + kSPfLines]);
        mov(qword[rsp + kSPfLeft], rbp);
        dec(qword[rsp + kSPfRegions]);
        jnz(skip, T_NEAR);
        cmp(qword[rsp + kSPfPhase], 0);
        jne(skip, T_NEAR);
        mov(qword[rsp + kSPfPhase], 1);  // A rows done: the B panels follow
        for (auto [dst, src] : {std::pair{kSPfRegions, kSPfBRegions}, {kSPfLines, kSPfBLines},
                                {kSPfLeft, kSPfBLines}, {kSPfJump, kSPfBJump}}) {
            mov(rbp, qword[rsp + src]);
            mov(qword[rsp + dst], rbp);
        }
        mov(rbx, qword[rsp + kSPfBBase]);
        L(skip);
    }

    // Stores (or loads) the block's C tiles at r10.
    void c_tiles(bool load) {
        const int mt = c_.m_tiles, nt = c_.n_tiles;
        mov(rbx, r10);
        for (int i = 0; i < mt; ++i) {
            for (int j = 0; j < nt; ++j) {
                if (load)
                    tileloadd(tile(i * nt + j), ptr[rbx + r11 + j * 64]);
                else
                    tilestored(ptr[rbx + r11 + j * 64], tile(i * nt + j));
            }
            if (i + 1 < mt) {
                mov(rax, r11);
                shl(rax, 4);
                add(rbx, rax);
            }
        }
    }

    void block() {
        const int mt = c_.m_tiles, nt = c_.n_tiles;
        const int64_t kp = lda(), pstride = k_steps() * 1024;
        if (chunked()) {
            Xbyak::Label reload, go;
            cmp(qword[rsp], 0);
            jne(reload, T_NEAR);
            for (int t = 0; t < mt * nt; ++t) tilezero(tile(t));
            jmp(go, T_NEAR);
            L(reload);
            c_tiles(true);
            L(go);
            // this chunk's steps: min(chunk, k_steps - offset / 64)
            mov(rax, k_steps() * 64);
            sub(rax, qword[rsp]);
            shr(rax, 6);
            mov(rbx, chunk());
            cmp(rax, rbx);
            cmovg(rax, rbx);
        } else {
            for (int t = 0; t < mt * nt; ++t) tilezero(tile(t));
            mov(rax, k_steps());
        }
        mov(rsi, r8);
        mov(rdx, r9);
        if (pf_next()) mov(rbx, qword[rsp + kSPfPtr]);
        Xbyak::Label k_loop;
        L(k_loop);
        if (pf_next()) {
            Xbyak::Label line, none;
            mov(rbp, qword[rsp + kSPfRate]);
            test(rbp, rbp);
            jz(none, T_NEAR);
            mov(qword[rsp + kSPfCount], rbp);
            L(line);
            pf_stream_line();
            dec(qword[rsp + kSPfCount]);
            jnz(line, T_NEAR);
            L(none);
        }
        // Each tile is loaded just before its first product (tiles are not renamed: a load waits for the
        // products still reading the previous contents), so loads overlap the products of earlier tiles.
        for (int i = 0; i < mt; ++i) {
            // Row tile i of A: 16 rows kp apart (row-major), or one contiguous KiB (tiled), 16 kp further on.
            tileloadd(tile(mt * nt + i), ptr[rsi + (a_tiled() ? r13 : r12) + i * 16 * kp]);
            if (c_.pf_a)
                for (int r = 0; r < 16; ++r)
                    prefetcht0(a_tiled() ? ptr[rsi + i * 16 * kp + r * 64 + c_.pf_a * 1024]
                                         : ptr[rsi + (i * 16 + r) * kp + c_.pf_a * 64]);
            for (int j = 0; j < nt; ++j) {
                if (i == 0) {
                    tileloadd(tile(mt * nt + mt + j), ptr[rdx + r13 + j * pstride]);
                    if (c_.prefetch) prefetcht1(ptr[rdx + j * pstride + c_.prefetch * 1024]);
                    if (c_.pf_b)
                        for (int r = 0; r < 16; ++r)
                            prefetcht0(ptr[rdx + j * pstride + c_.pf_b * 1024 + r * 64]);
                }
                if (bf16())
                    tdpbf16ps(tile(i * nt + j), tile(mt * nt + i), tile(mt * nt + mt + j));
                else
                    tdpbsud(tile(i * nt + j), tile(mt * nt + i), tile(mt * nt + mt + j));
            }
        }
        add(rsi, a_tiled() ? 1024 : 64);
        add(rdx, 1024);
        dec(rax);
        jnz(k_loop, T_NEAR);
        if (pf_next()) mov(qword[rsp + kSPfPtr], rbx);
        c_tiles(false);
    }

    // r8 = args.a + chunk offset; r9 = args.b + 16 * chunk offset.
    void a_start() {
        mov(r8, ptr[rdi + offsetof(ExpertGemmArgs, a)]);
        if (chunked()) {
            if (a_tiled()) {
                mov(rax, qword[rsp]);
                shl(rax, 4);
                add(r8, rax);
            } else {
                add(r8, qword[rsp]);
            }
        }
    }
    void b_start() {
        if (chunked()) {
            mov(r9, qword[rsp]);
            shl(r9, 4);
            add(r9, ptr[rdi + offsetof(ExpertGemmArgs, b)]);
        } else {
            mov(r9, ptr[rdi + offsetof(ExpertGemmArgs, b)]);
        }
    }

    // k_inner: for each outer step (row group for mn, panel group for nm): for each K chunk: for each inner step:
    // block. The outer operand's base (chunk 0) lives at kSOuter; r8 / r9 get the chunk offset added per chunk.
    void outer_chunks_inner() {
        const int mt = c_.m_tiles, nt = c_.n_tiles;
        const int64_t kp = lda(), pstride = k_steps() * 1024;
        const bool mn = c_.order == LoopOrder::mn;
        Xbyak::Label outer, chunks, inner;
        mov(rcx, ptr[rdi + offsetof(ExpertGemmArgs, c)]);
        mov(rax, ptr[rdi + (mn ? offsetof(ExpertGemmArgs, a) : offsetof(ExpertGemmArgs, b))]);
        mov(qword[rsp + kSOuter], rax);
        mov(r14, ptr[rdi + (mn ? offsetof(ExpertGemmArgs, m_steps) : offsetof(ExpertGemmArgs, n_steps))]);
        L(outer);
        mov(qword[rsp + kSChunk], 0);
        L(chunks);
        // the outer operand at this chunk (A: +offset, or 16x offset tiled; B: 16x offset), the inner one from
        // its start at this chunk
        mov(rax, qword[rsp + kSChunk]);
        if (mn) {
            if (a_tiled()) shl(rax, 4);
            mov(r8, qword[rsp + kSOuter]);
            add(r8, rax);
            b_start();
        } else {
            shl(rax, 4);
            mov(r9, qword[rsp + kSOuter]);
            add(r9, rax);
            a_start();
        }
        mov(r15, ptr[rdi + (mn ? offsetof(ExpertGemmArgs, n_steps) : offsetof(ExpertGemmArgs, m_steps))]);
        mov(r10, rcx);
        L(inner);
        block();
        if (mn) {
            add(r9, nt * pstride);
            add(r10, nt * 64);
        } else {
            add(r8, 16 * mt * kp);
            add(r10, qword[rsp + kSCStep]);
        }
        dec(r15);
        jnz(inner, T_NEAR);
        add(qword[rsp + kSChunk], int(chunk() * 64));
        cmp(qword[rsp + kSChunk], int(k_steps() * 64));
        jl(chunks, T_NEAR);
        if (mn) {
            add(qword[rsp + kSOuter], int(16 * mt * kp));
            add(rcx, qword[rsp + kSCStep]);
        } else {
            add(qword[rsp + kSOuter], int(nt * pstride));
            add(rcx, nt * 64);
        }
        dec(r14);
        jnz(outer, T_NEAR);
    }

    void generate() override {
        const int mt = c_.m_tiles, nt = c_.n_tiles;
        const int64_t kp = lda(), pstride = k_steps() * 1024;
        Xbyak::Label cfg, chunk_loop, outer, inner, done;
        preamble();
        sub(rsp, kFrame);
        ldtilecfg(ptr[rip + cfg]);
        mov(r11, ptr[rdi + offsetof(ExpertGemmArgs, ldc)]);
        mov(r12, kp);
        mov(r13, 64);
        imul(rax, r11, 16 * mt);
        mov(qword[rsp + kSCStep], rax);
        cmp(qword[rdi + offsetof(ExpertGemmArgs, m_steps)], 0);
        jle(done, T_NEAR);
        cmp(qword[rdi + offsetof(ExpertGemmArgs, n_steps)], 0);
        jle(done, T_NEAR);
        if (k_inner()) {
            outer_chunks_inner();
            jmp(done, T_NEAR);
        }
        mov(qword[rsp + kSChunk], 0);
        L(chunk_loop);
        if (pf_next()) pf_stream_start();
        mov(rcx, ptr[rdi + offsetof(ExpertGemmArgs, c)]);
        if (c_.order == LoopOrder::nm) {
            // for each panel group: for each row group: block
            b_start();
            mov(r15, ptr[rdi + offsetof(ExpertGemmArgs, n_steps)]);
            L(outer);
            a_start();
            mov(r14, ptr[rdi + offsetof(ExpertGemmArgs, m_steps)]);
            mov(r10, rcx);
            L(inner);
            block();
            add(r8, 16 * mt * kp);
            add(r10, qword[rsp + kSCStep]);
            dec(r14);
            jnz(inner, T_NEAR);
            add(r9, nt * pstride);
            add(rcx, nt * 64);
            dec(r15);
            jnz(outer, T_NEAR);
        } else {
            // for each row group: for each panel group: block
            a_start();
            mov(r14, ptr[rdi + offsetof(ExpertGemmArgs, m_steps)]);
            L(outer);
            b_start();
            mov(r15, ptr[rdi + offsetof(ExpertGemmArgs, n_steps)]);
            mov(r10, rcx);
            L(inner);
            block();
            add(r9, nt * pstride);
            add(r10, nt * 64);
            dec(r15);
            jnz(inner, T_NEAR);
            add(r8, 16 * mt * kp);
            add(rcx, qword[rsp + kSCStep]);
            dec(r14);
            jnz(outer, T_NEAR);
        }
        if (chunked()) {
            add(qword[rsp], int(chunk() * 64));
            cmp(qword[rsp], int(k_steps() * 64));
            jl(chunk_loop, T_NEAR);
        }
        L(done);
        tilerelease();
        add(rsp, kFrame);
        postamble();

        // Tile configuration as data (a compiler may drop stores to a config struct): mt*nt + mt + nt tiles.
        emit_full_tile_config(cfg, mt * nt + mt + nt);
    }

    AmxGemmDesc d_;
    AmxGemmConfig c_;
};

}  // namespace

std::unique_ptr<JitKernel> make_gemm_amx(const AmxGemmDesc& desc, const AmxGemmConfig& cfg) {
    if (desc.wtype == WeightType::int4) return make_gemm_amx_int4(desc, cfg);
    return std::make_unique<GemmAmx>(desc, cfg);
}

}  // namespace mf
