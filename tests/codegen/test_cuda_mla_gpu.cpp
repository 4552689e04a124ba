// MLA decode / combine / cache append against the scalar reference (codegen/cuda/mla_reference, double) on ragged
// shapes. Needs a GPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "codegen/cuda/mla_attention.hpp"
#include "codegen/cuda/mla_reference.hpp"
#include "tests/codegen/cuda_gpu_env.hpp"

using namespace mf;
using namespace mf::test;

namespace {

// Runs decode + combine through MlaAttention; `splits` 0 picks the heuristic's count for the device.
std::vector<double> mla_gpu(const GpuTestEnv& env, const MlaDecodeProblem& p, const MlaDecodeConfig& c,
                            int splits) {
    const MlaAttention attn(p.d, c, env.arch, env.cache);
    const int max_len = *std::max_element(p.lens.begin(), p.lens.end());
    if (splits == 0) splits = attn.num_splits(p.batch, max_len, env.ctx->info().sms);
    return mla_decode_run(attn, p, splits);
}

}  // namespace

TEST_CASE("cuda mla decode (GPU): absorbed split-K decode matches the reference on ragged shapes") {
    MF_GPU_TEST_OR_SKIP(env);
    std::mt19937 rng(1234);
    struct Case {
        const char* label;
        int heads, page;
        MlaDecodeConfig cfg;
        std::vector<int> lens;
        int splits;
    };
    std::vector<Case> cases = {
        {"v3 heads, batch 1, 1000 tokens, default splits", 128, 64, {64, 2}, {1000}, 0},
        {"v3 heads, ragged batch incl. empty and 1-token rows", 128, 64, {64, 2}, {1, 0, 777, 130, 2049}, 0},
        {"20 heads (padded head block), page 48, tile 16", 20, 48, {16, 1}, {5, 300, 61}, 0},
        {"tile 32, 2 stages, more splits than tiles", 128, 16, {32, 2}, {33, 95}, 7},
        {"tile 64, 1 stage, one split", 72, 64, {64, 1}, {500, 129}, 1},
        {"cluster of 8 (sm_90), batch 1, default splits", 128, 64, {64, 2, 8}, {3000}, 0},
        {"cluster of 4 (sm_90), ragged batch with empty splits", 20, 48, {32, 2, 4}, {1, 0, 300, 1500}, 0},
        {"cluster of 2 (sm_90), forced 6 splits", 128, 64, {64, 1, 2}, {70, 900}, 6},
    };
    for (const Case& c : cases) {
        CAPTURE(c.label);
        MlaDecodeDesc d;
        d.heads = c.heads;
        d.page_size = c.page;
        if (!mla_decode_unsupported(d, c.cfg, env.sm).empty()) {
            MESSAGE("config skipped on this GPU: " << mla_decode_unsupported(d, c.cfg, env.sm));
            continue;
        }
        const MlaDecodeProblem p = make_mla_decode_problem(d, c.lens, rng);
        const auto ref = mla_decode_reference(p);
        const auto got = mla_gpu(env, p, c.cfg, c.splits);
        const double err = rel_l2(got, ref);
        CAPTURE(err);
        CHECK(err < 1e-2);  // bf16 P and bf16 output: ~3e-3 expected
        // rows with no context give zeros
        for (int b = 0; b < p.batch; ++b)
            if (p.lens[b] == 0)
                for (size_t i = 0; i < size_t(d.heads) * d.latent_dim; ++i)
                    CHECK(got[size_t(b) * d.heads * d.latent_dim + i] == 0.0);
    }
}

TEST_CASE(
    "cuda mla prefill (GPU): append a chunk to the cache, then causal attention over a shared page table") {
    MF_GPU_TEST_OR_SKIP(env);
    std::mt19937 rng(99);
    MlaDecodeDesc d;
    d.page_size = 32;
    const int start = 45, chunk = 23, dim = d.latent_dim + d.rope_dim;
    // one sequence: pages for start + chunk tokens; the first `start` tokens are already cached
    MlaDecodeProblem p = make_mla_decode_problem(d, {start + chunk}, rng);
    std::vector<uint16_t> new_rows_src = random_bf16(size_t(chunk) * (dim + 8), rng);  // stride dim + 8
    for (int i = 0; i < chunk; ++i) {  // the host mirror gets what the append must write
        const int pos = start + i;
        std::copy_n(
            new_rows_src.begin() + size_t(i) * (dim + 8), dim,
            p.cache.begin() + (size_t(p.table[pos / d.page_size]) * d.page_size + pos % d.page_size) * dim);
    }
    std::vector<uint16_t> cache_before = p.cache;
    for (int i = 0; i < chunk; ++i) {  // the device copy starts with garbage where the chunk goes
        const int pos = start + i;
        std::fill_n(cache_before.begin() +
                        (size_t(p.table[pos / d.page_size]) * d.page_size + pos % d.page_size) * dim,
                    dim, uint16_t(0x7fc0));
    }
    DeviceBuffer cache = to_device(cache_before), table = to_device(p.table), src = to_device(new_rows_src);
    std::vector<int> positions(chunk);
    std::iota(positions.begin(), positions.end(), start);
    DeviceBuffer pos = to_device(positions);
    const MlaAttention attn(d, mla_decode_default_config(d, env.sm), env.arch, env.cache);
    attn.append(src.as<uint16_t>(), dim + 8, chunk, pos.as<int>(), table.as<int>(), 0, cache.as<uint16_t>(),
                nullptr);
    env.ctx->synchronize();
    CHECK(from_device<uint16_t>(cache, p.cache.size()) == p.cache);

    // queries: row i sees start + i + 1 tokens through the one table
    MlaDecodeProblem pf = p;
    pf.batch = chunk;
    pf.table_stride = 0;
    pf.lens.resize(chunk);
    for (int i = 0; i < chunk; ++i) pf.lens[i] = start + i + 1;
    pf.q = random_bf16(size_t(chunk) * d.heads * dim, rng);
    const auto ref = mla_decode_reference(pf);
    for (int splits : {0, 3}) {
        CAPTURE(splits);
        const double err = rel_l2(mla_gpu(env, pf, mla_decode_default_config(d, env.sm), splits), ref);
        CAPTURE(err);
        CHECK(err < 1e-2);
    }
    if (env.sm >= 90) {
        const double err = rel_l2(mla_gpu(env, pf, MlaDecodeConfig{64, 2, 8}, 0), ref);
        CAPTURE(err);
        CHECK(err < 1e-2);
    }
}
