// The AMX int4 kernel over the Q4_K super-block form that unpacks the form itself (AmxGemmConfig::int4_sb with
// unpack_b; arithmetic and layout: pack_int4_sb.hpp). Per panel, per super block: the block's groups are unpacked
// (sc * q as lo / hi bytes, vpmaddubsw + byte blends) into an L1 ring of 4 steps x (lo, hi) B tiles, once; then
// every row group of the call runs the block's products out of that ring (A from the rows) and its float step
// into C, which lives in memory across the super blocks. So the unpack is paid once per panel, block and call,
// not once per row group, and no unpacked copy of the weights leaves L1.
#include <algorithm>
#include <cstddef>

#include "codegen/x64/gemm_amx_int4.hpp"
#include "codegen/x64/pack_int4_sb.hpp"

namespace mf {
namespace {

// Tiles: tmm0 / tmm1 the lo / hi sums of even row groups, tmm2 / tmm3 of odd ones, tmm4 A (16 rows x 64 k), tmm5 / tmm6 the step's lo / hi B.
// zmm:   unpack: zmm20 the 0x0f mask, zmm21 sc as dwords, zmm22 / zmm23 sc in the even / odd byte of each word,
//        zmm24 packed row, zmm25 / zmm26 nibbles, zmm27 / zmm28 sc * q words, zmm29 / zmm30 results; k1 odd
//        bytes. Float step: zmm16 d, zmm8..15 the mins of the block's groups, zmm0..7 row values / C rows,
//        zmm31 zero.
// Registers: rdi args; r8 A (row 0); r9 packed groups of the panel (walking by block); r10 C of the panel
//            column; r11 ldc; r12 = K_pad (A row stride); r13 = 64; r14 row groups left; r15 panels left; rdx
//            A of the block's first k (row 0); rsi A of the row group; rcx the row group's group sums of the
//            block; rbp C row; rbx the form's table (walking by block); rax blocks left.
// Stack: [rsp, +8 KiB) the ring (step t: lo at 2048 t, hi at 2048 t + 1024), [+8 KiB, +12 KiB) the stored lo /
//        hi tiles of both sets, then slots kSavedRsp, kSumsCol (group sums of the block's first group, row 0).
class GemmAmxInt4SbUnpack : public JitKernel {
  public:
    GemmAmxInt4SbUnpack(const AmxGemmDesc& d, const AmxGemmConfig& c) : JitKernel(kernel_name(d, c)), d_(d), c_(c) {}

  private:
    JitStatus check() const override {
        if (d_.wtype != WeightType::int4 || d_.k <= 0) return JitStatus::bad_desc;
        if (c_.m_tiles != 1 || c_.n_tiles != 1 || c_.k_block != 0 || c_.int4_sb != 1 || c_.unpack_b != 1)
            return JitStatus::bad_desc;
        return JitStatus::ok;
    }

    int64_t kp() const { return round_up(d_.k, kKAlign); }
    int64_t groups() const { return kp() / kInt4Group; }
    static constexpr int kRing = 0, kTiles = 8192, kSlots = 12288;
    Xbyak::Address slot(int i) { return qword[rsp + kSlots + 8 * i]; }
    static constexpr int kSavedRsp = 0, kSumsCol = 1;

    // The block's ng groups from r9 (sc from rbx + 64) into the ring.
    void unpack_block(int ng) {
        using Xbyak::Zmm;
        for (int g = 0; g < ng; ++g) {
            vpmovzxbd(zmm21, xword[rbx + 64 + 16 * g]);
            vpslld(zmm22, zmm21, 16);
            vpord(zmm22, zmm22, zmm21);
            vpsllw(zmm23, zmm22, 8);
            const int base = kRing + (g / 2) * 2048 + (g % 2) * 512;
            for (int r = 0; r < 4; ++r) {
                vmovdqu32(zmm24, ptr[r9 + g * kInt4GroupBytes + r * 64]);
                vpsrlw(zmm26, zmm24, 4);
                vpandd(zmm25, zmm24, zmm20);
                vpandd(zmm26, zmm26, zmm20);
                for (int h = 0; h < 2; ++h) {
                    const Zmm nib(25 + h);
                    vpmaddubsw(zmm27, nib, zmm22);
                    vpmaddubsw(zmm28, nib, zmm23);
                    vpsllw(zmm29, zmm28, 8);
                    vpblendmb(zmm29 | k1, zmm27, zmm29);
                    vpsrlw(zmm30, zmm27, 8);
                    vpblendmb(zmm30 | k1, zmm30, zmm28);
                    vmovdqa32(ptr[rsp + base + (2 * r + h) * 64], zmm29);
                    vmovdqa32(ptr[rsp + base + 1024 + (2 * r + h) * 64], zmm30);
                }
            }
        }
    }

    // Products of one row group's block (A at rsi, B in the ring) into tile set `set`, stored to its scratch;
    // advances rsi to the next row group.
    void rg_tiles(int set, int steps) {
        const Xbyak::Tmm lo(2 * set), hi(2 * set + 1);
        tilezero(lo);
        tilezero(hi);
        for (int t = 0; t < steps; ++t) {
            tileloadd(tmm4, ptr[rsi + r12 + t * 64]);
            tileloadd(tmm5, ptr[rsp + r13 + kRing + t * 2048]);
            tileloadd(tmm6, ptr[rsp + r13 + kRing + t * 2048 + 1024]);
            tdpbsud(lo, tmm4, tmm5);
            tdpbsud(hi, tmm4, tmm6);
        }
        tilestored(ptr[rsp + r13 + kTiles + set * 2048], lo);
        tilestored(ptr[rsp + r13 + kTiles + set * 2048 + 1024], hi);
        add(rsi, int(16 * kp()));
    }

    // Float step of the row group whose sums are in scratch set `set` (group sums at rcx, C rows at rbp): per row
    // S = lo + 256 hi, c = fma(float(S), d, c), c = fma(-min_g, group_sum_g, c) per group; advances rcx / rbp.
    void rg_floats(int set, int ng) {
        using Xbyak::Zmm;
        const int64_t G = groups();
        for (int r = 0; r < 16; ++r) {
            const Zmm v(r % 4), acc(4 + r % 4);
            vpslld(v, ptr[rsp + kTiles + set * 2048 + 1024 + r * 64], 8);
            vpaddd(v, v, ptr[rsp + kTiles + set * 2048 + r * 64]);
            vcvtdq2ps(v, v);
            vmovups(acc, ptr[rbp]);
            vfmadd231ps(acc, v, zmm16);
            for (int g = 0; g < ng; ++g) vfnmadd231ps(acc, Zmm(8 + g), ptr_b[rcx + r * G * 4 + g * 4]);
            vmovups(ptr[rbp], acc);
            add(rbp, r11);
        }
        add(rcx, int(16 * G * 4));
    }

    // One super block of ng groups at r9 / rbx / rdx / kSumsCol: unpack, then every row group's products and
    // float step, the float step of row group i after the products of i + 1 (two tile sets); advances to the next
    // block.
    void super_block(int ng) {
        using Xbyak::Zmm;
        const int steps = ng / 2;
        unpack_block(ng);
        vmovups(zmm16, ptr[rbx]);
        for (int g = 0; g < ng; ++g) vmovups(Zmm(8 + g), ptr[r9 + g * kInt4GroupBytes + 320]);
        mov(rsi, rdx);
        mov(rcx, slot(kSumsCol));
        mov(rbp, r10);
        mov(r14, ptr[rdi + offsetof(ExpertGemmArgs, m_steps)]);
        dec(r14);  // row groups after the first
        Xbyak::Label pair, tail, last0, end;
        rg_tiles(0, steps);
        L(pair);
        cmp(r14, 2);
        jl(tail, T_NEAR);
        rg_tiles(1, steps);
        rg_floats(0, ng);
        rg_tiles(0, steps);
        rg_floats(1, ng);
        sub(r14, 2);
        jmp(pair, T_NEAR);
        L(tail);
        test(r14, r14);
        jz(last0, T_NEAR);
        rg_tiles(1, steps);
        rg_floats(0, ng);
        rg_floats(1, ng);
        jmp(end, T_NEAR);
        L(last0);
        rg_floats(0, ng);
        L(end);
        add(rdx, ng * kInt4Group);
        add(qword[rsp + kSlots + 8 * kSumsCol], ng * 4);
        add(r9, ng * kInt4GroupBytes);
        add(rbx, kInt4SbBytes);
    }

    void generate() override {
        const int64_t G = groups(), full = G / kInt4SbGroups, rest = G % kInt4SbGroups;
        Xbyak::Label cfg, panel, zero, blocks, done;
        preamble();
        mov(rax, rsp);
        sub(rsp, kSlots + 64 + 64);
        and_(rsp, -64);
        mov(slot(kSavedRsp), rax);
        ldtilecfg(ptr[rip + cfg]);
        vpxord(zmm31, zmm31, zmm31);
        mov(eax, 0x0f0f0f0f);
        vpbroadcastd(zmm20, eax);
        mov(rax, 0xaaaaaaaaaaaaaaaaull);
        kmovq(k1, rax);
        mov(r11, ptr[rdi + offsetof(ExpertGemmArgs, ldc)]);
        mov(r12, kp());
        mov(r13, 64);
        cmp(qword[rdi + offsetof(ExpertGemmArgs, m_steps)], 0);
        jle(done, T_NEAR);
        mov(r15, ptr[rdi + offsetof(ExpertGemmArgs, n_steps)]);
        test(r15, r15);
        jle(done, T_NEAR);
        mov(r8, ptr[rdi + offsetof(ExpertGemmArgs, a)]);
        mov(r9, ptr[rdi + offsetof(ExpertGemmArgs, b)]);
        mov(rbx, ptr[rdi + offsetof(ExpertGemmArgs, b_sb)]);
        mov(r10, ptr[rdi + offsetof(ExpertGemmArgs, c)]);
        L(panel);
        // The panel column of C starts at zero: 16 floats per row of every row group.
        mov(rbp, r10);
        mov(r14, ptr[rdi + offsetof(ExpertGemmArgs, m_steps)]);
        shl(r14, 4);
        L(zero);
        vmovups(ptr[rbp], zmm31);
        add(rbp, r11);
        dec(r14);
        jnz(zero, T_NEAR);
        mov(rdx, r8);
        mov(rax, ptr[rdi + offsetof(ExpertGemmArgs, a_group_sums)]);
        mov(slot(kSumsCol), rax);
        if (full > 0) {
            mov(rax, full);
            L(blocks);
            super_block(kInt4SbGroups);  // leaves rax alone
            dec(rax);
            jnz(blocks, T_NEAR);
        }
        if (rest) super_block(int(rest));
        add(r10, 64);  // r9 / rbx now sit at the next panel's groups / table
        dec(r15);
        jnz(panel, T_NEAR);
        L(done);
        tilerelease();
        mov(rsp, slot(kSavedRsp));
        postamble();
        emit_tile_config(cfg, 7, [](int) { return TileShape{16, 64}; });
    }

    AmxGemmDesc d_;
    AmxGemmConfig c_;
};

}  // namespace

std::unique_ptr<JitKernel> make_gemm_amx_int4_sb_unpack(const AmxGemmDesc& desc, const AmxGemmConfig& cfg) {
    return std::make_unique<GemmAmxInt4SbUnpack>(desc, cfg);
}

}  // namespace mf
