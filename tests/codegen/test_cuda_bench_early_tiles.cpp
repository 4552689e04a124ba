// MLA decode benchmark of what the runtime runs per layer: the cache append of the step's new token, then the decode
// (MlaAttention::append, MlaAttention::decode). With config early_tiles the decode overlaps the append (a programmatic
// dependent launch), so its cost is measured as (append + decode) - (append alone), each a CUDA graph over
// rotations of >= 256 MiB of distinct cache pages. Runs only with MOEFORGE_CUDA_BENCH=1 (device machine):
//   MOEFORGE_CUDA_BENCH=1 ./build/tests/test_codegen -tc='cuda bench (GPU): MLA decode after the cache append*'
// The default and cm16 hb32 bw1 (the plan's short-context entry) are timed with early_tiles 1 and 2 and without it
// (launched as before, after the append).
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "codegen/cuda/cuda_stream.hpp"
#include "codegen/cuda/mla_attention.hpp"
#include "tests/codegen/cuda_gpu_env.hpp"
#include "tests/codegen/cuda_graph_timing.hpp"

using namespace mf;
using namespace mf::test;

TEST_CASE("cuda bench (GPU): MLA decode after the cache append, early_tiles against the plain launch") {
    const char* on = std::getenv("MOEFORGE_CUDA_BENCH");
    if (!on || std::string(on) != "1") {
        MESSAGE("benchmark skipped: set MOEFORGE_CUDA_BENCH=1 to run it (device machine)");
        return;
    }
    // (MOEFORGE_CUDA_BENCH_ONLY=a,b, a short run of other configs: this table only when a part names _et1 or _et2)
    if (const char* only_env = std::getenv("MOEFORGE_CUDA_BENCH_ONLY");
        only_env && *only_env && std::string(only_env).find("_et1") == std::string::npos &&
        std::string(only_env).find("_et2") == std::string::npos) {
        MESSAGE("benchmark skipped: MOEFORGE_CUDA_BENCH_ONLY names no _et1 / _et2 config");
        return;
    }
    MF_GPU_TEST_OR_SKIP(env);
    const MlaDecodeDesc d;
    const int dim = d.latent_dim + d.rope_dim;
    const size_t page_bytes = size_t(dim) * 2 * d.page_size;
    const int sms = env.ctx->info().sms;
    const MlaDecodeConfig def = mla_decode_default_config(d, env.sm);
    if (!mla_decode_unsupported(d, [&] { MlaDecodeConfig c = def; c.early_tiles = 1; return c; }(), env.sm).empty()) {
        MESSAGE("skipped: early_tiles does not run on sm_" << env.sm);
        return;
    }
    MlaDecodeConfig cm = def;  // cm16 hb32 bw1 (fc1 pro1 ml1)
    cm.pv_overlap = 0;
    cm.cluster_merge = 16;
    cm.head_block = 32;
    // (with MOEFORGE_CUDA_BENCH_ONLY: the early_tiles configs whose name holds one of its parts, and both without it)
    const char* only = std::getenv("MOEFORGE_CUDA_BENCH_ONLY");
    const std::string parts = only && *only ? std::string(",") + only + "," : std::string();
    std::vector<MlaDecodeConfig> configs;
    for (const MlaDecodeConfig& c : {def, cm})
        for (int et : {0, 1, 2}) {
            MlaDecodeConfig x = c;
            x.early_tiles = et;
            if (et == 0 || parts.empty() || parts.find(fmt::format("_et{},", et)) != std::string::npos)
                configs.push_back(x);
        }
    const int max_batch = 8, max_ctx = 32768;
    const size_t pool_pages =
        std::max<size_t>(size_t(max_batch) * max_ctx / d.page_size, (size_t(300) << 20) / page_bytes);
    DeviceBuffer pool(pool_pages * page_bytes);
    {
        std::mt19937 rng(42);
        const size_t block = size_t(64) << 20;
        DeviceBuffer src = to_device(random_bf16(block / 2, rng));
        for (size_t off = 0; off < pool.bytes(); off += block)
            cu_check(cuda_driver().memcpy_dtod(pool.ptr() + off, src.ptr(), std::min(block, pool.bytes() - off)),
                     "fill");
    }
    CudaStream stream;
    std::printf("\n| config | batch | context | splits | append + decode us | append alone us | decode us (the "
                "difference) |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    std::vector<std::string> summary;
    const struct {
        int batch, ctx;
    } shapes[] = {{1, 1024}, {1, 2048}, {1, 4096}, {1, 8192}, {1, 32768}, {8, 1024}, {8, 8192}, {8, 32768}};
    for (const MlaDecodeConfig& cfg : configs) {
        const MlaAttention attn(d, cfg, env.arch, env.cache);
        std::string line = "| " + fields_name(cfg) + " |";
        for (const auto& sh : shapes) {
            const int batch = sh.batch, ctx = sh.ctx, pages = ctx / d.page_size;
            const size_t case_pages = size_t(batch) * pages;
            const int rot = static_cast<int>(std::clamp<size_t>(
                ((size_t(256) << 20) + case_pages * page_bytes - 1) / (case_pages * page_bytes), 1,
                pool_pages / case_pages));
            const int splits = attn.num_splits(batch, ctx, sms);
            std::mt19937 rng(batch * 7 + ctx);
            std::vector<int> table(size_t(rot) * case_pages);
            for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int>(i);
            std::shuffle(table.begin(), table.end(), rng);
            const std::vector<int> lens(size_t(batch), ctx), positions(size_t(batch), ctx - 1);
            DeviceBuffer dtable = to_device(table), dlens = to_device(lens), dpos = to_device(positions);
            DeviceBuffer q = to_device(random_bf16(size_t(rot) * batch * d.heads * dim, rng));
            DeviceBuffer rows = to_device(random_bf16(size_t(rot) * batch * dim, rng));
            DeviceBuffer ws(attn.workspace_bytes(batch, splits));
            DeviceBuffer out(size_t(rot) * batch * d.heads * d.latent_dim * 2);
            auto capture = [&](bool with_decode, CudaGraph& g) {
                g.begin_capture(stream.get());
                for (int r = 0; r < rot; ++r) {
                    const int* tab = dtable.as<int>() + size_t(r) * case_pages;
                    uint16_t* cache = reinterpret_cast<uint16_t*>(pool.ptr());
                    attn.append(rows.as<uint16_t>() + size_t(r) * batch * dim, dim, batch, dpos.as<int>(), tab, pages,
                                cache, stream.get());
                    if (with_decode)
                        attn.decode(q.as<uint16_t>() + size_t(r) * batch * d.heads * dim, cache, tab, pages,
                                    dlens.as<int>(), batch, splits, 0.1352338f, ws,
                                    out.as<uint16_t>() + size_t(r) * batch * d.heads * d.latent_dim, stream.get());
                }
                g.end_capture(stream.get());
            };
            auto time_us = [&](const CudaGraph& g) { return graph_replay_us(g, stream, rot); };
            CudaGraph both, alone;
            capture(true, both);
            capture(false, alone);
            const double us_both = time_us(both), us_alone = time_us(alone);
            std::printf("| %s | %d | %d | %d | %.1f | %.1f | %.1f |\n", fields_name(cfg).c_str(), batch, ctx, splits,
                        us_both, us_alone, us_both - us_alone);
            std::fflush(stdout);
            line += fmt::format(" {:.1f} |", us_both - us_alone);
            const auto o = from_device<uint16_t>(out, 4096);  // the timed outputs are real: finite
            bool finite = true;
            for (uint16_t v : o) finite = finite && std::isfinite(from_bf16(v));
            CHECK(finite);
        }
        summary.push_back(line);
    }
    std::printf("\nSummary, decode us per layer after the append ((append + decode) - append alone):\n| config |");
    for (const auto& sh : shapes) std::printf(" %dx%dK |", sh.batch, sh.ctx / 1024);
    std::printf("\n");
    for (const std::string& l : summary) std::printf("%s\n", l.c_str());
    std::fflush(stdout);
}
