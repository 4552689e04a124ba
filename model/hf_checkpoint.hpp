// A Hugging Face checkpoint directory: config.json plus model.safetensors.index.json and its shards (or a
// single model.safetensors), all memory-mapped. Tensors are found by name across shards.
#pragma once
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/safetensors_file.hpp"

namespace mf {

class HfCheckpoint {
  public:
    // Throws std::runtime_error naming the file and what is wrong (missing config/index/shard, a tensor the
    // index names but its shard lacks, bad JSON).
    explicit HfCheckpoint(const std::filesystem::path& dir);

    const std::filesystem::path& dir() const { return dir_; }
    const nlohmann::json& config() const { return config_; }
    const SafetensorsTensor* find(const std::string& name) const;
    size_t tensor_count() const { return index_.size(); }
    const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }

  private:
    std::filesystem::path dir_;
    nlohmann::json config_;
    std::vector<std::unique_ptr<SafetensorsFile>> shards_;
    std::unordered_map<std::string, const SafetensorsTensor*> index_;
};

// Does `dir` look like an HF checkpoint (a directory with config.json)?
bool is_hf_checkpoint_dir(const std::filesystem::path& dir);

}  // namespace mf
