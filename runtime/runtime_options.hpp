// What the CPU runtime runs with: the documented defaults below, overridden by the tuned plan (runtime/plan.hpp,
// applied by the commands: the fused expert FFN config and the worker count) and by the command line. run, bench
// and perplexity say which.
//
//   threads        0 = one pinned worker per physical core (hwloc), grouped by NUMA node
//   ctx            4096 positions of latent KV cache
//   prefill_chunk  0 = auto: tokens per forward step while prefilling (each chunk appends to the cache): 2048
//                  with GPU layers (with 256 experts, top-8, a 256-token chunk gives each expert ~8 tokens and
//                  re-reads every expert's weights per chunk; 2048 gives ~64 and the AMX path: v3-slice-6 hybrid
//                  prefill 874 -> 1409 tok/s) unless its larger GPU activations would leave a layer on the CPU,
//                  else 256 (CPU-only, the CPU attention and dense layers set the pace, and 2048 measured
//                  slightly slower)
//   dense          "auto" = bf16: attention projections, dense FFN, shared expert and lm_head
//   experts        "auto" = int4 per group of 32 (exact) for Q4_K experts, else int8 per channel, both through
//                  the fused JIT expert FFN (AMX / AVX-512 VNNI); "bf16" runs them through the bf16 projections.
//                  Other block formats (Q5_K, Q6_K, Q8_0, F8) are dequantised and repacked.
//   expert_ffn     the kernels' default ExpertFfnConfig; a tuned plan sets one per range of tokens per expert
//                  (expert_ffn_by_m: decode, small batches and prefill chunks each get their own)
//   gpu_layers     0 = CPU only (the library's default); -1 = hybrid when a CUDA GPU is usable: every layer's
//                  attention, dense FFN, shared expert and router on the GPU as far as its memory holds them (the
//                  commands' default); N = the first N layers (an error without a GPU). Routed experts always run
//                  on the CPU.
#pragma once
#include <cstdint>
#include <string>

#include "codegen/cuda/mla_kernels.hpp"
#include "codegen/cuda/mla_split_policy.hpp"
#include "codegen/x64/expert_ffn_desc.hpp"
#include "runtime/expert_ffn_set.hpp"
#include "runtime/linear.hpp"

namespace mf {

class Model;

// The plan's MLA decode kernel for decode steps whose context lies in [ctx_min, ctx_max] (batch 1).
struct MlaDecodeChoice {
    int ctx_min = 1, ctx_max = 1 << 30;
    MlaDecodeConfig config;
    MlaSplitPolicy split;
};

struct RuntimeOptions {
    int threads = 0;
    int64_t ctx = 4096;
    int64_t prefill_chunk = 0;  // 0: auto, resolved by ModelRunner (options() holds the chunk in use)
    static constexpr int64_t kPrefillChunkGpu = 2048, kPrefillChunkCpu = 256;
    std::string dense = "auto";    // auto | bf16 | int8
    std::string experts = "auto";  // auto | int8 | int4 | bf16
    ExpertFfnConfig expert_ffn{};                // for token counts no entry of expert_ffn_by_m holds
    std::vector<ExpertFfnChoice> expert_ffn_by_m;  // the plan's config per range of tokens per expert
    int gpu_layers = 0;
    int gpu_device = 0;            // CUDA device ordinal
    std::string cubin_cache;       // folder of compiled GPU kernels ("": <tmp>/moeforge-cubins)
    std::vector<MlaDecodeChoice> mla_decode_by_ctx;  // tuned decode kernels (else the default config)
    bool progress = true;          // repacking progress callbacks are made (the caller draws the bar)
    std::string plan_note = "no tuned plan: documented defaults";  // where expert_ffn/threads came from
    std::string plan_file;         // --plan: an explicit plan file (else the cache dir's, else defaults)

    ComputeType dense_type() const;   // throws std::invalid_argument naming --dense
    // "auto": int4 where the file's routed experts are q4_K (packed exactly, no fp32 trip), else int8.
    // Throws std::invalid_argument naming --experts.
    ComputeType expert_type(const Model& m) const;
    // One line: "plan: none (defaults: ...)" for the start-up banner.
    std::string describe() const;
};

}  // namespace mf
