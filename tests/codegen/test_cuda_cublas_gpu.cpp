// The cuBLAS wrapper's row-major conventions against a scalar reference: Y = X W^T and the per-head absorbed
// query (strided batch writing into a wider row). Needs a GPU.
#include <doctest/doctest.h>

#include "codegen/cuda/cublas_gemm.hpp"
#include "tests/codegen/cuda_gpu_env.hpp"

using namespace mf;
using namespace mf::test;

TEST_CASE("cuda cublas (GPU): Y = X W^T and the absorbed query as a strided batch") {
    MF_GPU_TEST_OR_SKIP(env);
    if (std::string why; !CublasGemm::available(&why)) {
        MESSAGE("cuBLAS test skipped: " << why);
        return;
    }
    std::mt19937 rng(17);
    CublasGemm gemm;
    {
        const int m = 5, n = 33, k = 70;
        const auto x = random_bf16(size_t(m) * k, rng), w = random_bf16(size_t(n) * k, rng);
        DeviceBuffer dx = to_device(x), dw = to_device(w), dy(size_t(m) * n * 4);
        GemmShape s;
        s.m = m, s.n = n, s.k = k, s.c = CudaDtype::f32;
        gemm.run(s, dx.as<void>(), dw.as<void>(), dy.as<void>(), nullptr);
        env.ctx->synchronize();
        const auto y = from_device<float>(dy, size_t(m) * n);
        std::vector<double> ref(size_t(m) * n), got(y.begin(), y.end());
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j)
                for (int p = 0; p < k; ++p)
                    ref[i * n + j] += double(from_bf16(x[i * k + p])) * from_bf16(w[j * k + p]);
        CHECK(rel_l2(got, ref) < 1e-5);
    }
    {  // q_abs[t][h][0:512] = q[t][h][0:128] . W_UK[h] ([128][512]), q rows of 192, q_abs rows of 576
        const int tokens = 3, heads = 4, nope = 128, lat = 512;
        const auto q = random_bf16(size_t(tokens) * heads * 192, rng),
                   wuk = random_bf16(size_t(heads) * nope * lat, rng);
        DeviceBuffer dq = to_device(q), dw = to_device(wuk), dout(size_t(tokens) * heads * 576 * 2);
        dout.fill_bytes(0);
        GemmShape s;
        s.m = tokens, s.n = lat, s.k = nope, s.trans_b = GemmTrans::n;
        s.lda = heads * 192, s.ldb = lat, s.ldc = heads * 576;
        s.batch = heads, s.stride_a = 192, s.stride_b = size_t(nope) * lat, s.stride_c = 576;
        gemm.run(s, dq.as<void>(), dw.as<void>(), dout.as<void>(), nullptr);
        env.ctx->synchronize();
        const auto out = from_device<uint16_t>(dout, size_t(tokens) * heads * 576);
        std::vector<double> ref, got;
        for (int t = 0; t < tokens; ++t)
            for (int h = 0; h < heads; ++h) {
                for (int j = 0; j < lat; ++j) {
                    double acc = 0;
                    for (int p = 0; p < nope; ++p)
                        acc += double(from_bf16(q[(t * heads + h) * 192 + p])) *
                               from_bf16(wuk[(size_t(h) * nope + p) * lat + j]);
                    ref.push_back(acc);
                    got.push_back(from_bf16(out[(t * heads + h) * 576 + j]));
                }
                for (int j = lat; j < 576; ++j)
                    CHECK(out[(t * heads + h) * 576 + j] == 0);  // q_pe slot untouched
            }
        CHECK(rel_l2(got, ref) < 5e-3);
    }
}
