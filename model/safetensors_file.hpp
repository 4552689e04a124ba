// One .safetensors file, memory-mapped: an 8-byte header length, a JSON header naming each tensor's dtype,
// shape and [begin, end) data offsets, then the data. Every offset, size and shape is checked against the
// file.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/ggml_type.hpp"
#include "model/mapped_file.hpp"

namespace mf {

struct SafetensorsTensor {
    std::string name;
    std::string dtype;            // as written: "BF16", "F32", "F8_E4M3", ...
    std::vector<uint64_t> shape;  // row-major, outermost first
    const uint8_t* data = nullptr;
    uint64_t n_bytes = 0;
};

// The moeforge element type of a safetensors dtype, if it is one moeforge computes with.
std::optional<GgmlType> safetensors_dtype_to_ggml(const std::string& dtype);
// Bytes per element of any safetensors dtype; nullopt for an unknown one.
std::optional<uint32_t> safetensors_dtype_size(const std::string& dtype);

class SafetensorsFile {
  public:
    explicit SafetensorsFile(const std::filesystem::path& path);
    const std::filesystem::path& path() const { return map_.path(); }
    const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
    const SafetensorsTensor* find(const std::string& name) const;
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

  private:
    MappedFile map_;
    std::vector<SafetensorsTensor> tensors_;
    std::unordered_map<std::string, size_t> index_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace mf
