// GPU test of config early_tiles: the decode launched as a programmatic dependent of the cache append issues the K
// copies of its tiles before the append is done, and only the tile holding the new token (len - 1) waits for it.
// A graph of append -> decode is replayed with the context lengths advancing by one token each time (the new token
// in the last page, page boundaries crossed), on ragged rows, batch 1 and 8, against the scalar reference. The cache
// slots past each row's length hold a large poison row beforehand, so a tile read before the append shows as a large
// error, not as a small one among many tokens.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "codegen/cuda/cuda_stream.hpp"
#include "codegen/cuda/mla_attention.hpp"
#include "codegen/cuda/mla_reference.hpp"
#include "tests/codegen/cuda_gpu_env.hpp"

using namespace mf;
using namespace mf::test;

namespace {

// The cache row of token t of row b.
size_t cache_row(const MlaDecodeProblem& p, int b, int t) {
    const int page = p.table[size_t(b) * p.table_stride + t / p.d.page_size];
    return (size_t(page) * p.d.page_size + t % p.d.page_size) * size_t(p.dim());
}

// Appends and decodes `steps` tokens per row through one captured graph (append of one token per row at position
// lens - 1, then the decode), each replay after the host advanced lens, positions, the new rows and Q in the
// buffers the graph reads; checks every replay against the reference over the cache with the new rows written.
void check_append_then_decode(const GpuTestEnv& env, const MlaDecodeConfig& cfg, std::vector<int> lens, int steps,
                              std::mt19937& rng) {
    const MlaDecodeDesc d;
    const int dim = d.latent_dim + d.rope_dim;
    std::vector<int> final_lens = lens;
    for (int& l : final_lens) l += steps;
    MlaDecodeProblem p = make_mla_decode_problem(d, final_lens, rng);  // pages for every token to come
    const int batch = p.batch;
    const uint16_t poison = to_bf16(24.f);  // stale rows: scores far above the real ones wherever q . 1 > 0
    std::vector<uint16_t> device_cache = p.cache;
    for (int b = 0; b < batch; ++b)
        for (int t = lens[size_t(b)]; t < final_lens[size_t(b)]; ++t)
            std::fill_n(device_cache.begin() + ptrdiff_t(cache_row(p, b, t)), dim, poison);
    const MlaAttention attn(d, cfg, env.arch, env.cache);
    const int splits = attn.num_splits(batch, *std::max_element(final_lens.begin(), final_lens.end()),
                                       env.ctx->info().sms);
    DeviceBuffer q(p.q.size() * 2), cache = to_device(device_cache), table = to_device(p.table),
        dlens(size_t(batch) * 4), positions(size_t(batch) * 4), src(size_t(batch) * dim * 2),
        ws(attn.workspace_bytes(batch, splits)), out(size_t(batch) * d.heads * d.latent_dim * 2);
    CudaStream stream;
    {  // the launch attributes outside a graph first (cooperative or cluster + programmatic): the driver's answer
        const MlaDecodeLaunch l = attn.decode_launch(batch, splits);
        dlens.upload(lens.data(), lens.size() * 4);
        q.upload(p.q.data(), p.q.size() * 2);
        attn.decode(q.as<uint16_t>(), cache.as<uint16_t>(), table.as<int>(), p.table_stride, dlens.as<int>(), batch,
                    splits, p.scale, ws, out.as<uint16_t>(), stream.get());
        stream.synchronize();
        const std::string attrs = std::string(l.options.cluster_x ? " cluster" : "") +
                                  (l.options.cooperative ? " cooperative" : "") +
                                  (l.options.dependent ? " programmatic" : "");
        MESSAGE(mla_decode_name(d, cfg) << " batch " << batch << ", " << splits
                                        << " splits: a launch with attributes" << (attrs.empty() ? " none" : attrs)
                                        << " ran");
    }
    CudaGraph g;
    g.begin_capture(stream.get());
    attn.append(src.as<uint16_t>(), dim, batch, positions.as<int>(), table.as<int>(), p.table_stride,
                cache.as<uint16_t>(), stream.get());
    attn.decode(q.as<uint16_t>(), cache.as<uint16_t>(), table.as<int>(), p.table_stride, dlens.as<int>(), batch,
                splits, p.scale, ws, out.as<uint16_t>(), stream.get());
    g.end_capture(stream.get());
    for (int step = 0; step < steps; ++step) {
        CAPTURE(step);
        std::vector<int> pos(static_cast<size_t>(batch));
        const std::vector<uint16_t> rows = random_bf16(size_t(batch) * dim, rng);
        for (int b = 0; b < batch; ++b) {
            pos[size_t(b)] = lens[size_t(b)]++;
            std::copy_n(rows.begin() + ptrdiff_t(size_t(b) * dim), dim,
                        p.cache.begin() + ptrdiff_t(cache_row(p, b, pos[size_t(b)])));
        }
        p.lens = lens;
        p.q = random_bf16(p.q.size(), rng);
        q.upload(p.q.data(), p.q.size() * 2);
        src.upload(rows.data(), rows.size() * 2);
        dlens.upload(lens.data(), lens.size() * 4);
        positions.upload(pos.data(), pos.size() * 4);
        out.fill_bytes(0xff);
        g.launch(stream.get());
        stream.synchronize();
        const size_t n_out = size_t(batch) * d.heads * d.latent_dim;
        const auto raw = from_device<uint16_t>(out, n_out);
        std::vector<double> got(n_out);
        for (size_t i = 0; i < n_out; ++i) got[i] = from_bf16(raw[i]);
        const double err = rel_l2(got, mla_decode_reference(p));
        CAPTURE(err);
        CHECK(err < kMlaDecodeTolerance);
    }
}

}  // namespace

TEST_CASE("cuda mla early tiles (GPU): append -> decode graph replays with the new token in the last page") {
    MF_GPU_TEST_OR_SKIP(env);
    const MlaDecodeDesc d;
    std::vector<MlaDecodeConfig> configs;  // each early_tiles candidate, then (a control) the same without it
    for (const MlaDecodeConfig& c : mla_decode_candidates(d, env.sm))
        if (c.early_tiles)
            for (int et : {c.early_tiles, 0}) {
                MlaDecodeConfig x = c;
                x.early_tiles = et;
                if (std::find(configs.begin(), configs.end(), x) == configs.end()) configs.push_back(x);
            }
    if (configs.empty()) {
        MESSAGE("skipped: no early_tiles MLA decode config runs on sm_" << env.sm);
        return;
    }
    std::mt19937 rng(2026);
    for (const MlaDecodeConfig& cfg : configs) {
        const std::string name = mla_decode_name(d, cfg);
        CAPTURE(name);
        // batch 1: 1 and 2 tiles per split (the last tile's split waits, the others not), the new token opening a
        // page at step 2; batch 8, ragged: a row within its first tile, rows crossing a page, an empty start
        check_append_then_decode(env, cfg, {1022}, 4, rng);
        check_append_then_decode(env, cfg, {2046}, 2, rng);  // (cm16 hb32: the cluster launch up to 2048)
        check_append_then_decode(env, cfg, {0, 63, 64, 130, 700, 1, 1023, 333}, 3, rng);
    }
}
