// The GPU side of the hybrid executor: for the layers placed on the GPU it runs the embedding, MLA attention over
// a paged bf16 latent KV cache, the dense FFN, the shared expert, the router and (when every layer is here) the
// final norm and lm_head; the CPU runs the routed experts in between. A forward step is a chain of segments, each
// ending where the CPU must take over:
//
//   segment s (stream order): [add the CPU's routed output of the previous MoE layer] -> layers ... -> attention
//   of MoE layer l -> ffn norm -> router top-k -> copy xn, ids, weights to pinned memory   | event `handoff`
//   then the shared expert of l (adds into the residual) while the CPU runs l's routed experts | event `shared`
//
// Decode steps (one row) replay each segment as a CUDA graph captured on first use (keyed by segment, split count
// and logits rows): per-step values (token id, position, context length) live in device memory refreshed by the
// graph's first copy, so a graph stays valid as the context grows. Prefill chunks launch the same work directly.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "codegen/cuda/cublas_gemm.hpp"
#include "codegen/cuda/cuda_context.hpp"
#include "codegen/cuda/cuda_memory.hpp"
#include "codegen/cuda/cuda_stream.hpp"
#include "codegen/cuda/mla_attention.hpp"
#include "runtime/gpu_layer_weights.hpp"
#include "runtime/runtime_options.hpp"

namespace mf {

class Model;
class ThreadPool;
struct StageTimes;

struct GpuLayersOptions {
    int device = 0;
    int layers = 0;          // layers [0, layers) run on the GPU
    bool lm_head = true;     // final norm and lm_head too (only when every layer is on the GPU)
    int64_t ctx = 4096;      // KV cache positions
    int64_t max_rows = 256;  // rows of one forward step (the prefill chunk)
    bool graphs = true;      // replay decode steps as CUDA graphs
    std::filesystem::path cubin_cache;
    std::vector<MlaDecodeChoice> mla_decode_by_ctx;  // tuned decode kernels per context range (batch 1)
};

// An MoE layer's hand-off to the CPU, in pinned host memory valid until the next advance().
struct GpuMoeHandoff {
    int64_t layer = -1;              // -1: the GPU's part of the step is done
    const float* xn = nullptr;       // [m][hidden] rows after the layer's ffn norm
    const int32_t* ids = nullptr;    // [m][top_k] routed experts
    const float* weights = nullptr;  // [m][top_k] their weights (normalised, scaled)
    float* routed = nullptr;         // [m][hidden]: the CPU writes the routed experts' weighted sum here
};

class GpuLayers {
public:
    // Checks that the model fits the GPU kernels (else std::runtime_error saying why), compiles them (NVRTC, CUBIN
    // cache), uploads the weights. on_layer(l) is called after layer l is uploaded (progress).
    GpuLayers(const Model& file, const GpuLayersOptions& opt, ThreadPool& pool, StageTimes& times,
              const std::function<void(int64_t)>& on_layer);
    ~GpuLayers();
    GpuLayers(const GpuLayers&) = delete;
    GpuLayers& operator=(const GpuLayers&) = delete;

    // Why this model cannot run on the GPU kernels (empty when it can), before anything is allocated.
    static std::string unsupported(const DeepSeekV3Config& c, int sm);

    int layers() const { return opt_.layers; }
    bool has_lm_head() const { return opt_.lm_head; }
    uint64_t device_bytes() const { return device_bytes_; }
    std::string describe() const;

    // Starts a step over `m` rows at positions [pos0, pos0 + m): the logits of the last logits_rows rows are wanted.
    void begin(const int32_t* tokens, int64_t m, int64_t pos0, int64_t logits_rows);
    // Runs the GPU work up to the next MoE layer's hand-off and waits for its inputs; layer -1 at the end.
    GpuMoeHandoff advance();
    // Waits for the step's end; copies out the logits ([logits_rows][vocab], when lm_head is here) or the hidden
    // rows ([m][hidden], when the CPU runs the remaining layers).
    void finish(float* logits, float* hidden);

private:
    void enqueue_segment(int64_t first, int64_t moe_layer, bool start, bool add_routed);
    void enqueue_shared(int64_t layer);
    void enqueue_attention(int64_t l);
    void enqueue_ffn(const GpuLayerWeights& w);
    void enqueue_norm(const DeviceBuffer& weight, const void* src, void* dst, bool f32_dst, int64_t rows);
    void run_graph_or_direct(int64_t segment, int part, const std::function<void()>& enqueue);
    void gemm(int64_t m, int64_t n, int64_t k, const void* a, int64_t lda, const void* b, void* c, int64_t ldc,
              bool f32_out, float beta);

    GpuLayersOptions opt_;
    DeepSeekV3Config c_;
    StageTimes& times_;
    std::unique_ptr<CudaContext> ctx_;
    std::unique_ptr<CudaStream> stream_;
    std::unique_ptr<CublasGemm> blas_;
    // [0]: the default config (launches of fewer than kMlaLargeBatchRows rows without a plan choice); then the
    // plan's decode choices and the large-batch config (at large_batch_index_, 0 where it is the default)
    std::vector<std::unique_ptr<MlaAttention>> attn_;
    size_t large_batch_index_ = 0;  // attn_ of launches of kMlaLargeBatchRows rows or more
    std::vector<std::pair<MlaDecodeChoice, size_t>> decode_choice_;  // with its index in attn_
    std::unique_ptr<CudaKernel> norm_f32_bf16_, norm_f32_f32_, norm_q_, norm_kv_, rope_, router_, embed_, silu_, add_;
    std::vector<GpuLayerWeights> w_;
    DeviceBuffer embedding_, lm_head_, output_norm_;
    std::vector<DeviceBuffer> kv_;  // per layer: [pages][page][latent + rope] bf16
    DeviceBuffer block_table_, inv_freq_, workspace_;
    // Activations, [max_rows][...].
    DeviceBuffer step_;  // ids | positions | seq_lens, int32 [3][max_rows]
    DeviceBuffer x_, xa_, qa_, q_, kva_, qabs_, olat_, o_, xn_, router_logits_, ids_, weights_, gu_, h_, routed_, logits_;
    PinnedBuffer step_host_, xn_host_, ids_host_, weights_host_, routed_host_, logits_host_, hidden_host_;
    std::unique_ptr<CudaEvent> handoff_, shared_done_, step_done_;  // made once the context is current
    std::map<std::tuple<int64_t, int, int, int64_t, size_t>, std::unique_ptr<CudaGraph>> graphs_;
    int sms_ = 0;
    float cos_sin_scale_ = 1.0f;
    uint64_t device_bytes_ = 0;

    // The step in flight.
    int64_t m_ = 0, pos0_ = 0, logits_rows_ = 0, next_layer_ = 0, segment_ = 0;
    int splits_ = 1;
    size_t attn_index_ = 0;
    bool pending_routed_ = false, done_ = false;
    double wake_time_ = 0;  // when the CPU got the last hand-off (steady seconds)
};

}  // namespace mf
