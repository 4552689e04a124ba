// DeepSeek-V3-architecture models with seeded random weights, for tests and benchmarks (`moeforge mkmodel`).
//
// Scaling, so activations stay O(1) through every layer: the token embedding has unit variance; RMSNorm
// weights are 1 +- 0.1; every projection feeding the residual stream's readers (q_a, kv_a, gate, up, router,
// lm_head) has std 1/sqrt(fan_in), so its outputs have about unit variance after an RMSNorm; q_b and kv_b
// likewise (1/sqrt(rank)); the projections that write into the residual stream (o, down, shared down) get a
// further 1/sqrt(2 * n_layers), as GPT-2 does, so n_layers of additions grow the residual RMS by a bounded
// amount. All values are uniform in +-sqrt(3)*std, from a counter-based generator seeded by (seed, tensor
// name, row): the same seed gives the same model in both formats, whatever the thread count.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "model/deepseek_v3_config.hpp"
#include "model/ggml_type.hpp"
#include "model/tokenizer_vocab.hpp"

namespace mf {

// "tiny", "small" or "v3-slice-N"; throws std::invalid_argument listing the presets for anything else.
DeepSeekV3Config preset_config(const std::string& preset);
std::vector<std::string> preset_names();  // for --help

struct SyntheticModelOptions {
    DeepSeekV3Config config;
    std::string name = "moeforge-synthetic";
    uint64_t seed = 1;
    GgmlType wtype = GgmlType::bf16;  // dense FFN, routed and shared experts; rows that do not fit its block
                                      // size fall back to q8_0, then bf16
    bool gguf = true;
    bool safetensors = true;
    bool gguf_mla_layout = true;        // attn_k_b/attn_v_b (else the legacy attn_kv_b)
    uint64_t gguf_split_bytes = 0;      // 0: one .gguf; else parts of about this much tensor data
    uint64_t shard_bytes = 5ull << 30;  // safetensors shard size
    TokenizerVocab vocab;               // written as tokenizer.ggml.* (padded to vocab_size)
    std::filesystem::path
        tokenizer_json;  // copied into the HF directory (with tokenizer_config.json beside it)
    std::function<void(uint64_t done, uint64_t total, std::string_view stage)> progress;
};

struct SyntheticModelResult {
    std::filesystem::path gguf;    // the .gguf (or the first part)
    std::filesystem::path hf_dir;  // the HF checkpoint directory
    uint64_t gguf_bytes = 0, hf_bytes = 0;
    std::vector<std::string> notes;  // e.g. tensors kept in a fallback type
};

// Writes `out_dir`/NAME.gguf (or NAME-0000i-of-0000n.gguf) and/or `out_dir`/NAME-hf/, streaming (memory stays
// bounded by one tensor's rows in flight). The weights of both are identical after dequantisation.
SyntheticModelResult write_synthetic_model(const SyntheticModelOptions& o,
                                           const std::filesystem::path& out_dir);

// Bytes of the model's tensors in GGUF at `wtype` (for size estimates before writing).
uint64_t synthetic_model_gguf_bytes(const DeepSeekV3Config& c, GgmlType wtype);

}  // namespace mf
