// The DeepSeek-V3 model, placed once at load: the routed experts always on the CPU (repacked into the JIT kernels'
// layouts, a pinned worker per physical core, NUMA-placed), and everything else either on the CPU too or, for the
// first gpu_layers layers (RuntimeOptions), on the GPU (GpuLayers: embedding, MLA attention over a bf16 paged
// cache, dense FFN, shared expert, router, and lm_head when every layer is there). The same file runs either way.
// A forward pass over a chunk of tokens appends to the KV cache. Reads top to bottom like the model: embedding,
// then per layer MLA attention and the dense FFN or the MoE block, then the final norm and lm_head.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/kernel_cache.hpp"
#include "model/model.hpp"
#include "runtime/ffn_block.hpp"
#include "runtime/kv_cache.hpp"
#include "runtime/cpu_mla_attention.hpp"
#include "runtime/moe_block.hpp"
#include "runtime/rope_yarn.hpp"
#include "runtime/runtime_options.hpp"
#include "runtime/stage_times.hpp"
#include "runtime/thread_pool.hpp"

namespace mf {

// done/total in bytes of the model file's tensors, and what is being packed.
using LoadProgress = std::function<void(uint64_t done, uint64_t total, std::string_view stage)>;

class GpuLayers;

class ModelRunner {
public:
    // Opens `path` (GGUF, split GGUF or HF directory) and repacks its weights. Errors (missing file, another
    // architecture, an unsupported tensor type, not enough memory) throw std::runtime_error with one clear line.
    static std::unique_ptr<ModelRunner> load(const std::filesystem::path& path, const RuntimeOptions& opt,
                                          const LoadProgress& progress = {});
    ModelRunner(std::unique_ptr<Model> file, const RuntimeOptions& opt, const LoadProgress& progress);
    ~ModelRunner();

    const DeepSeekV3Config& config() const { return file_->config(); }
    const Model& file() const { return *file_; }
    const RuntimeOptions& options() const { return opt_; }
    int threads() const { return pools_.all->size(); }
    int numa_nodes() const { return int(pools_.nodes.size()); }
    int gpu_layers() const { return gpu_layers_; }  // layers [0, gpu_layers()) run on the GPU
    int64_t vocab() const { return config().vocab_size; }

    // The context: positions [0, n_past()) are in the cache.
    int64_t n_past() const { return kv_.size(); }
    int64_t capacity() const { return kv_.capacity(); }
    void truncate(int64_t n) { kv_.truncate(n); }
    void reset() { kv_.clear(); }

    // Runs `tokens` at positions [n_past(), n_past() + n) in chunks of options().prefill_chunk and appends them to
    // the cache. If logits_rows > 0, writes the logits of the last logits_rows tokens ([logits_rows][vocab]).
    // Throws std::runtime_error when the context would overflow the cache.
    void forward(std::span<const int32_t> tokens, float* logits, int64_t logits_rows);

    StageTimes& times() { return times_; }
    // Packed bytes per routed expert (all experts of a layer have one shape), for bandwidth figures.
    size_t routed_expert_bytes() const;
    size_t packed_bytes() const { return packed_bytes_; }
    double load_seconds() const { return load_seconds_; }
    // One line: threads, NUMA nodes, formats, packed size, placement.
    std::string describe() const;

private:
    void forward_chunk(const int32_t* tokens, int64_t m, float* logits, int64_t logits_rows);

    std::unique_ptr<Model> file_;
    RuntimeOptions opt_;
    ComputeType dense_type_, expert_type_;
    std::unique_ptr<ThreadPool> all_pool_;
    std::vector<std::unique_ptr<ThreadPool>> node_pools_;
    WorkerPools pools_;
    KernelCache kernels_;
    ExpertDrivers drivers_;
    std::shared_ptr<ExpertFfnSet> dense_driver_;
    RopeTable rope_;
    LatentKvCache kv_;
    std::vector<CpuMlaAttention> attn_;
    std::vector<std::vector<float>> ffn_norm_;
    std::vector<FfnBlock> dense_;   // per layer (empty block for MoE layers)
    std::vector<MoeBlock> moe_;     // per layer (empty block for dense layers)
    std::vector<float> output_norm_;
    Linear lm_head_;
    StageTimes times_;
    int gpu_layers_ = 0;
    std::string placement_;          // where the layers run, and why not on the GPU where it is absent
    std::unique_ptr<GpuLayers> gpu_;
    size_t packed_bytes_ = 0;
    double load_seconds_ = 0;
};

}  // namespace mf
