// `moeforge bench attention`: one MLA attention layer on the CPU (CpuMlaAttention) at DeepSeek-V3's widths, or a
// preset's, with seeded random weights and no model file: a prefill chunk from position 0, then single-token decode
// steps at each context length (the cache rows before it filled with random latent rows). Reports ms per token and
// the projection weights' bytes per second (what bounds decode).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mf {

struct AttentionBenchOptions {
    std::string preset = "v3-slice-1";  // widths of a mkmodel preset (v3-slice-N: DeepSeek-V3's)
    std::string dense = "bf16";         // compute format of the projections: bf16 or int8
    int threads = 0;                    // 0: one per physical core
    int64_t prefill = 128;              // tokens of the prefill chunk (0: none)
    std::vector<int64_t> ctx{128, 1024, 4096};
    int steps = 16;                     // decode steps per context; the best is reported
};

struct AttentionBenchRow {
    std::string phase;   // "prefill", "decode" or "projections" (q_a, q_b, kv_a, o alone at m = 1)
    int64_t tokens = 0;  // prefill: chunk size; decode: 1
    int64_t ctx = 0;     // positions attended by the (last) token
    double ms_per_token = 0;
    double weight_gb_s = 0;  // packed weight bytes / time per step
};

struct AttentionBenchResult {
    std::string header;  // widths, format, threads, weight bytes
    std::vector<AttentionBenchRow> rows;
};

// Throws std::runtime_error for an unknown preset or format, or more threads than this process may use.
AttentionBenchResult run_attention_bench(const AttentionBenchOptions& o);
std::string render_attention_bench(const AttentionBenchResult& r);

}  // namespace mf
