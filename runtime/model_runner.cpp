#include "runtime/model_runner.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <new>
#include <stdexcept>

#include <fmt/core.h>

#include "codegen/cuda/cublas_gemm.hpp"
#include "codegen/cuda/nvrtc_compiler.hpp"
#include "codegen/x64/aligned_bytes.hpp"
#include "runtime/cpu_topology.hpp"
#include "runtime/gpu_layers.hpp"
#include "runtime/numa_memory.hpp"
#include "runtime/vector_ops.hpp"
#include "runtime/weight_matrix.hpp"

namespace mf {
namespace {

uint64_t mem_available_bytes() {
    std::ifstream f("/proc/meminfo");
    std::string key;
    uint64_t kb = 0;
    std::string unit;
    while (f >> key >> kb >> unit)
        if (key == "MemAvailable:") return kb * 1024;
    return 0;
}

// Bytes the repacked weights will take in host memory: every matmul at its compute type, experts at theirs; the
// non-expert weights of the first gpu_layers layers (and lm_head when all are there) live on the GPU instead.
uint64_t estimate_packed_bytes(const DeepSeekV3Config& c, const ModelWeights& w, ComputeType dense, ComputeType experts,
                               int64_t gpu_layers) {
    const auto per = [](ComputeType t) {
        return t == ComputeType::int4 ? 0.625 : t == ComputeType::int8 ? 1.0 : t == ComputeType::bf16 ? 2.0 : 4.0;
    };
    double b = gpu_layers == c.n_layers ? 0.0 : double(w.output.numel()) * per(dense);
    for (int64_t i = 0; i < int64_t(w.layers.size()); ++i) {
        const LayerWeights& l = w.layers[size_t(i)];
        if (i >= gpu_layers) {
            for (const TensorView* t : {&l.q_a, &l.q_b, &l.kv_a, &l.kv_b, &l.k_b, &l.v_b, &l.o, &l.ffn_gate, &l.ffn_up,
                                        &l.ffn_down, &l.shexp_gate, &l.shexp_up, &l.shexp_down})
                if (!t->empty()) b += double(t->numel()) * per(dense);
            if (!l.router.empty()) b += double(l.router.numel()) * 4;
        }
        for (size_t e = 0; e < l.exp_gate.size(); ++e)
            b += double(l.exp_gate[e].numel() + l.exp_up[e].numel() + l.exp_down[e].numel()) * per(experts);
    }
    return uint64_t(b);
}

std::vector<int> worker_cpus(const CpuTopology& topo, int threads) {
    std::vector<int> cpus;
    for (const auto& node : topo.numa_nodes)
        for (int cpu : topo.one_pu_per_core(node.id)) cpus.push_back(cpu);
    if (cpus.empty()) cpus = topo.one_pu_per_core();
    if (threads > 0) {
        if (threads > int(cpus.size())) {  // more workers than cores: add the remaining hardware threads
            for (const auto& core : topo.cores)
                for (size_t i = 1; i < core.pus.size() && int(cpus.size()) < threads; ++i) cpus.push_back(core.pus[i]);
        }
        if (threads > int(cpus.size()))
            throw std::runtime_error(fmt::format("--threads {}: this process may run on only {} CPUs", threads,
                                                 cpus.size()));
        cpus.resize(size_t(threads));
    }
    return cpus;
}

// How many leading layers run on the GPU (RuntimeOptions::gpu_layers), a note on the placement, and the prefill
// chunk (an auto chunk is the long one when the GPU holds layers and its activations cost none of them, else the
// short one). Without a usable GPU: 0 when the GPU was only wanted if present (-1), an error naming the reason when
// it was asked for (N > 0).
int64_t place_gpu_layers(const DeepSeekV3Config& c, const ModelWeights& w, const RuntimeOptions& opt,
                         std::string& note, int64_t& prefill_chunk) {
    prefill_chunk = opt.prefill_chunk > 0 ? opt.prefill_chunk : RuntimeOptions::kPrefillChunkCpu;
    if (opt.gpu_layers == 0) {
        note = "CPU only";
        return 0;
    }
    const bool asked = opt.gpu_layers > 0;
    std::string why;
    GpuInfo gpu;
    if (!nvrtc_available()) {
        why = "moeforge was built without CUDA (NVRTC)";
    } else if (const GpuQuery q = query_cuda_gpus(); q.gpus.empty()) {
        why = "no CUDA GPU (" + q.unavailable + ")";
    } else if (opt.gpu_device < 0 || opt.gpu_device >= int(q.gpus.size())) {
        why = fmt::format("there is no CUDA device {} ({} found)", opt.gpu_device, q.gpus.size());
    } else {
        gpu = q.gpus[size_t(opt.gpu_device)];
        why = GpuLayers::unsupported(c, gpu.cc_major * 10 + gpu.cc_minor);
        if (std::string blas; why.empty() && !CublasGemm::available(&blas)) why = blas;
    }
    if (!why.empty()) {
        if (asked) throw std::runtime_error(fmt::format("--gpu-layers {}: {} (use --cpu-only)", opt.gpu_layers, why));
        note = "CPU only: " + why;
        return 0;
    }
    // Memory: the embedding and lm_head tables, activations for one chunk, then layer after layer with its cache.
    const uint64_t row = uint64_t(c.kv_lora_rank + c.qk_rope);
    auto layers_that_fit = [&](uint64_t chunk) {
        const uint64_t fixed = uint64_t(w.token_embd.numel()) * 2 + uint64_t(c.vocab_size) * c.hidden * 2 +
                               chunk * uint64_t(c.vocab_size) * 4 + chunk * uint64_t(c.n_heads) * row * 8 +
                               chunk * uint64_t(c.hidden) * 32 + (uint64_t(1) << 30);
        const uint64_t budget = gpu.memory_bytes / 10 * 9;
        uint64_t used = fixed;
        int64_t fit = 0;
        while (fit < c.n_layers) {
            const uint64_t layer = gpu_layer_bytes(c, fit) + uint64_t(opt.ctx) * row * 2;
            if (used + layer > budget) break;
            used += layer;
            ++fit;
        }
        return fit;
    };
    const int64_t fit = layers_that_fit(uint64_t(prefill_chunk));
    const int64_t want = asked ? std::min<int64_t>(opt.gpu_layers, c.n_layers) : c.n_layers;
    if (asked && want > fit)
        throw std::runtime_error(fmt::format("--gpu-layers {}: only {} layers fit in {}'s {:.1f} GiB at --ctx {} "
                                             "(ask for fewer, or a smaller --ctx)",
                                             opt.gpu_layers, fit, gpu.name, double(gpu.memory_bytes) / (1 << 30),
                                             opt.ctx));
    const int64_t n = std::min(want, fit);
    note = n == 0 ? "CPU only: " + gpu.name + " cannot hold a layer" : "";
    if (opt.prefill_chunk == 0 && n > 0 && layers_that_fit(uint64_t(RuntimeOptions::kPrefillChunkGpu)) >= n)
        prefill_chunk = RuntimeOptions::kPrefillChunkGpu;
    return n;
}

}  // namespace

std::unique_ptr<ModelRunner> ModelRunner::load(const std::filesystem::path& path, const RuntimeOptions& opt,
                                         const LoadProgress& progress) {
    if (!std::filesystem::exists(path))
        throw std::runtime_error("model " + path.string() + " does not exist (give a .gguf file or an HF directory)");
    auto file = Model::open(path);
    return std::make_unique<ModelRunner>(std::move(file), opt, progress);
}

ModelRunner::ModelRunner(std::unique_ptr<Model> file, const RuntimeOptions& opt, const LoadProgress& progress)
    : file_(std::move(file)), opt_(opt), dense_type_(opt.dense_type()), expert_type_(opt.expert_type(*file_)) {
    const auto t0 = std::chrono::steady_clock::now();
    const DeepSeekV3Config& c = file_->config();
    const ModelWeights& w = file_->weights();
    if (opt.ctx <= 0 || opt.prefill_chunk < 0)
        throw std::runtime_error("--ctx must be positive and the prefill chunk positive or 0 (auto)");
    gpu_layers_ = int(place_gpu_layers(c, w, opt, placement_, opt_.prefill_chunk));
    const int64_t g = gpu_layers_;
    const uint64_t need = estimate_packed_bytes(c, w, dense_type_, expert_type_, g) +
                          uint64_t(c.n_layers - g) * uint64_t(opt.ctx) * uint64_t(c.kv_lora_rank + c.qk_rope) * 4;
    const uint64_t avail = mem_available_bytes();
    if (avail && need > avail)
        throw std::runtime_error(fmt::format(
            "out of memory: the repacked weights and a {}-position KV cache need about {:.1f} GiB, only {:.1f} GiB "
            "are available (try --experts int8, a smaller --ctx, or a machine with more RAM)",
            opt.ctx, double(need) / (1 << 30), double(avail) / (1 << 30)));

    // Workers: one pinned per physical core, grouped by NUMA node.
    const CpuTopology topo = read_cpu_topology();
    const std::vector<int> cpus = worker_cpus(topo, opt.threads);
    all_pool_ = std::make_unique<ThreadPool>(cpus);
    pools_.all = all_pool_.get();
    std::map<int, std::vector<int>> by_node;
    for (int cpu : cpus)
        for (const auto& n : topo.numa_nodes)
            if (std::find(n.pus.begin(), n.pus.end(), cpu) != n.pus.end()) by_node[n.id].push_back(cpu);
    if (by_node.size() <= 1) {
        pools_.nodes = {pools_.all};
    } else {
        for (auto& [node, node_cpus] : by_node) {
            node_pools_.push_back(std::make_unique<ThreadPool>(node_cpus));
            pools_.nodes.push_back(node_pools_.back().get());
        }
    }
    const int nodes = int(pools_.nodes.size());

    uint64_t total = 0, done = 0;
    for_each_tensor(w, [&](const TensorView& t) { total += t.bytes; });
    const auto tick = [&](const TensorView& t, std::string_view stage) {
        done += t.bytes;
        if (progress && opt.progress) progress(done, total, stage);
    };
    try {
        if ((expert_type_ == ComputeType::int8 || expert_type_ == ComputeType::int4) && c.n_layers > c.n_dense_layers) {
            ExpertFfnDesc d{expert_type_ == ComputeType::int4 ? WeightType::int4 : WeightType::int8, int(c.hidden),
                            int(c.moe_inter)};
            for (int n = 0; n < nodes; ++n)
                drivers_.routed.push_back(std::make_shared<ExpertFfnSet>(d, opt.expert_ffn_by_m, opt.expert_ffn, kernels_, pools_.nodes[size_t(n)]->size()));
        }
        if (dense_type_ == ComputeType::int8) {
            if (c.n_layers > c.n_dense_layers && c.n_shared_experts > 0) {
                ExpertFfnDesc d{WeightType::int8, int(c.hidden), int(c.moe_inter * c.n_shared_experts)};
                drivers_.shared = std::make_shared<ExpertFfnSet>(d, opt.expert_ffn_by_m, opt.expert_ffn, kernels_, threads());
            }
            if (c.n_dense_layers > 0) {
                ExpertFfnDesc d{WeightType::int8, int(c.hidden), int(c.dense_inter)};
                dense_driver_ = std::make_shared<ExpertFfnSet>(d, opt.expert_ffn_by_m, opt.expert_ffn, kernels_, threads());
            }
        }
        rope_ = RopeTable(RopeParams{c.qk_rope, c.rope_theta, c.yarn, c.yarn_factor, c.yarn_original_ctx,
                                     c.yarn_beta_fast, c.yarn_beta_slow, c.yarn_mscale, c.yarn_mscale_all_dim},
                          opt.ctx);
        kv_ = LatentKvCache(c.n_layers - g, opt.ctx, c.kv_lora_rank, c.qk_rope);  // the CPU layers' cache
        if (g > 0) {
            GpuLayersOptions go;
            go.device = opt.gpu_device;
            go.layers = int(g);
            go.lm_head = g == c.n_layers;
            go.ctx = opt.ctx;
            go.max_rows = opt_.prefill_chunk;
            go.mla_decode_by_ctx = opt.mla_decode_by_ctx;
            go.cubin_cache = opt.cubin_cache.empty() ? std::filesystem::temp_directory_path() / "moeforge-cubins"
                                                     : std::filesystem::path(opt.cubin_cache);
            gpu_ = std::make_unique<GpuLayers>(*file_, go, *pools_.all, times_, [&](int64_t l) {
                const LayerWeights& lw = w.layers[size_t(l)];
                for (const TensorView* t : {&lw.attn_norm, &lw.q_a, &lw.q_a_norm, &lw.q_b, &lw.kv_a, &lw.kv_a_norm,
                                            &lw.kv_b, &lw.k_b, &lw.v_b, &lw.o, &lw.ffn_norm, &lw.ffn_gate, &lw.ffn_up,
                                            &lw.ffn_down, &lw.router, &lw.router_bias, &lw.shexp_gate, &lw.shexp_up,
                                            &lw.shexp_down})
                    if (!t->empty()) tick(*t, fmt::format("GPU layer {}/{}", l + 1, c.n_layers));
            });
            placement_ = gpu_->describe();
        }
        tick(w.token_embd, "embedding");
        attn_.reserve(size_t(c.n_layers));
        dense_.resize(size_t(c.n_layers));
        moe_.resize(size_t(c.n_layers));
        for (int64_t l = 0; l < c.n_layers; ++l) {
            const LayerWeights& lw = w.layers[size_t(l)];
            const std::string stage = fmt::format("layer {}/{}", l + 1, c.n_layers);
            if (l < g) {  // on the GPU but for its routed experts
                attn_.emplace_back();
                ffn_norm_.emplace_back();
                if (c.is_moe_layer(l))
                    moe_[size_t(l)] = MoeBlock(c, lw, dense_type_, expert_type_, kernels_, drivers_, pools_, [&](int64_t e) {
                        tick(lw.exp_gate[size_t(e)], stage);
                        tick(lw.exp_up[size_t(e)], stage);
                        tick(lw.exp_down[size_t(e)], stage);
                    }, /*routed_only=*/true);
                continue;
            }
            attn_.emplace_back(c, lw, dense_type_, kernels_);
            for (const TensorView* t : {&lw.attn_norm, &lw.q_a, &lw.q_a_norm, &lw.q_b, &lw.kv_a, &lw.kv_a_norm,
                                        &lw.kv_b, &lw.k_b, &lw.v_b, &lw.o})
                if (!t->empty()) tick(*t, stage);
            ffn_norm_.push_back(weight_vector(lw.ffn_norm));
            if (!c.is_moe_layer(l)) {
                dense_[size_t(l)] = FfnBlock(lw.ffn_gate, lw.ffn_up, lw.ffn_down, dense_type_, kernels_, dense_driver_);
                for (const TensorView* t : {&lw.ffn_norm, &lw.ffn_gate, &lw.ffn_up, &lw.ffn_down}) tick(*t, stage);
                continue;
            }
            moe_[size_t(l)] = MoeBlock(c, lw, dense_type_, expert_type_, kernels_, drivers_, pools_, [&](int64_t e) {
                tick(lw.exp_gate[size_t(e)], stage);
                tick(lw.exp_up[size_t(e)], stage);
                tick(lw.exp_down[size_t(e)], stage);
            });
            for (const TensorView* t : {&lw.ffn_norm, &lw.router, &lw.router_bias, &lw.shexp_gate, &lw.shexp_up,
                                        &lw.shexp_down})
                if (!t->empty()) tick(*t, stage);
        }
        if (g < c.n_layers) {
            output_norm_ = weight_vector(w.output_norm);
            WeightMatrix head;
            weight_matrix(w.output.empty() ? w.token_embd : w.output, head);
            lm_head_ = Linear::pack(head.src, dense_type_, &kernels_);
        }
        tick(w.output_norm, "lm_head");
        tick(w.output, "lm_head");
    } catch (const std::bad_alloc&) {
        gpu_.reset();
        throw std::runtime_error(fmt::format("out of memory repacking {} ({:.1f} GiB available)",
                                             file_->path().string(), double(mem_available_bytes()) / (1 << 30)));
    }
    packed_bytes_ = lm_head_.weight_bytes();
    for (int64_t l = 0; l < c.n_layers; ++l) {
        if (l >= g) packed_bytes_ += attn_[size_t(l)].weight_bytes() + dense_[size_t(l)].weight_bytes();
        if (c.is_moe_layer(l)) packed_bytes_ += moe_[size_t(l)].routed_weight_bytes();
    }
    load_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

ModelRunner::~ModelRunner() = default;

size_t ModelRunner::routed_expert_bytes() const {
    const DeepSeekV3Config& c = config();
    for (int64_t l = 0; l < c.n_layers; ++l)
        if (c.is_moe_layer(l) && c.n_experts > 0) return moe_[size_t(l)].expert_bytes(0);
    return 0;
}

std::string ModelRunner::describe() const {
    return fmt::format("{} thread{} ({} NUMA node{}), dense {}, experts {}, {:.1f} MiB packed in {:.1f} s; {}; "
                       "prefill chunk {}",
                       threads(), threads() > 1 ? "s" : "", numa_nodes(), numa_nodes() > 1 ? "s" : "",
                       compute_type_name(dense_type_), compute_type_name(expert_type_),
                       double(packed_bytes_) / (1 << 20), load_seconds_, placement_, opt_.prefill_chunk);
}

void ModelRunner::forward(std::span<const int32_t> tokens, float* logits, int64_t logits_rows) {
    const int64_t n = int64_t(tokens.size());
    if (n == 0) return;
    if (logits_rows < 0 || logits_rows > n) throw std::logic_error("ModelRunner::forward: bad logits_rows");
    if (n_past() + n > capacity())
        throw std::runtime_error(fmt::format("context full: {} + {} tokens exceed --ctx {}", n_past(), n, capacity()));
    for (int32_t t : tokens)
        if (t < 0 || t >= vocab()) throw std::runtime_error(fmt::format("token id {} outside the vocabulary", t));
    const int64_t chunk = opt_.prefill_chunk;
    for (int64_t s = 0; s < n; s += chunk) {
        const int64_t m = std::min(chunk, n - s);
        // Rows of this chunk among the last logits_rows tokens.
        const int64_t first_wanted = n - logits_rows;
        const int64_t lo = std::max(s, first_wanted), hi = s + m;
        const int64_t rows = std::max<int64_t>(0, hi - lo);
        forward_chunk(tokens.data() + s, m, rows ? logits + (lo - first_wanted) * vocab() : nullptr, rows);
    }
}

void ModelRunner::forward_chunk(const int32_t* tokens, int64_t m, float* logits, int64_t logits_rows) {
    const DeepSeekV3Config& c = config();
    const int64_t d = c.hidden, pos0 = n_past();
    std::vector<float> x(static_cast<size_t>(m * d)), xn(size_t(m * d));
    // The routed experts' output: each token's row (28 KiB at hidden 7168) is accumulated into by up to 8 experts in
    // scattered order, so on 4 KiB pages nearly every row update is a TLB miss; AlignedBytes puts a prefill chunk's
    // rows on 2 MiB pages (amx9, session 9: the down pass 5-14% faster at M = 1024 in `bench kernels --y-huge`).
    AlignedBytes tmp_bytes(size_t(m * d) * sizeof(float));
    float* tmp = reinterpret_cast<float*>(tmp_bytes.data());
    const int64_t g = gpu_layers_;
    if (gpu_) {
        // The GPU runs its layers; at each MoE layer it hands the normed rows and the routing over and the CPU runs
        // the routed experts while the GPU runs the shared expert.
        const double routed_before = times_.routed_experts;
        const auto t0 = std::chrono::steady_clock::now();
        gpu_->begin(tokens, m, pos0, logits_rows);
        for (GpuMoeHandoff h; (h = gpu_->advance()).layer >= 0;)
            moe_[size_t(h.layer)].forward_routed(h.xn, m, h.ids, h.weights, h.routed, pools_, times_);
        gpu_->finish(logits, x.data());
        times_.gpu_layers += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() -
                             (times_.routed_experts - routed_before);
        if (gpu_->has_lm_head()) {
            kv_.commit(m);
            return;
        }
    } else {
        StageClock clock(times_.embedding);
        for (int64_t i = 0; i < m; ++i) dequantize_row(file_->weights().token_embd, tokens[i], x.data() + i * d);
    }
    for (int64_t l = g; l < c.n_layers; ++l) {
        {
            StageClock clock(times_.attention);
            attn_[size_t(l)].forward(x.data(), m, pos0, kv_, l - g, rope_, *pools_.all, tmp);
            for (int64_t i = 0; i < m * d; ++i) x[size_t(i)] += tmp[i];
        }
        for (int64_t i = 0; i < m; ++i)
            rms_norm_f32(x.data() + i * d, ffn_norm_[size_t(l)].data(), d, c.rms_eps, xn.data() + i * d);
        if (c.is_moe_layer(l)) {
            moe_[size_t(l)].forward(xn.data(), m, tmp, pools_, times_);
        } else {
            StageClock clock(times_.dense_ffn);
            dense_[size_t(l)].forward(xn.data(), m, tmp, *pools_.all);
        }
        for (int64_t i = 0; i < m * d; ++i) x[size_t(i)] += tmp[i];
    }
    kv_.commit(m);
    if (logits_rows <= 0) return;
    StageClock clock(times_.lm_head);
    const int64_t first = m - logits_rows;
    for (int64_t i = first; i < m; ++i)
        rms_norm_f32(x.data() + i * d, output_norm_.data(), d, c.rms_eps, xn.data() + (i - first) * d);
    lm_head_.forward(xn.data(), logits_rows, logits, pools_.all);
}

}  // namespace mf
