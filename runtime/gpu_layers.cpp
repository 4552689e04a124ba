#include "runtime/gpu_layers.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <fmt/core.h>

#include "codegen/cuda/cuda_kernel_build.hpp"
#include "codegen/cuda/layer_kernels.hpp"
#include "codegen/rope_yarn.hpp"
#include "model/model.hpp"
#include "runtime/stage_times.hpp"
#include "runtime/thread_pool.hpp"
#include "runtime/weight_matrix.hpp"

namespace mf {
namespace {

constexpr int kPageSize = 64;

double now_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

MlaDecodeDesc mla_desc(const DeepSeekV3Config& c) {
    return MlaDecodeDesc{int(c.n_heads), int(c.kv_lora_rank), int(c.qk_rope), kPageSize, CudaDtype::bf16};
}

RouterTopkDesc router_desc(const DeepSeekV3Config& c) {
    return RouterTopkDesc{int(c.n_experts), int(c.n_groups), int(c.n_groups_used),
                          c.sigmoid_gating && c.experts_per_group() >= 2 ? 2 : 1, int(c.n_experts_used),
                          c.sigmoid_gating, c.norm_topk_prob};
}

DeviceBuffer device_buffer(uint64_t bytes) {
    return DeviceBuffer(size_t(std::max<uint64_t>(bytes, 256)));
}

}  // namespace

std::string GpuLayers::unsupported(const DeepSeekV3Config& c, int sm) {
    if (sm < 80) return fmt::format("sm_{} is older than sm_80 (the MLA kernels use bf16 mma.sync)", sm);
    const MlaDecodeDesc d = mla_desc(c);
    if (std::string why = mla_decode_unsupported(d, mla_decode_default_config(d, sm), sm); !why.empty())
        return fmt::format("the MLA decode kernel does not fit this model (kv_lora_rank {}, rope {}): {}",
                           c.kv_lora_rank, c.qk_rope, why);
    if (c.qk_rope % 2) return "the rope width is odd";
    if (c.n_layers > c.n_dense_layers) try {
            (void)router_topk_source(router_desc(c));
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
    return {};
}

GpuLayers::GpuLayers(const Model& file, const GpuLayersOptions& opt, ThreadPool& pool, StageTimes& times,
                     const std::function<void(int64_t)>& on_layer)
    : opt_(opt), c_(file.config()), times_(times) {
    const DeepSeekV3Config& c = c_;
    if (opt.layers < 1 || opt.layers > c.n_layers || (opt.lm_head && opt.layers != c.n_layers) || opt.max_rows < 1)
        throw std::logic_error("GpuLayers: bad placement");
    ctx_ = std::make_unique<CudaContext>(opt.device);
    const GpuInfo& gpu = ctx_->info();
    const int sm = gpu.cc_major * 10 + gpu.cc_minor;
    sms_ = gpu.sms;
    if (std::string why = unsupported(c, sm); !why.empty())
        throw std::runtime_error("GPU " + gpu.name + ": " + why + " (run with --cpu-only)");
    const CudaArch arch = CudaArch::for_device(gpu.cc_major, gpu.cc_minor);
    const auto build = [&](const CudaKernelSource& s) { return build_cuda_kernel(s, arch, opt.cubin_cache); };
    stream_ = std::make_unique<CudaStream>();
    handoff_ = std::make_unique<CudaEvent>();
    shared_done_ = std::make_unique<CudaEvent>();
    step_done_ = std::make_unique<CudaEvent>();
    blas_ = std::make_unique<CublasGemm>();
    const MlaDecodeDesc md = mla_desc(c);
    // Every decode here is launched right behind the cache append (enqueue_attention): where the kernel can, it
    // starts as the append's dependent with Q and its first tiles in flight (H200, session 9: 1K 10.1 / 7.8 us
    // instead of 11.2 / 9.2 with the default / cm16 hb32 bw1).
    const auto after_append = [&](const MlaDecodeConfig& cfg) { return mla_decode_after_append_config(md, cfg, sm); };
    attn_.push_back(std::make_unique<MlaAttention>(md, after_append(mla_decode_default_config(md, sm)), arch,
                                                   opt.cubin_cache));
    for (MlaDecodeChoice ch : opt.mla_decode_by_ctx) {
        if (!mla_decode_unsupported(md, ch.config, sm).empty() || !mla_split_policy_invalid(ch.split).empty())
            continue;  // a plan from another GPU: its choice does not build here, the default serves
        ch.config = after_append(ch.config);
        size_t i = 0;
        while (i < attn_.size() && !(attn_[i]->config() == ch.config)) ++i;
        if (i == attn_.size()) attn_.push_back(std::make_unique<MlaAttention>(md, ch.config, arch, opt.cubin_cache));
        decode_choice_.push_back({ch, i});
    }
    // many rows at once (prefill chunks): the kernel policy's large-batch config, built where launches can be that
    // large and it differs from the configs above
    if (opt.max_rows >= kMlaLargeBatchRows) {
        const MlaDecodeConfig large = mla_decode_large_batch_config(md, sm);
        while (large_batch_index_ < attn_.size() && !(attn_[large_batch_index_]->config() == large))
            ++large_batch_index_;
        if (large_batch_index_ == attn_.size())
            attn_.push_back(std::make_unique<MlaAttention>(md, large, arch, opt.cubin_cache));
    }
    const int D = int(c.hidden), lora = int(c.kv_lora_rank), row = int(c.kv_lora_rank + c.qk_rope);
    norm_f32_bf16_ = build(rms_norm_source(RmsNormDesc{D, CudaDtype::f32, CudaDtype::bf16}));
    norm_f32_f32_ = build(rms_norm_source(RmsNormDesc{D, CudaDtype::f32, CudaDtype::f32}));
    if (c.q_lora_rank > 0) norm_q_ = build(rms_norm_source(RmsNormDesc{int(c.q_lora_rank), CudaDtype::bf16, CudaDtype::bf16}));
    norm_kv_ = build(rms_norm_source(RmsNormDesc{lora, CudaDtype::bf16, CudaDtype::bf16}));
    rope_ = build(rope_source(RopeDesc{int(c.qk_rope), CudaDtype::bf16, true}));
    if (c.n_layers > c.n_dense_layers) router_ = build(router_topk_source(router_desc(c)));
    embed_ = build(elementwise_source(ElementwiseDesc{ElementwiseOp::embedding, CudaDtype::bf16, CudaDtype::f32}));
    silu_ = build(elementwise_source(ElementwiseDesc{ElementwiseOp::silu_mul, CudaDtype::bf16, CudaDtype::bf16}));
    add_ = build(elementwise_source(ElementwiseDesc{ElementwiseOp::add, CudaDtype::f32, CudaDtype::f32}));

    // Weights.
    const ModelWeights& w = file.weights();
    embedding_ = upload_bf16_matrix(w.token_embd, pool);
    int64_t inter = 0;
    for (int64_t l = 0; l < opt.layers; ++l) {
        w_.push_back(upload_gpu_layer(c, w.layers[size_t(l)], l, pool));
        inter = std::max(inter, w_.back().ffn_inter);
        if (on_layer) on_layer(l);
    }
    if (opt.lm_head) {
        const std::vector<float> norm = weight_vector(w.output_norm);
        output_norm_ = device_buffer(norm.size() * 4);
        output_norm_.upload(norm.data(), norm.size() * 4);
        lm_head_ = upload_bf16_matrix(w.output.empty() ? w.token_embd : w.output, pool);
    }

    // KV cache, one identity page table shared by every layer (one sequence).
    const int64_t pages = (opt.ctx + kPageSize - 1) / kPageSize;
    for (int64_t l = 0; l < opt.layers; ++l) kv_.push_back(device_buffer(uint64_t(pages) * kPageSize * row * 2));
    std::vector<int> table(static_cast<size_t>(pages));
    for (int64_t p = 0; p < pages; ++p) table[size_t(p)] = int(p);
    block_table_ = device_buffer(table.size() * 4);
    block_table_.upload(table.data(), table.size() * 4);
    const std::vector<float> inv = yarn_inv_freq(YarnParams{int(c.qk_rope), c.rope_theta, c.yarn ? c.yarn_factor : 1.0,
                                                            int(c.yarn_original_ctx), c.yarn_beta_fast,
                                                            c.yarn_beta_slow});
    cos_sin_scale_ = c.yarn ? float(yarn_mscale(c.yarn_factor, c.yarn_mscale) /
                                    yarn_mscale(c.yarn_factor, c.yarn_mscale_all_dim))
                            : 1.0f;
    inv_freq_ = device_buffer(inv.size() * 4);
    inv_freq_.upload(inv.data(), inv.size() * 4);
    size_t ws = 0;
    for (int64_t b = 1; b <= opt.max_rows; ++b) {  // every row count: rows x splits is not monotonic in rows
        const MlaAttention& a = *attn_[b >= kMlaLargeBatchRows ? large_batch_index_ : 0];
        ws = std::max(ws, a.workspace_bytes(int(b), a.num_splits(int(b), int(opt.ctx), sms_)));
    }
    for (const auto& [ch, i] : decode_choice_)
        ws = std::max(ws, attn_[i]->workspace_bytes(1, mla_decode_splits(md, ch.config, ch.split, 1, int(opt.ctx), sms_)));
    workspace_ = device_buffer(ws);

    // Activations.
    const uint64_t R = uint64_t(opt.max_rows), H = uint64_t(c.n_heads), E = uint64_t(c.n_experts),
                   K = uint64_t(c.n_experts_used);
    step_ = device_buffer(3 * R * 4);
    x_ = device_buffer(R * D * 4);
    xa_ = device_buffer(R * D * 2);
    qa_ = device_buffer(R * uint64_t(c.q_lora_rank) * 2);
    q_ = device_buffer(R * H * uint64_t(c.qk_head_dim()) * 2);
    kva_ = device_buffer(R * uint64_t(row) * 2);
    qabs_ = device_buffer(R * H * uint64_t(row) * 2);
    olat_ = device_buffer(R * H * uint64_t(lora) * 2);
    o_ = device_buffer(R * H * uint64_t(c.v_head) * 2);
    xn_ = device_buffer(R * D * 4);
    router_logits_ = device_buffer(R * E * 4);
    ids_ = device_buffer(R * K * 4);
    weights_ = device_buffer(R * K * 4);
    gu_ = device_buffer(R * 2 * uint64_t(inter) * 2);
    h_ = device_buffer(R * uint64_t(inter) * 2);
    routed_ = device_buffer(R * D * 4);
    if (opt.lm_head) logits_ = device_buffer(R * uint64_t(c.vocab_size) * 4);
    step_host_ = PinnedBuffer(3 * R * 4);
    xn_host_ = PinnedBuffer(R * D * 4);
    ids_host_ = PinnedBuffer(R * K * 4 + 4);
    weights_host_ = PinnedBuffer(R * K * 4 + 4);
    routed_host_ = PinnedBuffer(R * D * 4);
    if (opt.lm_head)
        logits_host_ = PinnedBuffer(R * uint64_t(c.vocab_size) * 4);
    else
        hidden_host_ = PinnedBuffer(R * D * 4);

    device_bytes_ = embedding_.bytes() + lm_head_.bytes() + workspace_.bytes();
    for (const auto& lw : w_) device_bytes_ += lw.bytes;
    for (const auto& k : kv_) device_bytes_ += k.bytes();
    for (const DeviceBuffer* b : {&x_, &xa_, &qa_, &q_, &kva_, &qabs_, &olat_, &o_, &xn_, &router_logits_, &gu_, &h_,
                                  &routed_, &logits_})
        device_bytes_ += b->bytes();
}

GpuLayers::~GpuLayers() {
    if (ctx_) ctx_->make_current();
    graphs_.clear();
}

std::string GpuLayers::describe() const {
    const GpuInfo& g = ctx_->info();
    return fmt::format("GPU {} (sm_{}{}, {} SMs): {} of {} layers{}, {:.2f} GiB, MLA {}{}", g.name, g.cc_major,
                       g.cc_minor, g.sms, opt_.layers, c_.n_layers, opt_.lm_head ? " + lm_head" : "",
                       double(device_bytes_) / double(1ull << 30), fields_name(attn_[0]->config()),
                       (decode_choice_.empty() ? std::string(" (defaults)")
                                               : fmt::format(" + {} tuned decode configs", decode_choice_.size())) +
                           (large_batch_index_ == 0 ? std::string()
                                                    : fmt::format(", {} rows or more: {}", kMlaLargeBatchRows,
                                                                  fields_name(attn_[large_batch_index_]->config()))));
}

void GpuLayers::begin(const int32_t* tokens, int64_t m, int64_t pos0, int64_t logits_rows) {
    if (m < 1 || m > opt_.max_rows || pos0 < 0 || pos0 + m > opt_.ctx || logits_rows < 0 || logits_rows > m)
        throw std::logic_error("GpuLayers::begin: step outside the buffers");
    ctx_->make_current();
    m_ = m, pos0_ = pos0, logits_rows_ = opt_.lm_head ? logits_rows : 0;
    next_layer_ = 0, segment_ = 0, pending_routed_ = false, done_ = false;
    const int64_t R = opt_.max_rows;
    int* s = step_host_.as<int>();
    for (int64_t i = 0; i < m; ++i) {
        s[i] = tokens[i];
        s[R + i] = int(pos0 + i);
        s[2 * R + i] = int(pos0 + i + 1);
    }
    if (m == 1) {  // decode: the split count of a power-of-two context bucket, so few graphs cover every length
        int64_t bucket = kPageSize;
        while (bucket < pos0 + 1) bucket *= 2;
        bucket = std::min(bucket, opt_.ctx);
        attn_index_ = 0;
        splits_ = attn_[0]->num_splits(1, int(bucket), sms_);
        for (const auto& [ch, i] : decode_choice_)
            if (bucket >= ch.ctx_min && bucket <= ch.ctx_max) {
                attn_index_ = i;
                splits_ = mla_decode_splits(attn_[i]->desc(), ch.config, ch.split, 1, int(bucket), sms_);
                break;
            }
    } else {
        attn_index_ = m >= kMlaLargeBatchRows ? large_batch_index_ : 0;
        splits_ = attn_[attn_index_]->num_splits(int(m), int(pos0 + m), sms_);
    }
}

GpuMoeHandoff GpuLayers::advance() {
    if (done_) throw std::logic_error("GpuLayers::advance after the end of the step");
    const double t_enter = now_seconds();
    if (pending_routed_) {
        // The GPU ran the shared expert while the CPU ran the routed experts; the rest of that time it idled.
        const CudaDriverApi& api = cuda_driver();
        const bool shared_done = api.event_query ? api.event_query(shared_done_->get()) == 0 : true;
        if (shared_done) {
            if (!api.event_query) shared_done_->synchronize();
            const double shared_s = double(shared_done_->elapsed_ms_since(*handoff_)) * 1e-3;
            times_.gpu_waits_cpu += std::max(0.0, t_enter - wake_time_ - shared_s);
        }
    }
    int64_t moe = -1;
    for (int64_t l = next_layer_; l < opt_.layers; ++l)
        if (c_.is_moe_layer(l)) {
            moe = l;
            break;
        }
    const int64_t seg = segment_++, first = next_layer_;
    const bool start = seg == 0, add = pending_routed_;
    run_graph_or_direct(seg, 0, [&] { enqueue_segment(first, moe, start, add); });
    pending_routed_ = false;
    if (moe < 0) {
        done_ = true;
        next_layer_ = opt_.layers;
        step_done_->record(stream_->get());
        return {};
    }
    handoff_->record(stream_->get());
    if (w_[size_t(moe)].ffn_inter > 0) run_graph_or_direct(seg, 1, [&] { enqueue_shared(moe); });
    shared_done_->record(stream_->get());
    const double t_wait = now_seconds();
    handoff_->synchronize();
    wake_time_ = now_seconds();
    times_.cpu_waits_gpu += wake_time_ - t_wait;
    next_layer_ = moe + 1;
    pending_routed_ = true;
    return {moe, xn_host_.as<float>(), ids_host_.as<int32_t>(), weights_host_.as<float>(), routed_host_.as<float>()};
}

void GpuLayers::finish(float* logits, float* hidden) {
    if (!done_) throw std::logic_error("GpuLayers::finish before the last advance");
    const double t_wait = now_seconds();
    step_done_->synchronize();
    times_.cpu_waits_gpu += now_seconds() - t_wait;
    if (opt_.lm_head) {
        if (logits_rows_ > 0 && logits)
            std::copy_n(logits_host_.as<float>(), logits_rows_ * c_.vocab_size, logits);
    } else if (hidden) {
        std::copy_n(hidden_host_.as<float>(), m_ * c_.hidden, hidden);
    }
}

void GpuLayers::run_graph_or_direct(int64_t segment, int part, const std::function<void()>& enqueue) {
    if (!opt_.graphs || m_ != 1) {
        enqueue();
        return;
    }
    auto& g = graphs_[{segment, part, splits_, logits_rows_, attn_index_}];
    if (!g) {
        auto graph = std::make_unique<CudaGraph>();
        graph->begin_capture(stream_->get());
        try {
            enqueue();
        } catch (...) {
            try {
                graph->end_capture(stream_->get());
            } catch (...) {
            }
            throw;
        }
        graph->end_capture(stream_->get());
        g = std::move(graph);
    }
    g->launch(stream_->get());
}

void GpuLayers::gemm(int64_t m, int64_t n, int64_t k, const void* a, int64_t lda, const void* b, void* c, int64_t ldc,
                     bool f32_out, float beta) {
    GemmShape s;
    s.m = int(m), s.n = int(n), s.k = int(k);
    s.lda = lda, s.ldc = ldc;
    s.c = f32_out ? CudaDtype::f32 : CudaDtype::bf16;
    blas_->run(s, a, b, c, stream_->get(), 1.0f, beta);
}

void GpuLayers::enqueue_norm(const DeviceBuffer& weight, const void* src, void* dst, bool f32_dst, int64_t rows) {
    const int D = int(c_.hidden);
    (f32_dst ? norm_f32_f32_ : norm_f32_bf16_)
        ->launch(rms_norm_grid(int(rows)), RmsNormParams{src, dst, weight.as<float>(), int(rows), D, D, c_.rms_eps},
                 stream_->get());
}

void GpuLayers::enqueue_segment(int64_t first, int64_t moe_layer, bool start, bool add_routed) {
    const CudaDriverApi& api = cuda_driver();
    const CuStream s = stream_->get();
    const int64_t R = opt_.max_rows, D = c_.hidden, m = m_;
    if (start) {
        cu_check(api.memcpy_htod_async(step_.ptr(), step_host_.data(), size_t(3 * R * 4), s), "cuMemcpyHtoDAsync");
        embed_->launch(elementwise_grid(m * D),
                       EmbeddingParams{embedding_.as<void>(), step_.as<int>(), x_.as<void>(), int(m), int(D),
                                       int(c_.vocab_size)},
                       s);
    }
    if (add_routed) {
        cu_check(api.memcpy_htod_async(routed_.ptr(), routed_host_.data(), size_t(m * D * 4), s), "cuMemcpyHtoDAsync");
        add_->launch(elementwise_grid(m * D), ElementwiseParams{routed_.as<void>(), x_.as<void>(), m * D}, s);
    }
    const int64_t last = moe_layer >= 0 ? moe_layer : opt_.layers;
    for (int64_t l = first; l < last; ++l) {  // dense layers: attention and FFN, all here
        enqueue_attention(l);
        enqueue_norm(w_[size_t(l)].ffn_norm, x_.as<void>(), xa_.as<void>(), false, m);
        enqueue_ffn(w_[size_t(l)]);
    }
    if (moe_layer >= 0) {
        const GpuLayerWeights& w = w_[size_t(moe_layer)];
        const int64_t E = c_.n_experts, K = c_.n_experts_used;
        enqueue_attention(moe_layer);
        enqueue_norm(w.ffn_norm, x_.as<void>(), xn_.as<void>(), true, m);
        if (w.ffn_inter > 0) enqueue_norm(w.ffn_norm, x_.as<void>(), xa_.as<void>(), false, m);
        GemmShape g;
        g.m = int(m), g.n = int(E), g.k = int(D);
        g.a = g.b = g.c = CudaDtype::f32;
        blas_->run(g, xn_.as<void>(), w.router.as<void>(), router_logits_.as<void>(), s);
        router_->launch(router_topk_grid(int(m)),
                        RouterTopkParams{router_logits_.as<float>(), w.router_bias.bytes() ? w.router_bias.as<float>() : nullptr,
                                         ids_.as<int>(), weights_.as<float>(), int(m), c_.routed_scaling},
                        s);
        cu_check(api.memcpy_dtoh_async(xn_host_.data(), xn_.ptr(), size_t(m * D * 4), s), "cuMemcpyDtoHAsync");
        cu_check(api.memcpy_dtoh_async(ids_host_.data(), ids_.ptr(), size_t(m * K * 4), s), "cuMemcpyDtoHAsync");
        cu_check(api.memcpy_dtoh_async(weights_host_.data(), weights_.ptr(), size_t(m * K * 4), s), "cuMemcpyDtoHAsync");
        return;
    }
    if (opt_.lm_head) {
        const int64_t rows = logits_rows_, V = c_.vocab_size;
        if (rows == 0) return;
        enqueue_norm(output_norm_, x_.as<float>() + (m - rows) * D, xa_.as<void>(), false, rows);
        gemm(rows, V, D, xa_.as<void>(), D, lm_head_.as<void>(), logits_.as<void>(), V, true, 0.0f);
        cu_check(api.memcpy_dtoh_async(logits_host_.data(), logits_.ptr(), size_t(rows * V * 4), s), "cuMemcpyDtoHAsync");
    } else {
        cu_check(api.memcpy_dtoh_async(hidden_host_.data(), x_.ptr(), size_t(m * D * 4), s), "cuMemcpyDtoHAsync");
    }
}

void GpuLayers::enqueue_shared(int64_t layer) {
    enqueue_ffn(w_[size_t(layer)]);
}

void GpuLayers::enqueue_ffn(const GpuLayerWeights& w) {
    const int64_t m = m_, D = c_.hidden, I = w.ffn_inter;
    gemm(m, 2 * I, D, xa_.as<void>(), D, w.gate_up.as<void>(), gu_.as<void>(), 2 * I, false, 0.0f);
    silu_->launch(elementwise_grid(m * I),
                  SiluMulParams{gu_.as<void>(), gu_.as<uint16_t>() + I, h_.as<void>(), int(m), int(I), int(2 * I),
                                int(2 * I), int(I)},
                  stream_->get());
    gemm(m, D, I, h_.as<void>(), I, w.down.as<void>(), x_.as<void>(), D, true, 1.0f);  // x += down(...)
}

void GpuLayers::enqueue_attention(int64_t l) {
    const GpuLayerWeights& w = w_[size_t(l)];
    const CuStream s = stream_->get();
    const int64_t m = m_, R = opt_.max_rows, D = c_.hidden, H = c_.n_heads, qk = c_.qk_head_dim(),
                  nope = c_.qk_nope, lora = c_.kv_lora_rank, rope = c_.qk_rope, row = lora + rope, vh = c_.v_head,
                  ql = c_.q_lora_rank;
    const int* positions = step_.as<int>() + R;
    const int* seq_lens = step_.as<int>() + 2 * R;
    enqueue_norm(w.attn_norm, x_.as<void>(), xa_.as<void>(), false, m);
    if (ql > 0) {
        gemm(m, ql, D, xa_.as<void>(), D, w.q_a.as<void>(), qa_.as<void>(), ql, false, 0.0f);
        norm_q_->launch(rms_norm_grid(int(m)),
                        RmsNormParams{qa_.as<void>(), qa_.as<void>(), w.q_a_norm.as<float>(), int(m), int(ql), int(ql),
                                      c_.rms_eps},
                        s);
        gemm(m, H * qk, ql, qa_.as<void>(), ql, w.q_b.as<void>(), q_.as<void>(), H * qk, false, 0.0f);
    } else {
        gemm(m, H * qk, D, xa_.as<void>(), D, w.q_a.as<void>(), q_.as<void>(), H * qk, false, 0.0f);
    }
    gemm(m, row, D, xa_.as<void>(), D, w.kv_a.as<void>(), kva_.as<void>(), row, false, 0.0f);
    norm_kv_->launch(rms_norm_grid(int(m)),
                     RmsNormParams{kva_.as<void>(), kva_.as<void>(), w.kv_a_norm.as<float>(), int(m), int(row), int(row),
                                   c_.rms_eps},
                     s);
    const RopeDesc rd{int(rope), CudaDtype::bf16, true};
    rope_->launch(rope_grid(rd, int(m), 1),
                  RopeParams{kva_.as<uint16_t>() + lora, kva_.as<uint16_t>() + lora, positions, inv_freq_.as<float>(), int(m),
                             1, int(row), 0, int(row), 0, cos_sin_scale_},
                  s);
    rope_->launch(rope_grid(rd, int(m), int(H)),
                  RopeParams{q_.as<uint16_t>() + nope, qabs_.as<uint16_t>() + lora, positions, inv_freq_.as<float>(), int(m),
                             int(H), int(H * qk), int(qk), int(H * row), int(row), cos_sin_scale_},
                  s);
    // q_lat[h] = q_nope[h] W_UK[h] into the first kv_lora values of each head's absorbed query.
    GemmShape uk;
    uk.m = int(m), uk.n = int(lora), uk.k = int(nope);
    uk.lda = H * qk, uk.ldb = nope, uk.ldc = H * row;
    uk.batch = int(H), uk.stride_a = qk, uk.stride_b = lora * nope, uk.stride_c = row;
    blas_->run(uk, q_.as<void>(), w.uk.as<void>(), qabs_.as<void>(), s);
    const MlaAttention& attn = *attn_[attn_index_];
    attn.append(kva_.as<unsigned short>(), int(row), int(m), positions, block_table_.as<int>(), 0,
                  kv_[size_t(l)].as<unsigned short>(), s);
    attn.decode(qabs_.as<unsigned short>(), kv_[size_t(l)].as<unsigned short>(), block_table_.as<int>(), 0, seq_lens,
                  int(m), splits_, c_.attention_scale(), workspace_, olat_.as<unsigned short>(), s);
    // o[h] = o_lat[h] W_UV[h]^T, then the output projection accumulates into the residual stream.
    GemmShape uv;
    uv.m = int(m), uv.n = int(vh), uv.k = int(lora);
    uv.lda = H * lora, uv.ldb = lora, uv.ldc = H * vh;
    uv.batch = int(H), uv.stride_a = lora, uv.stride_b = vh * lora, uv.stride_c = vh;
    blas_->run(uv, olat_.as<void>(), w.uv.as<void>(), o_.as<void>(), s);
    gemm(m, D, H * vh, o_.as<void>(), H * vh, w.o.as<void>(), x_.as<void>(), D, true, 1.0f);
}

}  // namespace mf
