// A GGUF file (versions 2 and 3), memory-mapped: metadata of every value type, tensor infos and the tensor
// data. Every count, size, string length and offset is checked against the file before use; errors name the
// file, the key or tensor, and what is wrong. One GgufFile is one file; a split model is several (see
// model.hpp).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/ggml_type.hpp"
#include "model/mapped_file.hpp"

namespace mf {

enum class GgufValueType : uint32_t {
    u8 = 0,
    i8 = 1,
    u16 = 2,
    i16 = 3,
    u32 = 4,
    i32 = 5,
    f32 = 6,
    boolean = 7,
    string = 8,
    array = 9,
    u64 = 10,
    i64 = 11,
    f64 = 12,
};
const char* gguf_value_type_name(GgufValueType t);

// One metadata value. Scalars fill the field of their category; arrays fill one vector by element category.
struct GgufValue {
    GgufValueType type = GgufValueType::u8;
    GgufValueType elem_type = GgufValueType::u8;  // arrays only
    uint64_t u = 0;                               // u8..u64, and bool (0/1)
    int64_t i = 0;                                // i8..i64
    double f = 0;                                 // f32, f64
    std::string str;                              // string
    std::vector<std::string> strings;             // array of string
    std::vector<int64_t> ints;      // array of any integer or bool (u64 above 2^63 is stored bit-cast)
    std::vector<double> floats;     // array of f32/f64
    std::vector<GgufValue> arrays;  // array of arrays
    uint64_t array_size() const;
};

struct GgufTensorInfo {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> ne;  // GGML order: ne[0] is the contiguous (fastest) dimension
    uint64_t offset = 0;       // from the start of the data section
    uint64_t n_elements = 0;
    uint64_t n_bytes = 0;
    const uint8_t* data = nullptr;  // into the mapping
};

class GgufFile {
  public:
    explicit GgufFile(const std::filesystem::path& path);

    const std::filesystem::path& path() const { return map_.path(); }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; }
    uint64_t file_size() const { return map_.size(); }

    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
    const GgufValue* find(const std::string& key) const;
    bool has(const std::string& key) const { return find(key) != nullptr; }
    // Typed getters: throw naming the file and key if the key is missing, of the wrong type or out of range.
    // Integer getters accept any integer type whose value fits.
    std::string get_string(const std::string& key) const;
    uint64_t get_uint(const std::string& key) const;
    int64_t get_int(const std::string& key) const;
    double get_float(const std::string& key) const;  // f32/f64 (integers too)
    bool get_bool(const std::string& key) const;
    std::optional<uint64_t> opt_uint(const std::string& key) const;
    std::optional<double> opt_float(const std::string& key) const;
    std::optional<bool> opt_bool(const std::string& key) const;
    std::optional<std::string> opt_string(const std::string& key) const;

    const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
    const GgufTensorInfo* find_tensor(const std::string& name) const;

    [[noreturn]] void fail(const std::string& what) const;

  private:
    MappedFile map_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::unordered_map<std::string, size_t> kv_index_;
    std::vector<GgufTensorInfo> tensors_;
    std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace mf
