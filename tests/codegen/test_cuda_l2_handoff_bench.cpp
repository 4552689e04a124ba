// Where the fused combine's merge floor comes from (tests/bench/cuda_mla_decode_results.md, session 5: after the grid
// barrier a merge unit's rows land ~3.5k cycles later whether a CTA reads 16 KB or 66 KB). One CTA per SM stores
// `bytes` as the decode's partial store does, all CTAs meet on the fused combine's grid barrier, then each CTA reads
// `bytes` back with every load in flight (ld.global.cg, as the merge) from:
//   own      the lines it just stored itself
//   far      the lines CTA (i + n/2) just stored (another SM; on average the other half of the L2)
//   next     the lines CTA (i + 1) just stored
//   old      the lines CTA (i + n/2) stored in an EARLIER launch (this launch stores nothing): resident in L2 long
//            before the read, no fresh write in flight
// If "far"/"next" cost the floor and "old" does not, lines freshly written by other SMs are what is slow, and a
// merge that starts on each split as it lands can hide it; if all cost the same, it is the burst of every SM
// asking at once. Runs only with MOEFORGE_CUDA_BENCH=1 on the device machine:
//   MOEFORGE_CUDA_BENCH=1 ./build/tests/test_codegen -tc='cuda bench (GPU): L2 hand-off*'
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "codegen/cuda/cuda_stream.hpp"
#include "codegen/cuda/nvrtc_compiler.hpp"
#include "tests/codegen/cuda_gpu_env.hpp"

using namespace mf;
using namespace mf::test;

namespace {

struct HandoffParams {
    void* buf;
    unsigned* grid_sync;
    long long* out;  // per CTA: store cycles, barrier cycles, read cycles, wrong vectors
    int mode;        // 0 own, 1 far, 2 next, 3 old
    int vecs;        // 16-byte vectors per CTA
};

const char* kHandoffSource = R"(#include "mla_fused_combine.cuh"
struct HandoffParams { uint4* buf; unsigned* grid_sync; long long* out; int mode; int vecs; };
extern "C" __global__ void __launch_bounds__(256, 1) l2_handoff_bench(const HandoffParams p) {
    const int n = gridDim.x, cta = blockIdx.x, t = threadIdx.x;
    const long long t0 = clock64();
    if (p.mode != 3)
        for (int i = t; i < p.vecs; i += 256) p.buf[size_t(cta) * p.vecs + i] = make_uint4(cta, i, 7, 1);
    const long long t1 = clock64();
    mf::mla_grid_barrier(p.grid_sync, n, cta == 0);
    const long long t2 = clock64();
    const int src = p.mode == 0 ? cta : p.mode == 2 ? (cta + 1) % n : (cta + n / 2) % n;
    const uint4* s = p.buf + size_t(src) * p.vecs;
    int wrong = 0;
    for (int base = t; base < p.vecs; base += 256 * 16) {
        uint4 v[16];
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const int i = base + j * 256;
            if (i < p.vecs)
                asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];\n"
                             : "=r"(v[j].x), "=r"(v[j].y), "=r"(v[j].z), "=r"(v[j].w) : "l"(s + i));
        }
#pragma unroll
        for (int j = 0; j < 16; ++j) {
            const int i = base + j * 256;
            if (i < p.vecs) wrong += v[j].x != unsigned(src) || v[j].y != unsigned(i) || v[j].z != 7u || v[j].w != 1u;
        }
    }
    __syncthreads();
    const long long t3 = clock64();
    if (wrong) atomicAdd(reinterpret_cast<unsigned long long*>(p.out + 4 * cta + 3), (unsigned long long)wrong);
    if (t == 0) {
        p.out[4 * cta + 0] = t1 - t0;
        p.out[4 * cta + 1] = t2 - t1;
        p.out[4 * cta + 2] = t3 - t2;
    }
}
)";

const CudaKernelSource kHandoffKernel{"l2_handoff_bench", kHandoffSource, 256,
                                     150 * 1024};  // unused shared memory: one CTA per SM, as the decode kernel

}  // namespace

TEST_CASE("cuda nvrtc: the L2 hand-off bench kernel compiles for sm_90a") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: moeforge was built without NVRTC");
        return;
    }
    const CudaBinary bin = compile_cuda_kernel(kHandoffKernel, CudaArch{9, 0, true}, {});
    CHECK(cubin_has_symbol(bin.cubin, "l2_handoff_bench"));
}

TEST_CASE("cuda bench (GPU): L2 hand-off after the grid barrier (the merge floor)") {
    const char* on = std::getenv("MOEFORGE_CUDA_BENCH");
    if (!on || std::string(on) != "1") {
        MESSAGE("benchmark skipped: set MOEFORGE_CUDA_BENCH=1 to run it (device machine)");
        return;
    }
    MF_GPU_TEST_OR_SKIP(env);
    const auto kernel = env.build(kHandoffKernel);
    const int sms = env.ctx->info().sms;
    REQUIRE(kernel->max_resident_ctas() >= sms);
    CudaStream stream;
    const int max_vecs = (64 << 10) / 16;
    DeviceBuffer buf(size_t(sms) * max_vecs * 16), grid_sync(64), out(size_t(sms) * 4 * sizeof(long long));
    grid_sync.fill_bytes(0);
    const char* modes[4] = {"own", "far", "next", "old"};
    std::printf("\n%d SMs, one CTA each; cycles (clock64), median over 15 launches of the per-launch mean / max "
                "over CTAs\n| bytes per CTA | read from | store | barrier | read (mean) | read (max) |\n"
                "| ---: | --- | ---: | ---: | ---: | ---: |\n",
                sms);
    for (int kb : {16, 64}) {
        for (int mode = 0; mode < 4; ++mode) {
            std::vector<double> st, bar, rd, rd_max;
            for (int rep = 0; rep < 16; ++rep) {
                if (mode == 3) {  // the lines it reads were stored by an earlier launch, the one before this loop
                    const HandoffParams fill{buf.as<void>(), grid_sync.as<unsigned>(), out.as<long long>(), 0,
                                             kb * 1024 / 16};
                    kernel->launch_cooperative(Dim3{unsigned(sms), 1, 1}, fill, stream.get());
                }
                out.fill_bytes(0);
                const HandoffParams p{buf.as<void>(), grid_sync.as<unsigned>(), out.as<long long>(), mode,
                                      kb * 1024 / 16};
                kernel->launch_cooperative(Dim3{unsigned(sms), 1, 1}, p, stream.get());
                stream.synchronize();
                const auto v = from_device<long long>(out, size_t(sms) * 4);
                long long wrong = 0, mx = 0;
                double s0 = 0, s1 = 0, s2 = 0;
                for (int c = 0; c < sms; ++c) {
                    s0 += double(v[4 * c]);
                    s1 += double(v[4 * c + 1]);
                    s2 += double(v[4 * c + 2]);
                    mx = std::max(mx, v[4 * c + 2]);
                    wrong += v[4 * c + 3];
                }
                CHECK_MESSAGE(wrong == 0, "mode ", modes[mode], ": a CTA read vectors other than those stored");
                if (rep == 0) continue;  // warm-up
                st.push_back(s0 / sms);
                bar.push_back(s1 / sms);
                rd.push_back(s2 / sms);
                rd_max.push_back(double(mx));
            }
            auto median = [](std::vector<double> x) {
                std::sort(x.begin(), x.end());
                return x[x.size() / 2];
            };
            std::printf("| %d KB | %s | %.0f | %.0f | %.0f | %.0f |\n", kb, modes[mode], median(st), median(bar),
                        median(rd), median(rd_max));
        }
    }
}
