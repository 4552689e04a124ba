// MLA decode / combine / cache append against the scalar reference (codegen/cuda/mla_reference, double) on ragged
// shapes. Needs a GPU.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "codegen/cuda/cuda_stream.hpp"
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

// Where a wrong result is wrong, to tell a device run's failure apart without a debugger: rel. error per
// row, per head block of 64, per 64-column block of the latent (a row with one token isolates P.V: its output
// is that token's latent whatever Q.K gives), and the first NaN.
std::string describe_error(const MlaDecodeProblem& p, const std::vector<double>& got, const std::vector<double>& ref) {
    const int lat = p.d.latent_dim, heads = p.d.heads;
    auto err_over = [&](auto&& pick) {
        double num = 0, den = 0;
        for (int b = 0; b < p.batch; ++b)
            for (int h = 0; h < heads; ++h)
                for (int c = 0; c < lat; ++c) {
                    if (!pick(b, h, c)) continue;
                    const size_t i = (size_t(b) * heads + h) * lat + c;
                    const double e = std::isnan(got[i]) ? 1e30 : got[i] - ref[i];
                    num += e * e;
                    den += ref[i] * ref[i];
                }
        return std::sqrt(num / (den > 0 ? den : 1));
    };
    std::ostringstream s;
    s << "rows (len: err):";
    for (int b = 0; b < p.batch; ++b)
        s << " " << p.lens[b] << ": " << err_over([&](int bb, int, int) { return bb == b; });
    s << "; head blocks:";
    for (int h0 = 0; h0 < heads; h0 += 64)
        s << " " << err_over([&](int, int h, int) { return h >= h0 && h < h0 + 64; });
    s << "; 64-column blocks:";
    for (int c0 = 0; c0 < lat; c0 += 64)
        s << " " << err_over([&](int, int, int c) { return c >= c0 && c < c0 + 64; });
    s << "; heads 0-7 of row 0, column 0 (got/ref):";
    for (int h = 0; h < std::min(heads, 8); ++h)
        s << " " << got[size_t(h) * lat] << "/" << ref[size_t(h) * lat];
    for (size_t i = 0; i < got.size(); ++i)
        if (std::isnan(got[i])) {
            s << "; first NaN at row " << i / (size_t(heads) * lat) << " head " << i / lat % heads
              << " column " << i % lat;
            break;
        }
    return s.str();
}

// Every supported config of one kernel family (wgmma 0: mma.sync, 1: the sm_90a kernel) on ragged shapes
// against the reference. The families run as separate test cases (separate processes in
// tests/bench/cuda_device_run.sh), so a device fault in one cannot hide the other's results.
void check_decode_family(const GpuTestEnv& env, int wgmma) {
    std::mt19937 rng(1234);
    struct Case {
        const char* label;
        int heads, page;
        std::vector<int> lens;
        int splits;  // 0: the heuristic's count; else rounded up to a whole number of clusters
    };
    const std::vector<Case> cases = {
        {"v3 heads, batch 1, 1000 tokens, default splits", 128, 64, {1000}, 0},
        {"v3 heads, ragged batch incl. empty and 1-token rows", 128, 64, {1, 0, 777, 130, 2049}, 0},
        {"20 heads (padded head block), page 48", 20, 48, {5, 300, 61}, 0},
        {"more splits than tiles, page 16", 128, 16, {33, 95}, 7},
        {"72 heads, one split, context not a multiple of the tile", 72, 64, {500, 129}, 1},
        {"v3 heads, batch 1, 3000 tokens, default splits", 128, 64, {3000}, 0},
        {"20 heads, ragged batch with empty splits", 20, 48, {1, 0, 300, 1500}, 0},
        {"v3 heads, forced 6 splits", 128, 64, {70, 900}, 6},
        {"v3 heads, one split (output written by the decode kernel), incl. an empty row",
         128,
         64,
         {0, 65, 300},
         1},
        // 8 or 16 splits: one cluster per head block and row for the cluster_merge configs (8 or 16), with rows
        // that leave splits empty or one tile partial, and padded head blocks (at most 6-9 clusters of 16 or 10
        // of 8 per launch: the launch goes without clusters where the device holds fewer at once)
        {"v3 heads, ragged batch with empty splits, forced 16 splits", 128, 64, {1, 0, 2100}, 16},
        {"72 heads (padded head blocks), ragged batch, forced 8 splits", 72, 64, {500, 129, 3, 0, 1030}, 8},
        {"72 heads, forced 16 splits", 72, 64, {2000, 64, 65}, 16},
    };
    int ran = 0;
    for (const Case& c : cases) {
        CAPTURE(c.label);
        MlaDecodeDesc d;
        d.heads = c.heads;
        d.page_size = c.page;
        const MlaDecodeProblem p = make_mla_decode_problem(d, c.lens, rng);
        const auto ref = mla_decode_reference(p);
        for (const MlaDecodeConfig& cfg : mla_decode_candidates(d, env.sm)) {
            if (cfg.wgmma != wgmma) continue;
            const std::string name = mla_decode_name(d, cfg);
            CAPTURE(name);
            const int splits = c.splits == 0 ? 0 : (c.splits + cfg.cluster - 1) / cfg.cluster * cfg.cluster;
            const auto got = mla_gpu(env, p, cfg, splits);
            const double err = rel_l2(got, ref);
            CAPTURE(err);
            CHECK(err < 1e-2);  // bf16 P and bf16 output: ~3e-3 expected
            if (!(err < 1e-2)) MESSAGE(describe_error(p, got, ref));
            ++ran;
            // rows with no context give zeros
            for (int b = 0; b < p.batch; ++b)
                if (p.lens[b] == 0)
                    for (size_t i = 0; i < size_t(d.heads) * d.latent_dim; ++i)
                        CHECK(got[size_t(b) * d.heads * d.latent_dim + i] == 0.0);
        }
    }
    if (ran == 0) MESSAGE("skipped: no MLA decode config of this family runs on sm_" << env.sm);
}

}  // namespace

TEST_CASE("cuda mla decode (GPU): every mma.sync config matches the reference on ragged shapes") {
    MF_GPU_TEST_OR_SKIP(env);
    check_decode_family(env, 0);
}

TEST_CASE("cuda mla decode wgmma (GPU): every sm_90a config matches the reference on ragged shapes") {
    MF_GPU_TEST_OR_SKIP(env);
    check_decode_family(env, 1);
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
    for (int wgmma : {0, 1})  // the portable kernel first: a fault in the sm_90a one cannot hide its result
        for (const MlaDecodeConfig& cfg : mla_decode_candidates(d, env.sm))
            for (int splits : {0, 1, 3}) {
                if (cfg.wgmma != wgmma) continue;
                const std::string name = mla_decode_name(d, cfg);
                CAPTURE(name);
                CAPTURE(splits);
                const int s = splits == 0 ? 0 : (splits + cfg.cluster - 1) / cfg.cluster * cfg.cluster;
                const auto got = mla_gpu(env, pf, cfg, s);
                const double err = rel_l2(got, ref);
                CAPTURE(err);
                CHECK(err < 1e-2);
                if (!(err < 1e-2)) MESSAGE(describe_error(pf, got, ref));
            }
}

TEST_CASE(
    "cuda mla fused combine (GPU): one MlaAttention, launches of different grid sizes and graph replays match") {
    MF_GPU_TEST_OR_SKIP(env);
    std::mt19937 rng(77);
    const MlaDecodeDesc d;
    // grids of 132, 2 x 6 x 3 and 2 x 40 CTAs in turn on one counter, then the first again; a last graph
    // replays two launches three times (the counter is never reset)
    const MlaDecodeProblem p1 = make_mla_decode_problem(d, {3000}, rng);
    const MlaDecodeProblem p2 = make_mla_decode_problem(d, {0, 400, 1500}, rng);
    const auto ref1 = mla_decode_reference(p1), ref2 = mla_decode_reference(p2);
    int ran = 0;
    for (const MlaDecodeConfig& cfg : mla_decode_candidates(d, env.sm)) {
        if (!cfg.fused_combine && !cfg.balanced_splits) continue;  // (balanced: its cut rows' counters)
        const std::string name = mla_decode_name(d, cfg);
        CAPTURE(name);
        const MlaAttention attn(d, cfg, env.arch, env.cache);
        const int sms = env.ctx->info().sms;
        if (cfg.cluster_merge) {  // a cluster of 8 is portable; 16 is not (the device log says whether it is held)
            MESSAGE(name << ": clusters of " << cfg.cluster_merge << " CTAs held: " << attn.cluster_merge_available());
            if (cfg.cluster_merge == 8) CHECK(attn.cluster_merge_available());
        }
        const struct {
            const MlaDecodeProblem* p;
            const std::vector<double>* ref;
            int splits;
        } runs[] = {{&p1, &ref1, attn.num_splits(1, 3000, sms)}, {&p2, &ref2, 6}, {&p1, &ref1, 40},
                    {&p1, &ref1, attn.num_splits(1, 3000, sms)},
                    // cluster_merge: one cluster launch between the cooperative ones (3 tiles per CTA)
                    {&p1, &ref1, cfg.cluster_merge ? cfg.cluster_merge : 6}};
        for (const auto& r : runs) {
            CAPTURE(r.splits);
            CHECK(rel_l2(mla_decode_run(attn, *r.p, r.splits), *r.ref) < 1e-2);
        }
        // graph replays (cluster_merge: of the cluster launch; tile_claim: 6 splits, so that rows claim tiles)
        const int splits =
            cfg.cluster_merge ? cfg.cluster_merge : cfg.tile_claim ? 6 : attn.num_splits(p2.batch, 1500, sms);
        DeviceBuffer q = to_device(p2.q), cache = to_device(p2.cache), table = to_device(p2.table),
                     lens = to_device(p2.lens), ws(attn.workspace_bytes(p2.batch, splits));
        const size_t n_out = size_t(p2.batch) * d.heads * d.latent_dim;
        DeviceBuffer out(n_out * 2);
        CudaStream stream;
        CudaGraph g;
        g.begin_capture(stream.get());
        for (int k = 0; k < 2; ++k)
            attn.decode(q.as<uint16_t>(), cache.as<uint16_t>(), table.as<int>(), p2.table_stride, lens.as<int>(),
                        p2.batch, splits, p2.scale, ws, out.as<uint16_t>(), stream.get());
        g.end_capture(stream.get());
        for (int k = 0; k < 3; ++k) {
            out.fill_bytes(0xff);
            g.launch(stream.get());
            stream.synchronize();
            const auto raw = from_device<uint16_t>(out, n_out);
            std::vector<double> got(n_out);
            for (size_t i = 0; i < n_out; ++i) got[i] = from_bf16(raw[i]);
            CHECK(rel_l2(got, ref2) < 1e-2);
        }
        ++ran;
    }
    if (ran == 0) MESSAGE("skipped: no fused-combine MLA decode config runs on sm_" << env.sm);
}
