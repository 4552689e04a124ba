// MLA decode benchmark on the device machine: us per layer and cache bytes/s against the measured device copy
// bandwidth, batch 1/8/64 x context 1K/8K/32K. Runs only with MOEFORGE_CUDA_BENCH=1 (it takes ~1 minute):
//   MOEFORGE_CUDA_BENCH=1 ./build/tests/test_codegen -tc='cuda bench*'
// Each case rotates over enough distinct cache pages (>= 256 MiB) that replays do not run from L2, and times
// a CUDA graph of decode + combine (how the executor runs it) with events.
#include <doctest/doctest.h>

#include "codegen/cuda/copy_bandwidth.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "codegen/cuda/cuda_stream.hpp"
#include "codegen/cuda/mla_kernels.hpp"
#include "tests/codegen/cuda_gpu_env.hpp"
#include "tests/codegen/cuda_graph_timing.hpp"

using namespace mf;
using namespace mf::test;

namespace {

// The default kernel's per-CTA profile slots (kMlaProfileCtaSlots each after the 32 of CTA (0, 0, 0);
// mla_decode_wgmma.cuh) of the last launch: the grid's skew at batch 1. Start / loop end / end in globaltimer ns from
// the first CTA's start, the cycles of each CTA's prologue, loop, tile waits + phase A and grid barrier wait, its
// loop cycles per tile (min / median / max over the CTAs), and the CTA whose loop ended last.
void print_cta_spread(const std::vector<unsigned long long>& v, const std::string& name, int ctx) {
    struct Cta {
        unsigned long long s[kMlaProfileCtaSlots];
        int index;
    };
    std::vector<Cta> ctas;
    unsigned long long last_start = 0;
    for (int i = 0; i < kMlaProfileCtas; ++i) {
        Cta c{};
        c.index = i;
        for (int k = 0; k < kMlaProfileCtaSlots; ++k) c.s[k] = v[32 + size_t(kMlaProfileCtaSlots) * i + k];
        if (c.s[0] == 0) continue;
        last_start = std::max(last_start, c.s[0]);
        ctas.push_back(c);
    }
    // (a CTA that left early wrote nothing this launch: its slots, if any, are an older launch's)
    std::erase_if(ctas, [&](const Cta& c) { return c.s[0] + 1000000 < last_start; });
    if (ctas.empty()) return;
    unsigned long long t0 = ctas[0].s[0];
    for (const Cta& c : ctas) t0 = std::min(t0, c.s[0]);
    auto spread = [&](auto&& f) {
        std::vector<double> x;
        for (const Cta& c : ctas) x.push_back(f(c));
        std::sort(x.begin(), x.end());
        return fmt::format("{:.0f} / {:.0f} / {:.0f}", x.front(), x[x.size() / 2], x.back());
    };
    const auto tiles = [](const Cta& c) { return double(c.s[7] & 0xffffffffu); };
    const Cta* last = &ctas[0];
    for (const Cta& c : ctas)
        if (c.s[1] > last->s[1]) last = &c;
    std::printf("<!-- ctas b1 ctx%d %s: %zu CTAs, min / median / max: start %s ns, loop end %s ns, end %s ns; cycles: "
                "prologue %s, loop %s, loop per tile %s, waits + phase A per tile %s, grid wait %s; tiles %s; the last "
                "loop end: CTA %d (SM %llu, %llu tiles, start %llu ns, prologue %llu, loop %llu cycles) -->\n",
                ctx, name.c_str(), ctas.size(), spread([&](const Cta& c) { return double(c.s[0] - t0); }).c_str(),
                spread([&](const Cta& c) { return double(c.s[1] - t0); }).c_str(),
                spread([&](const Cta& c) { return double(c.s[2] - t0); }).c_str(),
                spread([](const Cta& c) { return double(c.s[3]); }).c_str(),
                spread([](const Cta& c) { return double(c.s[4]); }).c_str(),
                spread([&](const Cta& c) { return c.s[4] / std::max(1.0, tiles(c)); }).c_str(),
                spread([&](const Cta& c) { return c.s[5] / std::max(1.0, tiles(c)); }).c_str(),
                spread([](const Cta& c) { return double(c.s[6]); }).c_str(), spread(tiles).c_str(), last->index,
                last->s[7] >> 32, last->s[7] & 0xffffffffu, last->s[0] - t0, last->s[3], last->s[4]);
}

}  // namespace

TEST_CASE("cuda bench (GPU): MLA decode us/layer and bytes/s against device copy bandwidth") {
    const char* on = std::getenv("MOEFORGE_CUDA_BENCH");
    if (!on || std::string(on) != "1") {
        MESSAGE("benchmark skipped: set MOEFORGE_CUDA_BENCH=1 to run it (device machine)");
        return;
    }
    MF_GPU_TEST_OR_SKIP(env);
    CudaStream stream;
    const double copy_bw = measure_device_copy_bandwidth(stream.get(), size_t(1) << 30);
    CHECK(copy_bw > 1e11);
    const GpuInfo& gpu = env.ctx->info();
    std::printf("\n%s, sm_%d, %d SMs; device copy bandwidth (read+write) %.0f GB/s\n", gpu.name.c_str(),
                env.sm, gpu.sms, copy_bw / 1e9);

    const MlaDecodeDesc d;  // DeepSeek-V3: 128 heads, 512 + 64, page 64, bf16
    const int dim = d.latent_dim + d.rope_dim;
    const size_t row_bytes = size_t(dim) * 2, page_bytes = row_bytes * d.page_size;
    const int max_batch = 64, max_ctx = 32768;
    const size_t pool_pages =
        std::max<size_t>(size_t(max_batch) * max_ctx / d.page_size, (size_t(300) << 20) / page_bytes);
    DeviceBuffer pool(pool_pages * page_bytes);
    {  // random bf16 data: one 64 MiB random block replicated over the pool
        std::mt19937 rng(42);
        const size_t block = size_t(64) << 20;
        const auto r = random_bf16(block / 2, rng);
        DeviceBuffer src = to_device(r);
        for (size_t off = 0; off < pool.bytes(); off += block)
            cu_check(
                cuda_driver().memcpy_dtod(pool.ptr() + off, src.ptr(), std::min(block, pool.bytes() - off)),
                "fill");
    }

    // The cp.async baseline (session 2's default), the default, then the variants under test (older variants:
    // tests/bench/cuda_mla_decode_results.md), the riskiest last so that a fault in a newer variant cannot
    // hide the rows before it; then the profiled builds (cycles per step). A summary (us/layer, one line per
    // config) closes the output, so that a log's tail keeps every config.
    MlaDecodeConfig base{64, 2, 1, 1, 1, 1};  // t64 s2 wgmma pb1
    auto with = [](MlaDecodeConfig c, int tma, int cluster, int qk_split, int pdl, int profile = 0, int cw = 0) {
        c.combine_warp = cw;
        c.tma = tma;
        c.cluster = cluster;
        c.qk_split = qk_split;
        c.pdl = pdl;
        c.decode_pdl = pdl;
        c.profile = profile;
        return c;
    };
    std::vector<MlaDecodeConfig> configs;
    // session 3 (tests/bench/cuda_mla_decode_results.md): split pairs (cluster 2), multicast and the seesaw schedule
    // lost to the default (tma 1, per-warp combine). Session 4, batch 1: the combine merged inside the decode (fc, a
    // cooperative launch) and the early prologue (pro), each also profiled; the default is fc1 pro1 since then,
    // def_prof is session 3's default profiled. Session 4, batch 64: the producer/consumer kernels, each also
    // profiled (pc1 slots: wg0 = producer: tile wait, S, softmax, refill; wg1 = consumer: P-ready waits, -, rescale,
    // release, P V; pc2 slots: wg0: tile wait, S wait after the P V, softmax, P V + S issue and P V wait, last
    // P V; wg1: P-ready wait, -, -, refill, P V). Session 6 (mla64): sf1 = the softmax with one MUFU.EX2 per element
    // (pc2 sf1), and the "P V late" kernels pc4 / pc5 / pc6 / pc7 (slots as pc2's for wg0; wg1: P-ready wait, rescale + early
    // part issue and wait + lo refill, "S issued" wait + late part issue, late part wait + hi refill, -); (their
    // multicast versions, tma2, measured 1.55x slower on an H100: candidates, not benched). Session 7 (mla64c): pc7
    // and pc8 (warpgroup 0's P from registers) with sf2 (the softmax's barrier after its exponentials) and sf3 (8 of
    // them on the FP32 pipe); the P V late profiles also report threads 96 and 224 (in the epilogue fields, totals).
    // (pc9 .. pc11, measured slower on an H200 in session 7: candidates, not benched)
    const MlaDecodeConfig def = mla_decode_default_config(d, env.sm);
    // session 8: the default waits box by box (bw1) and overlaps S with P V in CTAs of 2 tiles or more (pvo2); def8 is
    // bw1 alone (the default before pvo2, always benched beside it), def7 sessions 5-7's (bw0), the base of older rows
    MlaDecodeConfig def8 = def;
    def8.pv_overlap = 0;
    MlaDecodeConfig def7 = def8;
    def7.tile_box_wait = 0;
    auto fused = [](MlaDecodeConfig c, int fc, int pro) {
        c.fused_combine = fc;
        c.prologue = pro;
        return c;
    };
    auto fast = [](MlaDecodeConfig c) {  // session 6 (mla64): the softmax with one MUFU.EX2 per element
        c.softmax_fast = 1;
        return c;
    };
    auto sf = [](MlaDecodeConfig c, int value) {  // session 7 (mla64c): the softmax's barrier after its exponentials
        c.softmax_fast = value;
        return c;
    };
    auto pc = [](MlaDecodeConfig c, int kind) {
        c.stages = kind == 1 ? 3 : 2;
        c.producer_consumer = kind;
        return c;
    };
    const MlaDecodeConfig def_prof = with(base, 1, 1, 0, 0, 1, 1);
    // session 5 (batch 1, after the loop): the merge's loads as 512-byte warp stretches (ml), with merge helpers,
    // with bulk copies (fc2: also for the helpers' single units), with ready flags instead of the grid barrier (fc3,
    // riskier: after the session-4 variants), with 32-token tiles, with the page ids read early (pro2), and with
    // 32 heads per CTA (head_block 32: half the partial bytes per CTA)
    // (bulk_store: session 4)
    auto ml = [](MlaDecodeConfig c, int fc, int helpers, int tile = 64, int pro = 1, int heads_per_cta = 64) {
        c.head_block = heads_per_cta;
        c.fused_combine = fc;
        c.prologue = pro;
        c.merge_loads = 1;
        c.merge_helpers = helpers;
        c.tile_tokens = tile;
        c.stages = tile == 64 ? 2 : 4;
        return c;
    };
    const MlaDecodeConfig old_def = with(base, 1, 1, 0, 0, 0, 1);
    // (session 5 dropped from the list: bulk_store, measured slower in session 4; the profiled builds of l2p, mh)
    // (session 5 also dropped: fc2 ml1 without helpers; profiled: fc2, pro2, hb32). The default has ml1 since
    // session 5: fused(old_def, 1, 1) is session 4's default (fc1 pro1 ml0). Session 6 dropped the variants session 5
    // measured slower everywhere (fc2, fc3, pro2, l2p, mh1 ml0, pc1; their rows are in the results file): they stay
    // tuner candidates and GPU-tested, but no longer cost bench time.
    // session 6 (batch 1 at short contexts): the splits of a head block merged in one cluster of 16 or 8 CTAs
    // (cluster_merge), also profiled and with 32 heads per CTA
    auto cm = [](MlaDecodeConfig c, int size) {
        c.cluster_merge = size;
        return c;
    };
    // session 7 (batch 1 at 8K / 32K): tiles claimed at run time from a per-(row, head block) counter (tile_claim),
    // also profiled
    // and the epilogue's rows staged by stmatrix (epilogue_stmatrix: esm), also with the cluster merge (cm16 hb32)
    // and the merge's first context length read before the grid barrier (merge_early: mel)
    // and S waiting for each 64-column box of a tile (tile_box_wait: bw), on the default and on cm16 hb32
    // session 8: the default is bw1; bw2: Q's boxes on barriers of their own too
    auto boxes = [](MlaDecodeConfig c, int bw = 1) {
        c.tile_box_wait = bw;
        return c;
    };
    // and S(j + 1) right behind P V(j) (pv_overlap: pvo), on the default and with bw2, also profiled
    auto overlap = [](MlaDecodeConfig c, int pvo = 1) {
        c.pv_overlap = pvo;
        return c;
    };
    // and Q's boxes holding the CTA's own 32 heads (q_own_rows: qor) on cm16 hb32, bw1 and bw2 (also profiled)
    auto own_q = [](MlaDecodeConfig c) {
        c.q_own_rows = 1;
        return c;
    };
    // session 8 (mla64d): pc7 sf2 / pc8 sf2 with the balanced schedule (balanced_splits: bal; 2: the last part merges
    // its own rows from shared memory; 3: and the next unit's first tile issued before the epilogue)
    auto bal = [](MlaDecodeConfig c, int value = 1) {
        c.balanced_splits = value;
        return c;
    };
    // session 9 (mlab9): the decode as a programmatic dependent with its first K copies before the wait (early_tiles:
    // et) on the default and cm16 hb32 bw1 (here after the previous decode; after the append: cuda bench (GPU): MLA
    // decode after the cache append, test_cuda_bench_early_tiles.cpp)
    auto early = [](MlaDecodeConfig c, int et = 1) {  // (2: Q's copy before the wait too; also profiled)
        c.early_tiles = et;
        return c;
    };
    // session 9 (mla64f): pc7 sf2 / pc8 sf2 with each box of a stage on its own mbarrier (stage_box_wait: sbw; 2: pc7
    // with warpgroup 0's P V in two groups, its first two boxes refilled early), also profiled
    auto box = [](MlaDecodeConfig c, int value = 1) {
        c.stage_box_wait = value;
        return c;
    };
    auto claim = [](MlaDecodeConfig c, int tcl = 1, int esm = 0, int mel = 0) {
        c.tile_claim = tcl;
        c.epilogue_stmatrix = esm;
        c.merge_early = mel;
        return c;
    };
    for (MlaDecodeConfig c : {base, fused(old_def, 1, 1), def, def8, def7, claim(def7), claim(ml(def_prof, 1, 0)),
                              claim(def7, 0, 1), claim(def7, 0, 0, 1), claim(def7, 1, 1, 1),
                              claim(ml(def_prof, 1, 0), 1, 1, 1), claim(cm(ml(def7, 1, 0, 64, 1, 32), 16), 0, 1),
                              boxes(def7), boxes(ml(def_prof, 1, 0)), boxes(cm(ml(def7, 1, 0, 64, 1, 32), 16)),
                              boxes(def7, 2), boxes(ml(def_prof, 1, 0), 2), boxes(cm(ml(def7, 1, 0, 64, 1, 32), 16), 2),
                              overlap(def8), overlap(boxes(ml(def_prof, 1, 0))), overlap(boxes(def7, 2)),
                              overlap(boxes(ml(def_prof, 1, 0)), 2),
                              own_q(boxes(cm(ml(def7, 1, 0, 64, 1, 32), 16))),
                              own_q(boxes(cm(ml(def7, 1, 0, 64, 1, 32), 16), 2)),
                              own_q(boxes(cm(ml(def_prof, 1, 0, 64, 1, 32), 16), 2)),
                              ml(def_prof, 1, 0), ml(def7, 1, 1),
                              ml(def7, 1, 1, 32), ml(def7, 1, 1, 64, 1, 32), pc(old_def, 2), pc(def_prof, 2),
                              pc(old_def, 3), cm(ml(def7, 1, 0), 16), cm(ml(def7, 1, 0), 8),
                              cm(ml(def7, 1, 0, 64, 1, 32), 16), cm(ml(def_prof, 1, 0), 16),
                              cm(ml(def_prof, 1, 0, 64, 1, 32), 16),
                              fast(pc(old_def, 2)), fast(pc(def_prof, 2)), fast(pc(old_def, 4)),
                              fast(pc(def_prof, 4)), fast(pc(old_def, 5)), fast(pc(old_def, 6)), fast(pc(def_prof, 6)),
                              fast(pc(old_def, 7)), fast(pc(def_prof, 7)), sf(pc(old_def, 7), 2),
                              sf(pc(def_prof, 7), 2), sf(pc(old_def, 7), 3), sf(pc(old_def, 8), 2),
                              sf(pc(def_prof, 8), 2), sf(pc(old_def, 8), 3), bal(sf(pc(old_def, 7), 2)),
                              bal(sf(pc(old_def, 8), 2)), bal(sf(pc(old_def, 7), 2), 2), bal(sf(pc(old_def, 8), 2), 2),
                              bal(sf(pc(old_def, 7), 2), 3), early(def),
                              early(boxes(cm(ml(def7, 1, 0, 64, 1, 32), 16))), early(def, 2),
                              early(boxes(cm(ml(def7, 1, 0, 64, 1, 32), 16)), 2),
                              early(overlap(boxes(ml(def_prof, 1, 0)), 2)),
                              early(overlap(boxes(ml(def_prof, 1, 0)), 2), 2),
                              box(sf(pc(old_def, 7), 2)), box(sf(pc(def_prof, 7), 2)),
                              box(sf(pc(old_def, 8), 2)), box(sf(pc(old_def, 7), 2), 2),
                              box(sf(pc(def_prof, 7), 2), 2)})
        if (mla_decode_unsupported(d, c, env.sm).empty() &&
            std::find(configs.begin(), configs.end(), c) == configs.end())
            configs.push_back(c);
    // MOEFORGE_CUDA_BENCH_ONLY=a,b: only the configs whose name contains one of the comma-separated parts, and the
    // default and the previous default, bw1 without pvo2 (a short run for one variant under work)
    if (const char* only = std::getenv("MOEFORGE_CUDA_BENCH_ONLY"); only && *only) {
        std::vector<std::string> parts;
        for (std::string s = only; !s.empty();) {
            const size_t comma = s.find(',');
            parts.push_back(s.substr(0, comma));
            s = comma == std::string::npos ? "" : s.substr(comma + 1);
        }
        std::erase_if(configs, [&](const MlaDecodeConfig& c) {
            const std::string name = fields_name(c);
            return !(c == def) && !(c == def8) && std::none_of(parts.begin(), parts.end(), [&](const std::string& p) {
                return !p.empty() && name.find(p) != std::string::npos;
            });
        });
    }

    std::printf(
        "\n| config | batch | context | splits | us/layer | decode only us | cache GB/s | floor us | x floor "
        "| FlashMLA us |\n");
    std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    const double flashmla[3][3] = {{17.8, 34.0, 66.7}, {21.1, 51.4, 134.9}, {40.4, 260, 1017}};
    std::vector<std::string> summary;
    for (const MlaDecodeConfig& cfg : configs) {
        const auto decode = env.build(mla_decode_source(d, cfg, env.sm));
        const auto combine_cta = env.build(mla_combine_source(d, cfg));
        const auto combine_warp = cfg.combine_warp ? env.build(mla_combine_warp_source(d, cfg)) : nullptr;
        const int max_resident = cfg.fused_combine ? decode->max_resident_ctas() : 0;
        // cluster_merge: clusters of that many CTAs the device holds at once (0: launched as without it)
        const int max_clusters = cfg.cluster_merge ? decode->max_active_clusters(unsigned(cfg.cluster_merge)) : 0;
        std::printf("<!-- %s: %d registers, %d bytes local, %u bytes shared%s -->\n", decode->name().c_str(),
                    decode->registers(), decode->local_bytes(), decode->dynamic_smem_bytes(),
                    cfg.cluster_merge ? fmt::format(", {} clusters of {} at once", max_clusters, cfg.cluster_merge).c_str()
                                      : "");
        const int batches[3] = {1, 8, 64}, contexts[3] = {1024, 8192, 32768};
        std::string line = "| " + fields_name(cfg) + " |";
        for (int bi = 0; bi < 3; ++bi)
            for (int ci = 0; ci < 3 + (bi == 0 ? 2 : 0); ++ci) {  // batch 1 also at 2K and 4K (session 6)
                const int batch = batches[bi], ctx = ci < 3 ? contexts[ci] : 1024 << (ci - 2);
                const int pages_per_seq = ctx / d.page_size;
                const size_t case_pages = size_t(batch) * pages_per_seq;
                const size_t case_bytes = case_pages * page_bytes;
                const int rot = static_cast<int>(std::clamp<size_t>(
                    ((size_t(256) << 20) + case_bytes - 1) / case_bytes, 1, pool_pages / case_pages));
                const int splits = mla_decode_num_splits(d, cfg, batch, ctx, gpu.sms, max_clusters);
                const int partials = mla_decode_partials(cfg, splits);
                const bool direct = mla_decode_writes_output(cfg, splits);
                const Dim3 grid = mla_decode_grid(d, cfg, batch, splits);
                // (as MlaAttention::decode: how the decode is launched)
                const MlaDecodeLaunch launch =
                    mla_decode_launch_kind(d, cfg, batch, splits, max_resident, max_clusters);
                const bool fuses = launch.grid_sync, clusters = launch.options.cluster_x != 0;
                std::mt19937 rng(batch * 7 + ctx);
                std::vector<int> table(size_t(rot) * case_pages), lens(batch, ctx);
                for (size_t i = 0; i < table.size(); ++i) table[i] = static_cast<int>(i);
                std::shuffle(table.begin(), table.end(),
                             rng);  // scattered pages, each used once per rotation set
                DeviceBuffer dtable = to_device(table), dlens = to_device(lens);
                DeviceBuffer q = to_device(random_bf16(size_t(rot) * batch * d.heads * dim, rng));
                DeviceBuffer o_part(mla_decode_o_part_bytes(d, cfg, batch, partials)),
                    lse(mla_decode_lse_part_bytes(d, batch, partials));
                DeviceBuffer out(size_t(rot) * batch * d.heads * d.latent_dim * 2);
                // 32 slots of CTA (0, 0, 0), then kMlaProfileCtaSlots per CTA (the default kernel's profile builds)
                const size_t prof_slots = 32 + size_t(kMlaProfileCtaSlots) * kMlaProfileCtas;
                DeviceBuffer prof(prof_slots * sizeof(unsigned long long));
                prof.fill_bytes(0);
                DeviceBuffer grid_sync(kMlaGridSyncBytes);  // the fused combine's counters: zero once, never reset
                grid_sync.fill_bytes(0);
                // coop_only: a fused config launched cooperatively without the merge (grid_sync null): what the
                // cooperative launch itself costs against the plain launch of "decode only"
                // forced_cluster (cluster_merge configs at batch 1 where the split policy does not pick the cluster):
                // the cluster launch with that many splits anyway, to see where the policy's bound should be
                auto capture = [&](bool with_combine, CudaGraph& g, bool coop_only = false, int forced_cluster = 0) {
                    g.begin_capture(stream.get());
                    for (int r = 0; r < rot; ++r) {
                        MlaDecodeParams p{q.as<uint16_t>() + size_t(r) * batch * d.heads * dim,
                                          reinterpret_cast<const uint16_t*>(pool.ptr()),
                                          dtable.as<int>() + size_t(r) * case_pages,
                                          dlens.as<int>(),
                                          o_part.as<float>(),
                                          lse.as<float>(),
                                          batch,
                                          pages_per_seq,
                                          forced_cluster ? forced_cluster : splits,
                                          0.1352338f,
                                          nullptr,
                                          cfg.profile ? prof.as<unsigned long long>() : nullptr,
                                          {},
                                          {},
                                          nullptr};
                        mla_decode_bind_cache(d, cfg, p);
                        uint16_t* out_r = out.as<uint16_t>() + size_t(r) * batch * d.heads * d.latent_dim;
                        if (direct) p.out = out_r;  // as MlaAttention::decode: one split writes the output
                        if (forced_cluster && with_combine) {
                            p.out = out_r;
                            decode->launch_cluster(mla_decode_grid(d, cfg, batch, p.num_splits),
                                                   unsigned(cfg.cluster_merge), p, stream.get());
                            continue;
                        }
                        if ((fuses || clusters) && with_combine) {  // as MlaAttention::decode: merged in the decode
                            p.out = out_r;
                            if (launch.grid_sync) p.grid_sync = grid_sync.as<unsigned>();
                            decode->launch_with(launch.grid, launch.options, p, stream.get());
                            continue;
                        }
                        // ("decode only" of a fused config: the same kernel storing its partials, no merge)
                        if (coop_only)
                            decode->launch_cooperative(grid, p, stream.get());
                        else
                            decode->launch_with(grid, CudaLaunchOptions{0, false, launch.options.dependent}, p,
                                                stream.get());
                        const MlaCombineParams cp{o_part.as<float>(), lse.as<float>(), out_r, batch,
                                                  partials};
                        const bool warps = mla_combine_uses_warps(d, cfg, batch, partials);
                        const CudaKernel& combine = warps ? *combine_warp : *combine_cta;
                        const Dim3 cgrid = warps ? mla_combine_warp_grid(d, batch) : mla_combine_grid(d, batch);
                        if (with_combine && !direct) {
                            if (cfg.pdl)
                                combine.launch_dependent(cgrid, cp, stream.get());
                            else
                                combine.launch(cgrid, cp, stream.get());
                        }
                    }
                    g.end_capture(stream.get());
                };
                auto time_us = [&](const CudaGraph& g) { return graph_replay_us(g, stream, rot); };
                CudaGraph full, only;
                capture(true, full);
                capture(false, only);
                const double us = time_us(full);
                const auto v = from_device<unsigned long long>(prof, prof_slots);  // the full graph's profile
                const double us_decode = time_us(only);
                if (fuses && batch == 1) {
                    CudaGraph coop;
                    capture(false, coop, true);
                    std::printf("<!-- %s b1 ctx%d: cooperative launch without the merge %.1f us, plain launch %.1f us "
                                "-->\n",
                                fields_name(cfg).c_str(), ctx, time_us(coop), us_decode);
                }
                if (batch == 1 && max_clusters >= 2 && !clusters) {
                    CudaGraph forced;
                    capture(true, forced, false, cfg.cluster_merge);
                    std::printf("<!-- %s b1 ctx%d: forced cluster merge, %d splits of %d tiles: %.1f us (the policy's %d "
                                "splits: %.1f us) -->\n",
                                fields_name(cfg).c_str(), ctx, cfg.cluster_merge,
                                (ctx / cfg.tile_tokens + cfg.cluster_merge - 1) / cfg.cluster_merge, time_us(forced),
                                splits, us);
                }
                line += fmt::format(" {:.1f} / {:.1f} |", us, us_decode);
                // cycles per tile of each step in CTA (0, 0, 0), per warpgroup (batch 1, batch 64 32K)
                if (cfg.profile && (batch == 1 || (batch == 64 && ctx == 32768))) {
                    for (int w = 0; w < 2; ++w) {
                        const double n = std::max<double>(1, double(v[w * 8 + 7]));
                        std::printf(
                            "<!-- profile b%d ctx%d wg%d, %llu tiles: prologue %llu, epilogue %llu cycles; "
                            "per tile: "
                            "wait %.0f, phase A %.0f, softmax %.0f, barrier %.0f, phase B %.0f; epilogue: sums + "
                            "lse %llu, stores %llu; fused combine: grid wait %llu (arrival %llu), merge %llu (first "
                            "rows summed %llu; cluster merge: staging = stores, cluster barrier = grid wait, proxy "
                            "fence = arrival, first = pushed rows landed) -->\n",
                            batch, ctx, w, v[w * 8 + 7], v[w * 8 + 0], v[w * 8 + 6], v[w * 8 + 1] / n,
                            v[w * 8 + 2] / n, v[w * 8 + 3] / n, v[w * 8 + 4] / n, v[w * 8 + 5] / n,
                            v[16 + w * 8 + 2], v[16 + w * 8 + 3], v[16 + w * 8], v[16 + w * 8 + 4],
                            v[16 + w * 8 + 1], v[16 + w * 8 + 5]);
                    }
                }
                if (cfg.profile && batch == 1) print_cta_spread(v, fields_name(cfg), ctx);
                const double cache = double(batch) * ctx * row_bytes;
                const double floor_us = cache / copy_bw * 1e6;
                std::printf("| %s | %d | %d | %d | %.1f | %.1f | %.0f | %.1f | %.2f | %s |\n",
                            fields_name(cfg).c_str(), batch, ctx, splits, us, us_decode,
                            cache / (us * 1e-6) / 1e9, floor_us, us / floor_us,
                            ci < 3 ? fmt::format("{:.1f}", flashmla[bi][ci]).c_str() : "-");
                std::fflush(stdout);  // a later device fault must not swallow the rows already measured
                // the timed outputs are real: finite, not the poison
                const auto o = from_device<uint16_t>(out, 4096);
                bool finite = true;
                for (uint16_t v : o) finite = finite && std::isfinite(from_bf16(v));
                CHECK(finite);
            }
        summary.push_back(line);
    }
    std::printf("\nSummary, us/layer / decode-only us (batch x context):\n| config |");
    for (int b : {1, 8, 64}) {
        for (int c : {1, 8, 32}) std::printf(" %dx%dK |", b, c);
        if (b == 1) std::printf(" 1x2K | 1x4K |");
    }
    std::printf("\n");
    for (const std::string& l : summary) std::printf("%s\n", l.c_str());
    std::fflush(stdout);
}
