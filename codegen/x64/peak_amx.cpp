#include "codegen/x64/peak_amx.hpp"

#include <cstddef>

namespace mf {
namespace {

// Tiles: tmm0..3 accumulators (2x2 block of C), tmm4/tmm5 the two A tiles, tmm6/tmm7 the two B tiles.
// Registers: rdi args, rax A, rcx B, rdx C, r8 remaining iterations, r9 row stride (64 bytes).
// The four products of one iteration are independent, so the TMUL pipeline never waits on an accumulator.
// reload: each iteration runs 4 steps u; step u loads A_u / B_u tiles just before their first product, in the
// order of the expert GEMM's k step (A0 B0 | B1 | A1), so each load has a product of slack.
class PeakAmxKernel : public JitKernel {
public:
    explicit PeakAmxKernel(const PeakAmxDesc& d) : JitKernel(d.name()), desc_(d) {}

private:
    void generate() override {
        Xbyak::Label cfg, loop, done;
        preamble();
        ldtilecfg(ptr[rip + cfg]);
        mov(rax, ptr[rdi + offsetof(PeakAmxArgs, a)]);
        mov(rcx, ptr[rdi + offsetof(PeakAmxArgs, b)]);
        mov(rdx, ptr[rdi + offsetof(PeakAmxArgs, c)]);
        mov(r8, ptr[rdi + offsetof(PeakAmxArgs, iters)]);
        mov(r9, 64);
        tileloadd(tmm4, ptr[rax + r9 + 0]);
        tileloadd(tmm5, ptr[rax + r9 + 1024]);
        tileloadd(tmm6, ptr[rcx + r9 + 0]);
        tileloadd(tmm7, ptr[rcx + r9 + 1024]);
        for (const auto* t : {&tmm0, &tmm1, &tmm2, &tmm3}) tilezero(*t);
        test(r8, r8);
        jz(done, T_NEAR);
        L(loop);
        auto product = [&](const Xbyak::Tmm& c, const Xbyak::Tmm& a, const Xbyak::Tmm& b) {
            if (desc_.dtype == AmxPeakDtype::int8)
                tdpbssd(c, a, b);
            else
                tdpbf16ps(c, a, b);
        };
        for (int u = 0; u < (desc_.reload ? 4 : 1); ++u) {
            if (desc_.reload) {
                tileloadd(tmm4, ptr[rax + r9 + u * 2048]);
                tileloadd(tmm6, ptr[rcx + r9 + u * 2048]);
            }
            product(tmm0, tmm4, tmm6);
            if (desc_.reload) tileloadd(tmm7, ptr[rcx + r9 + u * 2048 + 1024]);
            product(tmm1, tmm4, tmm7);
            if (desc_.reload) tileloadd(tmm5, ptr[rax + r9 + u * 2048 + 1024]);
            product(tmm2, tmm5, tmm6);
            product(tmm3, tmm5, tmm7);
        }
        dec(r8);
        jnz(loop, T_NEAR);
        L(done);
        tilestored(ptr[rdx + r9 + 0], tmm0);
        tilestored(ptr[rdx + r9 + 1024], tmm1);
        tilestored(ptr[rdx + r9 + 2048], tmm2);
        tilestored(ptr[rdx + r9 + 3072], tmm3);
        tilerelease();
        postamble();

        emit_full_tile_config(cfg, 8);
    }

    PeakAmxDesc desc_;
};

}  // namespace

std::string PeakAmxDesc::name() const {
    return std::string(dtype == AmxPeakDtype::int8 ? "peak_amx_int8_2x2" : "peak_amx_bf16_2x2") +
           (reload ? "_reload" : "");
}

uint64_t PeakAmxDesc::ops_per_iter() const {
    const uint64_t k = dtype == AmxPeakDtype::int8 ? 64 : 32;
    return (reload ? 4 : 1) * 4 * 2 * 16 * 16 * k;
}

std::unique_ptr<JitKernel> make_peak_amx_kernel(const PeakAmxDesc& desc) {
    return std::make_unique<PeakAmxKernel>(desc);
}

}  // namespace mf
