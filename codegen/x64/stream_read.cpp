#include "codegen/x64/stream_read.hpp"

namespace mf {
namespace {

// Registers: zmm0..zmm(u-1) one accumulator per cache line of an iteration (u = unroll_bytes / 64, at most 16);
// rsi cursor, r8 end, rdx out. Independent accumulators keep the loads from serialising on vpaddq latency. With a
// prefetch distance, each line's load is preceded by a prefetcht0 of the line that far ahead (a prefetch past the
// end of the buffer cannot fault).
class StreamReadKernel : public JitKernel {
public:
    explicit StreamReadKernel(const StreamReadDesc& d) : JitKernel(d.name()), desc_(d) {}

private:
    JitStatus check() const override {
        const int u = desc_.unroll_bytes;
        const int pf = desc_.prefetch_bytes;
        return (u >= 64 && u % 64 == 0 && u / 64 <= 16 && pf >= 0 && pf % 64 == 0 && pf <= (1 << 20))
                   ? JitStatus::ok
                   : JitStatus::bad_desc;
    }

    void generate() override {
        const int lines = desc_.unroll_bytes / 64;
        Xbyak::Label loop, done;
        preamble();
        mov(rsi, ptr[rdi + offsetof(StreamReadArgs, src)]);
        mov(r8, ptr[rdi + offsetof(StreamReadArgs, bytes)]);
        mov(rdx, ptr[rdi + offsetof(StreamReadArgs, out)]);
        add(r8, rsi);
        for (int i = 0; i < lines; ++i) vpxorq(Xbyak::Zmm(i), Xbyak::Zmm(i), Xbyak::Zmm(i));
        cmp(rsi, r8);
        jae(done, T_NEAR);
        L(loop);
        for (int i = 0; i < lines; ++i) {
            if (desc_.prefetch_bytes) prefetcht0(ptr[rsi + desc_.prefetch_bytes + 64 * i]);
            vpaddq(Xbyak::Zmm(i), Xbyak::Zmm(i), ptr[rsi + 64 * i]);
        }
        add(rsi, desc_.unroll_bytes);
        cmp(rsi, r8);
        jb(loop, T_NEAR);
        L(done);
        for (int i = 1; i < lines; ++i) vpaddq(zmm0, zmm0, Xbyak::Zmm(i));
        vmovdqu64(ptr[rdx], zmm0);
        postamble();
    }

    StreamReadDesc desc_;
};

}  // namespace

std::unique_ptr<JitKernel> make_stream_read_kernel(const StreamReadDesc& desc) {
    return std::make_unique<StreamReadKernel>(desc);
}

}  // namespace mf
