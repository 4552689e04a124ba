#include "codegen/x64/peak_avx512.hpp"

#include <cstddef>

namespace mf {
namespace {

// Registers: zmm0..zmm(n-1) accumulators, zmm30 = a, zmm31 = b; rdi args, rdx C, r8 iterations left.
class PeakAvx512Kernel : public JitKernel {
public:
    explicit PeakAvx512Kernel(const PeakAvx512Desc& d) : JitKernel(d.name()), desc_(d) {}

private:
    JitStatus check() const override {
        return desc_.accumulators >= 1 && desc_.accumulators <= 28 ? JitStatus::ok : JitStatus::bad_desc;
    }

    void generate() override {
        Xbyak::Label loop, done;
        const int n = desc_.accumulators;
        preamble();
        mov(rax, ptr[rdi + offsetof(PeakAvx512Args, a)]);
        mov(rcx, ptr[rdi + offsetof(PeakAvx512Args, b)]);
        mov(rdx, ptr[rdi + offsetof(PeakAvx512Args, c)]);
        mov(r8, ptr[rdi + offsetof(PeakAvx512Args, iters)]);
        vmovdqu32(zmm30, ptr[rax]);
        vmovdqu32(zmm31, ptr[rcx]);
        for (int i = 0; i < n; ++i) vpxord(Xbyak::Zmm(i), Xbyak::Zmm(i), Xbyak::Zmm(i));
        test(r8, r8);
        jz(done, T_NEAR);
        L(loop);
        for (int i = 0; i < n; ++i) {
            if (desc_.op == Avx512PeakOp::vnni_int8)
                vpdpbusd(Xbyak::Zmm(i), zmm30, zmm31);
            else
                vfmadd231ps(Xbyak::Zmm(i), zmm30, zmm31);
        }
        dec(r8);
        jnz(loop, T_NEAR);
        L(done);
        for (int i = 0; i < n; ++i) vmovdqu32(ptr[rdx + 64 * i], Xbyak::Zmm(i));
        postamble();
    }

    PeakAvx512Desc desc_;
};

}  // namespace

std::string PeakAvx512Desc::name() const {
    return std::string(op == Avx512PeakOp::vnni_int8 ? "peak_avx512_vnni_int8" : "peak_avx512_fma_fp32") +
           "_acc" + std::to_string(accumulators);
}

uint64_t PeakAvx512Desc::ops_per_iter() const {
    const uint64_t per_instr = op == Avx512PeakOp::vnni_int8 ? 16 * 4 * 2 : 16 * 2;
    return per_instr * uint64_t(accumulators);
}

std::unique_ptr<JitKernel> make_peak_avx512_kernel(const PeakAvx512Desc& desc) {
    return std::make_unique<PeakAvx512Kernel>(desc);
}

}  // namespace mf
