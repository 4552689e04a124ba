// The AMX int4 kernel over the Q4_K super-block form that unpacks the form itself (AmxGemmConfig::int4_sb with
// unpack_b; arithmetic and layout: pack_int4_sb.hpp). Per group of n_tiles panels, per super block: the block's
// groups are unpacked (sc * q as lo / hi bytes, vpmaddubsw + byte blends) into an L1 ring of 4 steps x (lo, hi) B
// tiles per panel, once; then every row group of the call runs the block's products out of that ring (A from the
// rows, one A tile for the n_tiles panels) and its float step into C, which lives in memory across the super
// blocks. So the unpack is paid once per panel, block and call, not once per row group, and no unpacked copy of
// the weights leaves L1. A row group's float step runs after the next row group's products are issued.
#include <algorithm>
#include <cstddef>

#include "codegen/x64/gemm_amx_int4.hpp"
#include "codegen/x64/pack_int4_sb.hpp"

namespace mf {
namespace {

// Tiles: n_tiles 1: tmm0 / tmm1 the lo / hi sums of even row groups, tmm2 / tmm3 of odd ones; n_tiles 2:
//        tmm(2j) / tmm(2j + 1) the lo / hi sums of panel j (one set: a row group's tiles are stored before the
//        next one's tilezero). tmm4 A (16 rows x 64 k), tmm5 / tmm6 the step's lo / hi B.
// zmm:   unpack (before the block's row groups): zmm0..9 values, zmm31 the 0x0f mask, k1 odd bytes. Float step:
//        zmm0..3 row values, zmm4..7 C rows, zmm8 + 8j + g the min of panel j's group g, zmm24 + j its d; zmm30
//        zero.
// Registers: rdi args; r8 A (row 0); r9 packed groups of panel 0 of the panel group (walking by block); r10 C
//            of the panel group; r11 ldc; r12 = K_pad (A row stride); r13 = 64; r14 row groups left; r15 panel
//            groups left; rdx A of the block's first k (row 0); rsi A of the row group; rcx the row group's group
//            sums of the block; rbp C row; rbx the form's table of panel 0 (walking by block); rax blocks left.
// Stack: [rsp, + nt x 8 KiB) the rings (panel j, step t: lo at 8192 j + 2048 t, hi 1024 later), then the stored
//        lo / hi tiles of even / odd row groups (nt x 2 KiB each), then slots kSavedRsp, kSumsCol (group sums of
//        the block's first group, row 0).
class GemmAmxInt4SbUnpack : public JitKernel {
  public:
    GemmAmxInt4SbUnpack(const AmxGemmDesc& d, const AmxGemmConfig& c) : JitKernel(kernel_name(d, c)), d_(d), c_(c) {}

  private:
    JitStatus check() const override {
        if (d_.wtype != WeightType::int4 || d_.k <= 0) return JitStatus::bad_desc;
        if (c_.m_tiles != 1 || c_.n_tiles < 1 || c_.n_tiles > 2 || c_.k_block != 0 || c_.int4_sb != 1 ||
            c_.unpack_b != 1 || c_.prefetch < 0 || c_.prefetch > 8)
            return JitStatus::bad_desc;
        return JitStatus::ok;
    }

    int nt() const { return c_.n_tiles; }
    int64_t kp() const { return round_up(d_.k, kKAlign); }
    int64_t groups() const { return kp() / kInt4Group; }
    int64_t packed_pstride() const { return groups() * kInt4GroupBytes; }
    int64_t sb_pstride() const { return int4_sb_blocks(kp()) * kInt4SbBytes; }
    int ring(int j) const { return 8192 * j; }
    int tiles(int set, int j) const { return 8192 * nt() + (set * nt() + j) * 2048; }
    int slots() const { return 8192 * nt() + 4096 * nt(); }
    Xbyak::Address slot(int i) { return qword[rsp + slots() + 8 * i]; }
    static constexpr int kSavedRsp = 0, kSumsCol = 1;
    Xbyak::Tmm lo_tile(int set, int j) const { return Xbyak::Tmm(nt() == 1 ? 2 * set : 2 * j); }
    Xbyak::Tmm hi_tile(int set, int j) const { return Xbyak::Tmm(nt() == 1 ? 2 * set + 1 : 2 * j + 1); }

    // The block's ng groups of each panel (r9, sc from rbx + 64) into the rings.
    void unpack_block(int ng) {
        using Xbyak::Zmm;
        for (int j = 0; j < nt(); ++j)
            for (int g = 0; g < ng; ++g) {
                const int64_t src = j * packed_pstride() + g * kInt4GroupBytes;
                vpmovzxbd(zmm0, xword[rbx + j * sb_pstride() + 64 + 16 * g]);
                vpslld(zmm1, zmm0, 16);
                vpord(zmm1, zmm1, zmm0);  // sc in the even byte of each word
                vpsllw(zmm2, zmm1, 8);    // ... in the odd byte
                const int base = ring(j) + (g / 2) * 2048 + (g % 2) * 512;
                for (int r = 0; r < 4; ++r) {
                    vmovdqu32(zmm3, ptr[r9 + src + r * 64]);
                    vpsrlw(zmm5, zmm3, 4);
                    vpandd(zmm4, zmm3, zmm31);
                    vpandd(zmm5, zmm5, zmm31);
                    for (int h = 0; h < 2; ++h) {
                        const Zmm nib(4 + h);
                        vpmaddubsw(zmm6, nib, zmm1);
                        vpmaddubsw(zmm7, nib, zmm2);
                        vpsllw(zmm8, zmm7, 8);
                        vpblendmb(zmm8 | k1, zmm6, zmm8);
                        vpsrlw(zmm9, zmm6, 8);
                        vpblendmb(zmm9 | k1, zmm9, zmm7);
                        vmovdqa32(ptr[rsp + base + (2 * r + h) * 64], zmm8);
                        vmovdqa32(ptr[rsp + base + 1024 + (2 * r + h) * 64], zmm9);
                    }
                }
            }
    }

    // Products of one row group's block (A at rsi, B in the rings) into tile set `set`, stored to its scratch;
    // advances rsi to the next row group.
    void rg_tiles(int set, int steps) {
        for (int j = 0; j < nt(); ++j) {
            tilezero(lo_tile(set, j));
            tilezero(hi_tile(set, j));
        }
        for (int t = 0; t < steps; ++t) {
            tileloadd(tmm4, ptr[rsi + r12 + t * 64]);
            for (int j = 0; j < nt(); ++j) {
                tileloadd(tmm5, ptr[rsp + r13 + ring(j) + t * 2048]);
                tileloadd(tmm6, ptr[rsp + r13 + ring(j) + t * 2048 + 1024]);
                tdpbsud(lo_tile(set, j), tmm4, tmm5);
                tdpbsud(hi_tile(set, j), tmm4, tmm6);
            }
        }
        for (int j = 0; j < nt(); ++j) {
            tilestored(ptr[rsp + r13 + tiles(set, j)], lo_tile(set, j));
            tilestored(ptr[rsp + r13 + tiles(set, j) + 1024], hi_tile(set, j));
        }
        add(rsi, int(16 * kp()));
    }

    // Float step of the row group whose sums are in scratch set `set` (group sums at rcx, C rows at rbp): per row
    // and panel S = lo + 256 hi, c = fma(float(S), d, c), c = fma(-min_g, group_sum_g, c) per group; advances rcx
    // and rbp.
    void rg_floats(int set, int ng) {
        using Xbyak::Zmm;
        const int64_t G = groups();
        int z = 0;
        for (int r = 0; r < 16; ++r) {
            for (int j = 0; j < nt(); ++j, z = (z + 1) % 4) {
                const Zmm v(z), acc(4 + z);
                vpslld(v, ptr[rsp + tiles(set, j) + 1024 + r * 64], 8);
                vpaddd(v, v, ptr[rsp + tiles(set, j) + r * 64]);
                vcvtdq2ps(v, v);
                vmovups(acc, ptr[rbp + j * 64]);
                vfmadd231ps(acc, v, Zmm(24 + j));
                for (int g = 0; g < ng; ++g)
                    vfnmadd231ps(acc, Zmm(8 + 8 * j + g), ptr_b[rcx + r * G * 4 + g * 4]);
                vmovups(ptr[rbp + j * 64], acc);
            }
            add(rbp, r11);
        }
        add(rcx, int(16 * G * 4));
    }

    // One super block of ng groups at r9 / rbx / rdx / kSumsCol: unpack, then every row group's products and
    // float step, the float step of row group i after the products of i + 1; advances to the next block.
    void super_block(int ng) {
        using Xbyak::Zmm;
        const int steps = ng / 2;
        unpack_block(ng);
        // The packed groups and table lines of the block c_.prefetch blocks ahead into L2 (past a panel's end:
        // the next panel's first blocks; past the matrix: prefetches do not fault).
        for (int j = 0; c_.prefetch && j < nt(); ++j) {
            const int64_t ahead = int64_t(c_.prefetch) * kInt4SbGroups * kInt4GroupBytes;
            for (int l = 0; l < kInt4SbGroups * kInt4GroupBytes / 64; ++l)
                prefetcht1(ptr[r9 + j * packed_pstride() + ahead + l * 64]);
            for (int l = 0; l < kInt4SbBytes / 64; ++l)
                prefetcht1(ptr[rbx + j * sb_pstride() + c_.prefetch * kInt4SbBytes + l * 64]);
        }
        for (int j = 0; j < nt(); ++j) {
            vmovups(Zmm(24 + j), ptr[rbx + j * sb_pstride()]);
            for (int g = 0; g < ng; ++g)
                vmovups(Zmm(8 + 8 * j + g), ptr[r9 + j * packed_pstride() + g * kInt4GroupBytes + 320]);
        }
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
        add(qword[rsp + slots() + 8 * kSumsCol], ng * 4);
        add(r9, ng * kInt4GroupBytes);
        add(rbx, kInt4SbBytes);
    }

    void generate() override {
        const int64_t G = groups(), full = G / kInt4SbGroups, rest = G % kInt4SbGroups;
        Xbyak::Label cfg, panel, zero, blocks, done;
        preamble();
        mov(rax, rsp);
        sub(rsp, slots() + 64 + 64);
        and_(rsp, -64);
        mov(slot(kSavedRsp), rax);
        ldtilecfg(ptr[rip + cfg]);
        vpxord(zmm30, zmm30, zmm30);
        mov(eax, 0x0f0f0f0f);
        vpbroadcastd(zmm31, eax);
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
        // The panel group's columns of C start at zero: nt x 16 floats per row of every row group.
        mov(rbp, r10);
        mov(r14, ptr[rdi + offsetof(ExpertGemmArgs, m_steps)]);
        shl(r14, 4);
        L(zero);
        for (int j = 0; j < nt(); ++j) vmovups(ptr[rbp + j * 64], zmm30);
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
        // r9 / rbx now sit at panel 1's groups / table (n_tiles 2: skip it).
        if (nt() > 1) {
            add(r9, int((nt() - 1) * packed_pstride()));
            add(rbx, int((nt() - 1) * sb_pstride()));
        }
        add(r10, nt() * 64);
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
