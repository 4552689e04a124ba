#include "codegen/x64/gemv_avx512_int4.hpp"

#include <cstddef>

namespace mf {
namespace {

// Per group of 32 k and panel: 4 rows of 64 bytes are split into low / high nibbles (two vpdpbusd operands of
// 16 channels x 4 k), dotted into int32 group accumulators, then folded into float accumulators:
// f += float(dot) * scale; f -= min * group_sum(row). Each weight byte is read once.
// zmm: f(r, p) = zmm[r*np + p]; d(r, p) = zmm[m*np + r*np + p] (int32 group dot); lo(p) = zmm[2 m np + p],
//      hi(p) = zmm[2 m np + np + p]; zmm30 the min row of a panel; zmm31 the 0x0f byte mask.
// Registers: rdi args; r8 A; r9 B of the current panel group; r10 C; r11 ldc; r15 panel groups left;
//            rdx B walking; rax byte offset into A rows (32 per group); rsi group sums; r12 their byte offset
//            (4 per group); rcx groups left; rbx C store row.
class GemvAvx512Int4 : public JitKernel {
  public:
    GemvAvx512Int4(const GemvDesc& d, const GemvConfig& c) : JitKernel(kernel_name(d, c)), d_(d), c_(c) {}

  private:
    JitStatus check() const override {
        if (d_.wtype != WeightType::int4 || d_.k <= 0 || d_.m < 1 || d_.m > kInt4GemvMaxRows)
            return JitStatus::bad_desc;
        const int np = c_.panels;
        if (np < 1 || np > 4 || (np & (np - 1)) || gemv_zmm_needed(d_.m, np, d_.wtype) > 32)
            return JitStatus::bad_desc;
        if (c_.prefetch < 0 || c_.prefetch > 64) return JitStatus::bad_desc;
        return JitStatus::ok;
    }

    void generate() override {
        using Xbyak::Zmm;
        const int m = d_.m, np = c_.panels;
        const int64_t kp = round_up(d_.k, kKAlign), groups = kp / kInt4Group;
        const int64_t pstride = groups * kInt4GroupBytes, gs_row = groups * 4;
        auto f = [&](int r, int p) { return Zmm(r * np + p); };
        auto d = [&](int r, int p) { return Zmm(m * np + r * np + p); };
        auto lo = [&](int p) { return Zmm(2 * m * np + p); };
        auto hi = [&](int p) { return Zmm(2 * m * np + np + p); };
        const Zmm zmin(30), zmask(31);
        Xbyak::Label outer, g_loop, done;
        preamble();
        mov(r8, ptr[rdi + offsetof(ExpertGemmArgs, a)]);
        mov(r9, ptr[rdi + offsetof(ExpertGemmArgs, b)]);
        mov(r10, ptr[rdi + offsetof(ExpertGemmArgs, c)]);
        mov(r11, ptr[rdi + offsetof(ExpertGemmArgs, ldc)]);
        mov(r15, ptr[rdi + offsetof(ExpertGemmArgs, n_steps)]);
        mov(rsi, ptr[rdi + offsetof(ExpertGemmArgs, a_group_sums)]);
        mov(eax, 0x0f0f0f0f);
        vpbroadcastd(zmask, eax);
        test(r15, r15);
        jle(done, T_NEAR);
        L(outer);
        for (int r = 0; r < m; ++r)
            for (int p = 0; p < np; ++p) vpxord(f(r, p), f(r, p), f(r, p));
        mov(rdx, r9);
        xor_(eax, eax);
        xor_(r12d, r12d);
        mov(rcx, groups);
        L(g_loop);
        for (int r = 0; r < m; ++r)
            for (int p = 0; p < np; ++p) vpxord(d(r, p), d(r, p), d(r, p));
        for (int row = 0; row < 4; ++row) {
            for (int p = 0; p < np; ++p) {
                vmovdqa32(lo(p), ptr[rdx + p * pstride + row * 64]);
                if (c_.prefetch) prefetcht0(ptr[rdx + p * pstride + row * 64 + c_.prefetch * 64]);
                vpsrlw(hi(p), lo(p), 4);
                vpandd(lo(p), lo(p), zmask);
                vpandd(hi(p), hi(p), zmask);
            }
            for (int r = 0; r < m; ++r)
                for (int p = 0; p < np; ++p) {
                    vpdpbusd(d(r, p), lo(p), ptr_b[r8 + rax + r * kp + row * 8]);
                    vpdpbusd(d(r, p), hi(p), ptr_b[r8 + rax + r * kp + row * 8 + 4]);
                }
        }
        for (int p = 0; p < np; ++p) {
            if (c_.prefetch) {
                prefetcht0(ptr[rdx + p * pstride + 256 + c_.prefetch * 64]);
                prefetcht0(ptr[rdx + p * pstride + 320 + c_.prefetch * 64]);
            }
            for (int r = 0; r < m; ++r) {
                vcvtdq2ps(d(r, p), d(r, p));
                vfmadd231ps(f(r, p), d(r, p), ptr[rdx + p * pstride + 256]);
            }
            vmovaps(zmin, ptr[rdx + p * pstride + 320]);
            for (int r = 0; r < m; ++r) vfnmadd231ps(f(r, p), zmin, ptr_b[rsi + r12 + r * gs_row]);
        }
        add(rdx, kInt4GroupBytes);
        add(rax, kInt4Group);
        add(r12, 4);
        dec(rcx);
        jnz(g_loop, T_NEAR);
        mov(rbx, r10);
        for (int r = 0; r < m; ++r) {
            for (int p = 0; p < np; ++p) vmovups(ptr[rbx + p * 64], f(r, p));
            if (r + 1 < m) add(rbx, r11);
        }
        add(r9, np * pstride);
        add(r10, np * 64);
        dec(r15);
        jnz(outer, T_NEAR);
        L(done);
        postamble();
    }

    GemvDesc d_;
    GemvConfig c_;
};

}  // namespace

std::unique_ptr<JitKernel> make_gemv_avx512_int4(const GemvDesc& desc, const GemvConfig& cfg) {
    return std::make_unique<GemvAvx512Int4>(desc, cfg);
}

}  // namespace mf
