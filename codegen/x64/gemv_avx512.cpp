#include "codegen/x64/gemv_avx512.hpp"

#include <cstddef>

namespace mf {
namespace {

// Each weight byte is read once: np panels stream side by side, one 64-byte row (16 channels x 4 k int8, or x
// 2 k bf16) per zmm. int8: vpdpbusd into int32; bf16: vdpbf16ps into fp32. zmm: acc(r, p) = zmm[r*np + p] for
// row r < m and panel p < np (int32, 16 channels); zmm[m*np + p] holds the
//      weight row of panel p. Activations are never held in registers: vpdpbusd takes each row's 4 bytes of k
//      as an embedded {1to16} broadcast (signed), the weights as the unsigned operand.
// Registers: rdi args; r8 A; r9 B of the current panel group; r10 C of the current panel group; r11 ldc;
//            r15 panel groups left; rdx B walking along K; rax byte offset into the A rows; rcx k trips left;
//            rbx C store row.
class GemvAvx512 : public JitKernel {
  public:
    GemvAvx512(const GemvDesc& d, const GemvConfig& c) : JitKernel(kernel_name(d, c)), d_(d), c_(c) {}

  private:
    JitStatus check() const override {
        if (d_.wtype == WeightType::int4 || d_.k <= 0 || d_.m < 1 || d_.m > 16) return JitStatus::bad_desc;
        const int np = c_.panels;
        if (np < 1 || np > 4 || (np & (np - 1)) || d_.m * np + np > 32) return JitStatus::bad_desc;
        if (c_.k_unroll < 1 || 16 % c_.k_unroll || c_.prefetch < 0 || c_.prefetch > 64)
            return JitStatus::bad_desc;
        return JitStatus::ok;
    }

    void generate() override {
        using Xbyak::Zmm;
        const int m = d_.m, np = c_.panels, ku = c_.k_unroll;
        const bool bf16 = d_.wtype == WeightType::bf16;
        const int64_t kp = round_up(d_.k, kKAlign) * (bf16 ? 2 : 1);  // A row bytes
        const int64_t rows = kp / 4, pstride = rows * 64;             // 64-byte weight rows per panel
        auto acc = [&](int r, int p) { return Zmm(r * np + p); };
        auto wrow = [&](int p) { return Zmm(m * np + p); };
        Xbyak::Label outer, k_loop, done;
        preamble();
        mov(r8, ptr[rdi + offsetof(ExpertGemmArgs, a)]);
        mov(r9, ptr[rdi + offsetof(ExpertGemmArgs, b)]);
        mov(r10, ptr[rdi + offsetof(ExpertGemmArgs, c)]);
        mov(r11, ptr[rdi + offsetof(ExpertGemmArgs, ldc)]);
        mov(r15, ptr[rdi + offsetof(ExpertGemmArgs, n_steps)]);
        test(r15, r15);
        jle(done, T_NEAR);
        L(outer);
        for (int r = 0; r < m; ++r)
            for (int p = 0; p < np; ++p) vpxord(acc(r, p), acc(r, p), acc(r, p));
        mov(rdx, r9);
        xor_(eax, eax);
        mov(rcx, rows / ku);
        L(k_loop);
        for (int u = 0; u < ku; ++u) {
            for (int p = 0; p < np; ++p) {
                vmovdqa32(wrow(p), ptr[rdx + p * pstride + u * 64]);
                if (c_.prefetch) prefetcht0(ptr[rdx + p * pstride + (u + c_.prefetch) * 64]);
            }
            for (int r = 0; r < m; ++r)
                for (int p = 0; p < np; ++p) {
                    if (bf16)
                        vdpbf16ps(acc(r, p), wrow(p), ptr_b[r8 + rax + r * kp + u * 4]);
                    else
                        vpdpbusd(acc(r, p), wrow(p), ptr_b[r8 + rax + r * kp + u * 4]);
                }
        }
        add(rdx, ku * 64);
        add(rax, ku * 4);
        dec(rcx);
        jnz(k_loop, T_NEAR);
        mov(rbx, r10);
        for (int r = 0; r < m; ++r) {
            for (int p = 0; p < np; ++p) vmovdqu32(ptr[rbx + p * 64], acc(r, p));
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

std::unique_ptr<JitKernel> make_gemv_avx512(const GemvDesc& desc, const GemvConfig& cfg) {
    return std::make_unique<GemvAvx512>(desc, cfg);
}

}  // namespace mf
