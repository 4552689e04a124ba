#include "codegen/x64/gemm_amx.hpp"

#include <cstddef>

namespace mf {
namespace {

// int8: tdpbsud (signed activations x unsigned weights, int32 C); bf16: tdpbf16ps (fp32 C). A k step is one
// 64-byte tile row: 64 k of int8 or 32 k of bf16.
// Tiles: tmm[i*nt + j] accumulate C block (i, j) for i < mt, j < nt; then mt A tiles, then nt B tiles.
//        All tiles are 16 rows x 64 bytes (A: 16 tokens x 64 bytes of k; B: 16 rows of 16 channels x 4 bytes
//        of k (4 int8 or 2 bf16); C: 16x16 int32 or fp32).
// Registers: rdi args; r8 A of the current row group, r9 B of the current panel group, r10 C of the current
// block,
//            rcx start of the inner loop's C, r11 ldc, r12 = K_pad (A row stride), r13 = 64 (B row stride),
//            r14 m count, r15 n count, rsi/rdx A/B walking along K, rax k count (then a scratch), rbx C store
//            row, rbp = 16 * mt * ldc.
class GemmAmx : public JitKernel {
  public:
    GemmAmx(const AmxGemmDesc& d, const AmxGemmConfig& c) : JitKernel(kernel_name(d, c)), d_(d), c_(c) {}

  private:
    JitStatus check() const override {
        if (d_.wtype == WeightType::int4 || d_.k <= 0) return JitStatus::bad_desc;
        const int mt = c_.m_tiles, nt = c_.n_tiles;
        if (mt < 1 || nt < 1 || nt > 4 || (nt & (nt - 1)) || mt * nt + mt + nt > 8)
            return JitStatus::bad_desc;
        if (c_.prefetch < 0 || c_.prefetch > 64) return JitStatus::bad_desc;
        return JitStatus::ok;
    }

    Xbyak::Tmm tile(int i) const { return Xbyak::Tmm(i); }
    bool bf16() const { return d_.wtype == WeightType::bf16; }
    int64_t lda() const { return round_up(d_.k, kKAlign) * (bf16() ? 2 : 1); }  // A row bytes
    int64_t k_steps() const { return lda() / 64; }

    void block() {
        const int mt = c_.m_tiles, nt = c_.n_tiles;
        const int64_t kp = lda(), pstride = k_steps() * 1024;
        for (int t = 0; t < mt * nt; ++t) tilezero(tile(t));
        mov(rsi, r8);
        mov(rdx, r9);
        mov(rax, k_steps());
        Xbyak::Label k_loop;
        L(k_loop);
        for (int i = 0; i < mt; ++i) tileloadd(tile(mt * nt + i), ptr[rsi + r12 + i * 16 * kp]);
        for (int j = 0; j < nt; ++j) {
            tileloadd(tile(mt * nt + mt + j), ptr[rdx + r13 + j * pstride]);
            if (c_.prefetch) prefetcht1(ptr[rdx + j * pstride + c_.prefetch * 1024]);
        }
        for (int i = 0; i < mt; ++i)
            for (int j = 0; j < nt; ++j) {
                if (bf16())
                    tdpbf16ps(tile(i * nt + j), tile(mt * nt + i), tile(mt * nt + mt + j));
                else
                    tdpbsud(tile(i * nt + j), tile(mt * nt + i), tile(mt * nt + mt + j));
            }
        add(rsi, 64);
        add(rdx, 1024);
        dec(rax);
        jnz(k_loop, T_NEAR);
        mov(rbx, r10);
        for (int i = 0; i < mt; ++i) {
            for (int j = 0; j < nt; ++j) tilestored(ptr[rbx + r11 + j * 64], tile(i * nt + j));
            if (i + 1 < mt) {
                mov(rax, r11);
                shl(rax, 4);
                add(rbx, rax);
            }
        }
    }

    void generate() override {
        const int mt = c_.m_tiles, nt = c_.n_tiles;
        const int64_t kp = lda(), pstride = k_steps() * 1024;
        Xbyak::Label cfg, outer, inner, done;
        preamble();
        ldtilecfg(ptr[rip + cfg]);
        mov(r11, ptr[rdi + offsetof(ExpertGemmArgs, ldc)]);
        mov(r12, kp);
        mov(r13, 64);
        imul(rbp, r11, 16 * mt);
        mov(rcx, ptr[rdi + offsetof(ExpertGemmArgs, c)]);
        cmp(qword[rdi + offsetof(ExpertGemmArgs, m_steps)], 0);
        jle(done, T_NEAR);
        cmp(qword[rdi + offsetof(ExpertGemmArgs, n_steps)], 0);
        jle(done, T_NEAR);
        if (c_.order == LoopOrder::nm) {
            // for each panel group: for each row group: block
            mov(r9, ptr[rdi + offsetof(ExpertGemmArgs, b)]);
            mov(r15, ptr[rdi + offsetof(ExpertGemmArgs, n_steps)]);
            L(outer);
            mov(r8, ptr[rdi + offsetof(ExpertGemmArgs, a)]);
            mov(r14, ptr[rdi + offsetof(ExpertGemmArgs, m_steps)]);
            mov(r10, rcx);
            L(inner);
            block();
            add(r8, 16 * mt * kp);
            add(r10, rbp);
            dec(r14);
            jnz(inner, T_NEAR);
            add(r9, nt * pstride);
            add(rcx, nt * 64);
            dec(r15);
            jnz(outer, T_NEAR);
        } else {
            // for each row group: for each panel group: block
            mov(r8, ptr[rdi + offsetof(ExpertGemmArgs, a)]);
            mov(r14, ptr[rdi + offsetof(ExpertGemmArgs, m_steps)]);
            L(outer);
            mov(r9, ptr[rdi + offsetof(ExpertGemmArgs, b)]);
            mov(r15, ptr[rdi + offsetof(ExpertGemmArgs, n_steps)]);
            mov(r10, rcx);
            L(inner);
            block();
            add(r9, nt * pstride);
            add(r10, nt * 64);
            dec(r15);
            jnz(inner, T_NEAR);
            add(r8, 16 * mt * kp);
            add(rcx, rbp);
            dec(r14);
            jnz(outer, T_NEAR);
        }
        L(done);
        tilerelease();
        postamble();

        // Tile configuration as data (a compiler may drop stores to a config struct): mt*nt + mt + nt tiles.
        emit_full_tile_config(cfg, mt * nt + mt + nt);
    }

    AmxGemmDesc d_;
    AmxGemmConfig c_;
};

}  // namespace

std::unique_ptr<JitKernel> make_gemm_amx(const AmxGemmDesc& desc, const AmxGemmConfig& cfg) {
    return std::make_unique<GemmAmx>(desc, cfg);
}

}  // namespace mf
