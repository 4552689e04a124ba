#include "codegen/x64/gemm_amx_int4.hpp"

#include "codegen/x64/pack_int4_sb.hpp"

#include <algorithm>
#include <cstddef>

namespace mf {
namespace {

// Tiles: two sets (even / odd groups) of mt*nt C tiles, tmm[s*mt*nt + i*nt + j] the int32 dot of one group
//        for C block (i, j) (16 x 16), then mt A tiles (16 tokens x 32 bytes: one group of k), then nt B
//        tiles (8 rows x 64 bytes: one group of 16 channels x 32 k). mt * nt <= 2.
// zmm:   zmm0..15 rotating row values / accumulators (one C tile: the 16 rows' accumulators, zmm18..21 row
//        values), zmm16 + 2j / zmm17 + 2j scales / mins of panel j, zmm31 zero; unpack_b: zmm22..23 the
//        nibbles being unpacked, zmm30 the 0x0f byte mask.
// Registers: rdi args; r8 A of the row group, r9 B of the panel group, r10 C of the block, r11 ldc, r12 =
// K_pad
//            (A row stride), r13 = 64 (B row stride and tile scratch stride), r14 m count, r15 n count, rsi /
//            rdx A / B walking along the groups, rax group count, rbx scales of the current group, rcx group
//            sums of the current group, rbp C row.
// Stack: [rsp, +2*mt*nt KiB) the dot tiles of both sets stored for the AVX-512 part (64-byte aligned), then
//        (unpack_b) the kBSlots slots of unpacked B tiles (nt x 512 bytes each); slots
//        kSavedRsp, kGroupsBase (scales of the panel group), kSumsBase (group sums of the row group),
//        kCColumn (C of the panel group's first row).
class GemmAmxInt4 : public JitKernel {
  public:
    GemmAmxInt4(const AmxGemmDesc& d, const AmxGemmConfig& c) : JitKernel(kernel_name(d, c)), d_(d), c_(c) {}

  private:
    JitStatus check() const override {
        if (d_.wtype != WeightType::int4 || d_.k <= 0) return JitStatus::bad_desc;
        const int mt = c_.m_tiles, nt = c_.n_tiles;
        if (mt < 1 || nt < 1 || mt * nt > 2 || c_.k_block != 0) return JitStatus::bad_desc;
        if (c_.unpack_b < 0 || c_.unpack_b > 1 || c_.prefetch < 0 || c_.prefetch > 64)
            return JitStatus::bad_desc;
        if (c_.int4_sb < 0 || c_.int4_sb > 1 || (sb() && mt * nt != 1)) return JitStatus::bad_desc;
        if (c_.pf_a < 0 || c_.pf_a > 16 || (sb() && c_.pf_a)) return JitStatus::bad_desc;
        return JitStatus::ok;
    }

    int64_t kp() const { return round_up(d_.k, kKAlign); }
    int64_t groups() const { return kp() / kInt4Group; }
    // One C tile per set: the float accumulators live in zmm0..15 instead of memory.
    bool regs_acc() const { return c_.m_tiles * c_.n_tiles == 1; }
    bool unpack() const { return c_.unpack_b != 0; }
    bool sb() const { return c_.int4_sb != 0; }
    // unpack_b: groups are unpacked kUnpackAhead groups before their tile load, into a ring of kBSlots B
    // scratch slots (slot g % kBSlots). A tile load of lines just stored waits until those stores retire, and
    // they retire only after everything before them, the previous group's tile product included: one group
    // ahead serialised the groups (VM, one core, weights in L2: 35 -> 22 ns per 16 x 16 x 32 group; 3 ahead
    // the same).
    static constexpr int kUnpackAhead = 2, kBSlots = 4;
    // Dot tiles of both sets, then (unpack_b) the B slots, nt x 512 bytes each.
    int64_t b_scratch(int slot, int j) const {
        return 2 * int64_t(c_.m_tiles) * c_.n_tiles * 1024 + (slot * c_.n_tiles + j) * 512;
    }
    int64_t scratch() const { return sb() ? 4096 : b_scratch(unpack() ? kBSlots : 0, 0); }
    // Bytes from one panel's group to the next panel's same group in args.b.
    int64_t b_pstride() const {
        return sb() ? int4_sb_panel_bytes(kp()) : unpack() ? groups() * kInt4GroupBytes : kp() * kPanelCols;
    }
    Xbyak::Address slot(int i) { return qword[rsp + scratch() + 8 * i]; }
    static constexpr int kSavedRsp = 0, kGroupsBase = 1, kSumsBase = 2, kCColumn = 3;

    // unpack_b: the 4 packed rows of each panel of the group at rdx + ahead into 8 rows of int8 q (low
    // nibbles: k-quad 2r, high: 2r + 1) in B slot `set`, with later groups' lines prefetched. zmm22..23
    // values, zmm30 the mask.
    void unpack_group(int set, int64_t ahead) {
        for (int j = 0; j < c_.n_tiles; ++j) {
            const int64_t src = j * b_pstride() + ahead;
            if (c_.prefetch)
                for (int l = 0; l < kInt4GroupBytes / 64; ++l)
                    prefetcht0(ptr[rdx + src + c_.prefetch * kInt4GroupBytes + l * 64]);
            for (int r = 0; r < 4; ++r) {
                vmovdqu32(zmm22, ptr[rdx + src + r * 64]);
                vpsrlw(zmm23, zmm22, 4);
                vpandd(zmm22, zmm22, zmm30);
                vpandd(zmm23, zmm23, zmm30);
                vmovdqa32(ptr[rsp + b_scratch(set, j) + 2 * r * 64], zmm22);
                vmovdqa32(ptr[rsp + b_scratch(set, j) + (2 * r + 1) * 64], zmm23);
            }
        }
    }

    // Tile work of group g (known when the kernel is generated: groups() is) into C set g % 2: zero, load A
    // and B, multiply, store the dots to the set's scratch; unpack_b: then group g + kUnpackAhead unpacked
    // into its B slot, if there is one. Advances rsi / rdx to the next group.
    void group_tiles(int64_t g) {
        const int mt = c_.m_tiles, nt = c_.n_tiles, nc = mt * nt, set = int(g % 2);
        const int64_t lda = kp(), pstride = b_pstride();
        const int a0 = 2 * nc, b0 = 2 * nc + mt;
        for (int i = 0; i < mt; ++i) {
            tileloadd(Xbyak::Tmm(a0 + i), ptr[rsi + r12 + i * 16 * lda]);
            // pf_a: the A rows pf_a lines (2 groups each) ahead into L1, once per line (even groups)
            if (c_.pf_a && g % 2 == 0)
                for (int r = 0; r < 16; ++r) prefetcht0(ptr[rsi + (i * 16 + r) * lda + c_.pf_a * 64]);
            for (int j = 0; j < nt; ++j) {
                if (i == 0)
                    tileloadd(Xbyak::Tmm(b0 + j), unpack() ? ptr[rsp + r13 + b_scratch(int(g % kBSlots), j)]
                                                           : ptr[rdx + r13 + j * pstride]);
                const Xbyak::Tmm c(set * nc + i * nt + j);
                tilezero(c);
                tdpbsud(c, Xbyak::Tmm(a0 + i), Xbyak::Tmm(b0 + j));
            }
        }
        for (int t = 0; t < nc; ++t)
            tilestored(ptr[rsp + r13 + (set * nc + t) * 1024], Xbyak::Tmm(set * nc + t));
        if (unpack() && g + kUnpackAhead < groups())
            unpack_group(int((g + kUnpackAhead) % kBSlots), kUnpackAhead * kInt4GroupBytes);
        add(rsi, kInt4Group);
        add(rdx, unpack() ? kInt4GroupBytes : 512);
    }

    // AVX-512 part of one group whose dots are in scratch set `set`: c = fma(dot, scale, c), then
    // c = fma(-min, group_sum, c). rbx / rcx point at the group's scales / sums; advances them.
    void group_floats(int set) {
        const int mt = c_.m_tiles, nt = c_.n_tiles, nc = mt * nt;
        const int64_t G = groups();
        for (int j = 0; j < nt; ++j) {
            vmovups(Xbyak::Zmm(16 + 2 * j), ptr[rbx + j * G * kInt4GroupBytes + 256]);
            vmovups(Xbyak::Zmm(17 + 2 * j), ptr[rbx + j * G * kInt4GroupBytes + 320]);
        }
        if (regs_acc()) {  // zmm0..15 hold the block's 16 rows
            for (int r = 0; r < 16; ++r) {
                const Xbyak::Zmm v(18 + r % 4);
                vcvtdq2ps(v, ptr[rsp + set * 1024 + r * 64]);
                vfmadd231ps(Xbyak::Zmm(r), v, zmm16);
                vfnmadd231ps(Xbyak::Zmm(r), zmm17, ptr_b[rcx + r * G * 4]);
            }
            add(rbx, kInt4GroupBytes);
            add(rcx, 4);
            return;
        }
        mov(rbp, r10);
        int z = 0;
        for (int i = 0; i < mt; ++i)
            for (int r = 0; r < 16; ++r) {
                const int row = i * 16 + r;
                for (int j = 0; j < nt; ++j) {
                    const Xbyak::Zmm v(z), acc(z + 1);
                    z = (z + 2) % 16;
                    vcvtdq2ps(v, ptr[rsp + (set * nc + i * nt + j) * 1024 + r * 64]);
                    vmovups(acc, ptr[rbp + j * 64]);
                    vfmadd231ps(acc, v, Xbyak::Zmm(16 + 2 * j));
                    vfnmadd231ps(acc, Xbyak::Zmm(17 + 2 * j), ptr_b[rcx + row * G * 4]);
                    vmovups(ptr[rbp + j * 64], acc);
                }
                add(rbp, r11);
            }
        add(rbx, kInt4GroupBytes);
        add(rcx, 4);
    }

    // Software pipeline over the groups: the tiles of group g run while AVX-512 scales group g - 1 from the
    // other scratch set.
    void block() {
        const int mt = c_.m_tiles, nt = c_.n_tiles;
        const int64_t G = groups();
        if (regs_acc()) {
            for (int r = 0; r < 16; ++r) vpxord(Xbyak::Zmm(r), Xbyak::Zmm(r), Xbyak::Zmm(r));
        } else {
            mov(rbp, r10);
            for (int row = 0; row < 16 * mt; ++row) {
                for (int j = 0; j < nt; ++j) vmovups(ptr[rbp + j * 64], zmm31);
                add(rbp, r11);
            }
        }
        mov(rsi, r8);
        mov(rdx, r9);
        mov(rbx, slot(kGroupsBase));
        mov(rcx, slot(kSumsBase));
        for (int64_t g = 0; unpack() && g < std::min<int64_t>(kUnpackAhead, G); ++g)
            unpack_group(int(g % kBSlots), g * kInt4GroupBytes);
        group_tiles(0);
        // Groups 1 .. 4n in a loop of 4 (its slots and sets repeat), the rest straight; each group's tiles,
        // then the previous group's floats.
        const int64_t loops = std::max<int64_t>(0, (G - 1 - kUnpackAhead) / kBSlots);
        if (loops > 0) {
            mov(rax, loops);
            Xbyak::Label quad;
            L(quad);
            for (int64_t g = 1; g <= kBSlots; ++g) {
                group_tiles(g);
                group_floats(int((g - 1) % 2));
            }
            dec(rax);
            jnz(quad, T_NEAR);
        }
        for (int64_t g = loops * kBSlots + 1; g < G; ++g) {
            group_tiles(g);
            group_floats(int((g - 1) % 2));
        }
        group_floats(int((G - 1) % 2));
        if (regs_acc()) {
            mov(rbp, r10);
            for (int r = 0; r < 16; ++r) {
                vmovups(ptr[rbp], Xbyak::Zmm(r));
                add(rbp, r11);
            }
        }
    }

    // int4_sb (pack_int4_sb.hpp): tmm0 / tmm1 the lo / hi sums of even super blocks, tmm2 / tmm3 of odd ones,
    // tmm4 A (16 rows x 64 k), tmm5 / tmm6 the step's lo / hi B tiles. zmm0..15 the block's 16 float rows,
    // zmm16..23 the mins of the super block's groups, zmm24 / zmm25 d of even / odd super blocks, zmm26..29
    // row values. rdx walks the unpacked panel (steps of 2 KiB, a 64-byte d line after each super block), rsi
    // A; rbx / rcx (packed groups for the mins, group sums) lag one super block behind, with the float step.
    int sb_groups(int64_t s) const { return int(std::min<int64_t>(kInt4SbGroups, groups() - s * kInt4SbGroups)); }

    // Products of super block s into set s % 2; then the tiles stored to the set's scratch and its d loaded.
    void sb_tiles(int64_t s) {
        const int set = int(s % 2), steps = sb_groups(s) / 2;
        const Xbyak::Tmm lo(2 * set), hi(2 * set + 1);
        tilezero(lo);
        tilezero(hi);
        for (int t = 0; t < steps; ++t) {
            tileloadd(tmm4, ptr[rsi + r12]);
            tileloadd(tmm5, ptr[rdx + r13]);
            tileloadd(tmm6, ptr[rdx + r13 + 1024]);
            tdpbsud(lo, tmm4, tmm5);
            tdpbsud(hi, tmm4, tmm6);
            add(rsi, 64);
            add(rdx, 2048);
        }
        tilestored(ptr[rsp + r13 + set * 2048], lo);
        tilestored(ptr[rsp + r13 + set * 2048 + 1024], hi);
        vmovups(Xbyak::Zmm(24 + set), ptr[rdx]);
        add(rdx, 64);
    }

    // Float step of super block s from its set's scratch: per row S = lo + 256 hi, c = fma(float(S), d, c), then
    // c = fma(-min_g, group_sum_g, c) per group in order.
    void sb_floats(int64_t s) {
        const int set = int(s % 2), ng = sb_groups(s);
        const int64_t G = groups();
        for (int g = 0; g < ng; ++g) vmovups(Xbyak::Zmm(16 + g), ptr[rbx + g * kInt4GroupBytes + 320]);
        for (int r = 0; r < 16; ++r) {
            const Xbyak::Zmm v(26 + r % 4), acc(r);
            vpslld(v, ptr[rsp + set * 2048 + 1024 + r * 64], 8);
            vpaddd(v, v, ptr[rsp + set * 2048 + r * 64]);
            vcvtdq2ps(v, v);
            vfmadd231ps(acc, v, Xbyak::Zmm(24 + set));
            for (int g = 0; g < ng; ++g) vfnmadd231ps(acc, Xbyak::Zmm(16 + g), ptr_b[rcx + r * G * 4 + g * 4]);
        }
        add(rbx, ng * kInt4GroupBytes);
        add(rcx, ng * 4);
    }

    // One 16 x 16 block over all of K: super block s's products run while AVX-512 finishes s - 1.
    void block_sb() {
        const int64_t blocks = int4_sb_blocks(kp()), full = groups() / kInt4SbGroups;
        for (int r = 0; r < 16; ++r) vpxord(Xbyak::Zmm(r), Xbyak::Zmm(r), Xbyak::Zmm(r));
        mov(rsi, r8);
        mov(rdx, r9);
        mov(rbx, slot(kGroupsBase));
        mov(rcx, slot(kSumsBase));
        sb_tiles(0);
        // Super blocks 1 .. 2n (all full) in a loop of two (the sets repeat), the rest straight.
        const int64_t loops = std::max<int64_t>(0, (full - 1) / 2);
        if (loops > 0) {
            mov(rax, loops);
            Xbyak::Label pair;
            L(pair);
            for (int64_t s = 1; s <= 2; ++s) {
                sb_tiles(s);
                sb_floats(s - 1);
            }
            dec(rax);
            jnz(pair, T_NEAR);
        }
        for (int64_t s = 2 * loops + 1; s < blocks; ++s) {
            sb_tiles(s);
            sb_floats(s - 1);
        }
        sb_floats(blocks - 1);
        mov(rbp, r10);
        for (int r = 0; r < 16; ++r) {
            vmovups(ptr[rbp], Xbyak::Zmm(r));
            add(rbp, r11);
        }
    }

    void generate() override {
        const int mt = c_.m_tiles, nt = c_.n_tiles;
        const int64_t lda = kp(), G = groups();
        const int64_t a_step = 16 * mt * lda, gs_step = 16 * mt * G * 4;
        const int64_t b_step = nt * b_pstride(), bg_step = nt * G * kInt4GroupBytes;
        Xbyak::Label cfg, outer, inner, done;
        preamble();
        mov(rax, rsp);
        sub(rsp, int(scratch() + 64 + 32));
        and_(rsp, -64);
        mov(slot(kSavedRsp), rax);
        ldtilecfg(ptr[rip + cfg]);
        vpxord(zmm31, zmm31, zmm31);
        if (unpack()) {
            mov(eax, 0x0f0f0f0f);
            vpbroadcastd(zmm30, eax);
        }
        mov(r11, ptr[rdi + offsetof(ExpertGemmArgs, ldc)]);
        mov(r12, lda);
        mov(r13, 64);
        cmp(qword[rdi + offsetof(ExpertGemmArgs, m_steps)], 0);
        jle(done, T_NEAR);
        cmp(qword[rdi + offsetof(ExpertGemmArgs, n_steps)], 0);
        jle(done, T_NEAR);
        const bool nm = c_.order == LoopOrder::nm;
        // Outer loop state: nm walks panel groups outside (r15), mn row groups (r14).
        mov(r9, ptr[rdi + offsetof(ExpertGemmArgs, b)]);
        mov(r8, ptr[rdi + offsetof(ExpertGemmArgs, a)]);
        mov(rax, ptr[rdi + offsetof(ExpertGemmArgs, b_groups)]);
        mov(slot(kGroupsBase), rax);
        mov(rax, ptr[rdi + offsetof(ExpertGemmArgs, a_group_sums)]);
        mov(slot(kSumsBase), rax);
        mov(rax, ptr[rdi + offsetof(ExpertGemmArgs, c)]);
        mov(slot(kCColumn), rax);
        mov(nm ? r15 : r14,
            ptr[rdi + (nm ? offsetof(ExpertGemmArgs, n_steps) : offsetof(ExpertGemmArgs, m_steps))]);
        L(outer);
        // Inner loop restarts the other dimension.
        if (nm) {
            mov(r8, ptr[rdi + offsetof(ExpertGemmArgs, a)]);
            mov(rax, ptr[rdi + offsetof(ExpertGemmArgs, a_group_sums)]);
            mov(slot(kSumsBase), rax);
            mov(r14, ptr[rdi + offsetof(ExpertGemmArgs, m_steps)]);
        } else {
            mov(r9, ptr[rdi + offsetof(ExpertGemmArgs, b)]);
            mov(rax, ptr[rdi + offsetof(ExpertGemmArgs, b_groups)]);
            mov(slot(kGroupsBase), rax);
            mov(r15, ptr[rdi + offsetof(ExpertGemmArgs, n_steps)]);
        }
        mov(r10, slot(kCColumn));
        L(inner);
        if (sb())
            block_sb();
        else
            block();
        if (nm) {
            add(r8, a_step);
            add(qword[rsp + scratch() + 8 * kSumsBase], int(gs_step));
            imul(rax, r11, 16 * mt);
            add(r10, rax);
            dec(r14);
        } else {
            add(r9, b_step);
            add(qword[rsp + scratch() + 8 * kGroupsBase], int(bg_step));
            add(r10, nt * 64);
            dec(r15);
        }
        jnz(inner, T_NEAR);
        if (nm) {
            add(r9, b_step);
            add(qword[rsp + scratch() + 8 * kGroupsBase], int(bg_step));
            add(qword[rsp + scratch() + 8 * kCColumn], nt * 64);
            dec(r15);
        } else {
            add(r8, a_step);
            add(qword[rsp + scratch() + 8 * kSumsBase], int(gs_step));
            imul(rax, r11, 16 * mt);
            add(slot(kCColumn), rax);
            dec(r14);
        }
        jnz(outer, T_NEAR);
        L(done);
        tilerelease();
        mov(rsp, slot(kSavedRsp));
        postamble();

        // Tile configuration as data: C tiles 16 x 64 bytes, A tiles 16 x 32 bytes, B tiles 8 x 64 bytes
        // (int4_sb: 7 tiles of 16 x 64 bytes).
        if (sb()) {
            emit_tile_config(cfg, 7, [](int) { return TileShape{16, 64}; });
            return;
        }
        const int nc = 2 * mt * nt;
        emit_tile_config(cfg, nc + mt + nt, [&](int t) {
            return t < nc ? TileShape{16, 64} : t < nc + mt ? TileShape{16, kInt4Group} : TileShape{8, 64};
        });
    }

    AmxGemmDesc d_;
    AmxGemmConfig c_;
};

}  // namespace

std::unique_ptr<JitKernel> make_gemm_amx_int4(const AmxGemmDesc& desc, const AmxGemmConfig& cfg) {
    if (cfg.int4_sb && cfg.unpack_b) return make_gemm_amx_int4_sb_unpack(desc, cfg);
    return std::make_unique<GemmAmxInt4>(desc, cfg);
}

}  // namespace mf
