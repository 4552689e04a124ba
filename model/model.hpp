// Opening a DeepSeek-V3/R1 model from whatever the user has: a .gguf file, any part of a split GGUF
// (name-00001-of-00009.gguf: all parts open as one model) or a Hugging Face checkpoint directory. The result
// holds the mappings, the Config and the weight views; it is what the runtime and the reference forward use.
#pragma once
#include <filesystem>
#include <memory>
#include <vector>

#include "model/deepseek_v3_config.hpp"
#include "model/deepseek_v3_weights.hpp"
#include "model/gguf_file.hpp"
#include "model/hf_checkpoint.hpp"

namespace mf {

enum class ModelFormat { gguf, safetensors };

class Model {
  public:
    // Throws std::runtime_error naming the file and what is wrong (format, config, a missing or misshapen
    // tensor).
    static std::unique_ptr<Model> open(const std::filesystem::path& path);

    ModelFormat format() const { return format_; }
    const std::filesystem::path& path() const { return path_; }
    const DeepSeekV3Config& config() const { return config_; }
    const ModelWeights& weights() const { return weights_; }
    // GGUF: the parts in order (one for an unsplit file); metadata and tokenizer keys are in parts()[0].
    const std::vector<std::unique_ptr<GgufFile>>& gguf_parts() const { return gguf_; }
    const HfCheckpoint* hf() const { return hf_.get(); }
    // GGUF with attn_k_b/attn_v_b (llama.cpp's MLA layout) rather than attn_kv_b.
    bool mla_layout() const { return !weights_.layers.empty() && weights_.layers[0].kv_b.empty(); }

  private:
    Model() = default;
    void bind_gguf();
    void bind_hf();

    ModelFormat format_ = ModelFormat::gguf;
    std::filesystem::path path_;
    DeepSeekV3Config config_;
    ModelWeights weights_;
    std::vector<std::unique_ptr<GgufFile>> gguf_;
    std::unique_ptr<HfCheckpoint> hf_;
};

// The paths of every part of a split GGUF given one of them; {path} if the name has no -NNNNN-of-NNNNN part.
std::vector<std::filesystem::path> gguf_split_paths(const std::filesystem::path& any_part);
// "dir/name-00002-of-00009.gguf" for part 2 (1-based) of 9.
std::filesystem::path gguf_split_path(const std::filesystem::path& prefix, int part, int count);

}  // namespace mf
