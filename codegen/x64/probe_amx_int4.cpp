#include "codegen/x64/probe_amx_int4.hpp"

#include <cstddef>

namespace mf {
namespace {

// Tiles: tmm0..3 the C tile of step s % 4 (superblock: tmm0 / tmm1 the lo / hi accumulators), tmm4 / tmm5 the A
//        tile of step s % 2, tmm6 / tmm7 the B tile of step s % 2 (superblock: the lo / hi B tiles).
// zmm:   zmm0..15 the 16 rows' float accumulators, zmm16 / zmm17 scales / mins, zmm18..21 row values.
// Registers: rdi args, rsi A, rdx B, rcx C scratch, r8 group sums, r9 = 64 (tile row stride), r10 iterations.
class ProbeAmxInt4 : public JitKernel {
  public:
    explicit ProbeAmxInt4(const ProbeAmxInt4Desc& d) : JitKernel(d.name()), d_(d) {}

  private:
    JitStatus check() const override {
        if (d_.k_bytes != 32 && d_.k_bytes != 64) return JitStatus::bad_desc;
        if (d_.superblock && d_.k_bytes != 64) return JitStatus::bad_desc;
        if (d_.epilogue < 0 || d_.epilogue > 2) return JitStatus::bad_desc;
        return JitStatus::ok;
    }

    Xbyak::Tmm t(int i) const { return Xbyak::Tmm(i); }

    // The int4 kernel's float step on the C tile at rcx + off (ints), or (epilogue 2) on floats at rcx + off.
    void float_rows(int64_t off, bool cvt) {
        for (int r = 0; r < 16; ++r) {
            const Xbyak::Zmm v(18 + r % 4), acc(r);
            if (cvt) {
                vcvtdq2ps(v, ptr[rcx + off + r * 64]);
                vfmadd231ps(acc, v, zmm16);
            } else {
                vfmadd231ps(acc, zmm16, ptr[rcx + off + r * 64]);
            }
            vfnmadd231ps(acc, zmm17, ptr_b[r8 + r * 4]);
        }
    }

    void step(int s) {
        if (d_.loads) {
            tileloadd(t(4 + s % 2), ptr[rsi + r9 + (s % 2) * 1024]);
            tileloadd(t(6 + s % 2), ptr[rdx + r9 + (s % 2) * 1024]);
        }
        if (d_.product) {
            tilezero(t(s));
            tdpbsud(t(s), t(4 + s % 2), t(6 + s % 2));
        }
        if (d_.store) tilestored(ptr[rcx + r9 + s * 1024], t(s));
        // the tile stored two steps earlier (epilogue 2: floats in the second 4 KiB of the scratch)
        if (d_.epilogue) float_rows((d_.epilogue == 2 ? 4096 : 0) + ((s + 2) % 4) * 1024, d_.epilogue == 1);
    }

    void superblock_step(int s) {
        tileloadd(t(4 + s % 2), ptr[rsi + r9 + (s % 2) * 1024]);
        tileloadd(t(6), ptr[rdx + r9]);
        tileloadd(t(7), ptr[rdx + r9 + 1024]);
        tdpbsud(t(0), t(4 + s % 2), t(6));
        tdpbsud(t(1), t(4 + s % 2), t(7));
        if (s < 3) return;
        tilestored(ptr[rcx + r9], t(0));
        tilestored(ptr[rcx + r9 + 1024], t(1));
        tilezero(t(0));
        tilezero(t(1));
        for (int r = 0; r < 16; ++r) {
            const Xbyak::Zmm v(18 + r % 4), acc(r);
            vmovdqu32(v, ptr[rcx + 1024 + r * 64]);
            vpslld(v, v, 8);
            vpaddd(v, v, ptr[rcx + r * 64]);
            vcvtdq2ps(v, v);
            vfmadd231ps(acc, v, zmm16);
            vfnmadd231ps(acc, zmm17, ptr_b[r8 + r * 4]);
        }
    }

    void generate() override {
        Xbyak::Label cfg, loop, done;
        preamble();
        ldtilecfg(ptr[rip + cfg]);
        mov(rsi, ptr[rdi + offsetof(ProbeAmxInt4Args, a)]);
        mov(rdx, ptr[rdi + offsetof(ProbeAmxInt4Args, b)]);
        mov(rcx, ptr[rdi + offsetof(ProbeAmxInt4Args, c)]);
        mov(r8, ptr[rdi + offsetof(ProbeAmxInt4Args, gs)]);
        mov(rax, ptr[rdi + offsetof(ProbeAmxInt4Args, scale)]);
        vmovups(zmm16, ptr[rax]);
        mov(rax, ptr[rdi + offsetof(ProbeAmxInt4Args, min)]);
        vmovups(zmm17, ptr[rax]);
        mov(r10, ptr[rdi + offsetof(ProbeAmxInt4Args, iters)]);
        mov(r9, 64);
        for (int r = 0; r < 16; ++r) vpxord(Xbyak::Zmm(r), Xbyak::Zmm(r), Xbyak::Zmm(r));
        for (int i = 0; i < 2; ++i) {
            tileloadd(t(4 + i), ptr[rsi + r9 + i * 1024]);
            tileloadd(t(6 + i), ptr[rdx + r9 + i * 1024]);
        }
        for (int i = 0; i < 4; ++i) tilezero(t(i));
        test(r10, r10);
        jz(done, T_NEAR);
        L(loop);
        for (int s = 0; s < 4; ++s) {
            if (d_.superblock)
                superblock_step(s);
            else
                step(s);
        }
        dec(r10);
        jnz(loop, T_NEAR);
        L(done);
        tilerelease();
        postamble();

        // C tiles 0..3: 16 x 64 bytes, A tiles 4, 5: 16 x k_bytes, B tiles 6, 7: k_bytes / 4 rows x 64 bytes.
        emit_tile_config(cfg, 8, [&](int t) {
            return t < 4 ? TileShape{16, 64} : t < 6 ? TileShape{16, d_.k_bytes} : TileShape{d_.k_bytes / 4, 64};
        });
    }

    ProbeAmxInt4Desc d_;
};

}  // namespace

std::string ProbeAmxInt4Desc::name() const {
    if (superblock) return "probe_amx_int4_superblock";
    return "probe_amx_int4_k" + std::to_string(k_bytes) + (loads ? "_loads" : "") + (product ? "_product" : "") +
           (store ? "_store" : "") + (epilogue == 1 ? "_float" : epilogue == 2 ? "_float_nocvt" : "");
}

uint64_t ProbeAmxInt4Desc::ops_per_step() const {
    if (superblock) return 2 * 16 * 16 * 64;  // one 64-k step of the super block (its two products: one result)
    return product ? 2 * 16 * 16 * uint64_t(k_bytes) : 0;
}

std::unique_ptr<JitKernel> make_probe_amx_int4(const ProbeAmxInt4Desc& desc) {
    return std::make_unique<ProbeAmxInt4>(desc);
}

}  // namespace mf
