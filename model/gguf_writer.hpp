// Writes a GGUF v3 file the way llama.cpp's loader expects it: metadata, tensor infos, then each tensor's
// data in info order, each padded to general.alignment. Data is streamed: declare every tensor, call
// begin_data(), then append() bytes in order (any chunk size); finish() checks everything arrived and renames
// the file into place (it is written as PATH.part until then).
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "model/ggml_type.hpp"

namespace mf {

class GgufWriter {
  public:
    explicit GgufWriter(std::filesystem::path path, uint32_t alignment = 32);
    ~GgufWriter();
    GgufWriter(const GgufWriter&) = delete;
    GgufWriter& operator=(const GgufWriter&) = delete;

    void add_string(const std::string& key, const std::string& v);
    void add_u32(const std::string& key, uint32_t v);
    void add_i32(const std::string& key, int32_t v);
    void add_u16(const std::string& key, uint16_t v);
    void add_f32(const std::string& key, float v);
    void add_bool(const std::string& key, bool v);
    void add_string_array(const std::string& key, const std::vector<std::string>& v);
    void add_i32_array(const std::string& key, const std::vector<int32_t>& v);
    void add_f32_array(const std::string& key, const std::vector<float>& v);

    // ne in GGML order (ne[0] contiguous). Returns the tensor's data size in bytes.
    uint64_t add_tensor(const std::string& name, GgmlType type, const std::vector<uint64_t>& ne);

    void begin_data();                       // writes header, metadata and tensor infos
    void append(const void* src, size_t n);  // tensor data, in info order
    void finish();

    uint64_t data_bytes() const { return data_size_; }  // total of the data section, padding included

  private:
    struct Pending {
        std::string name;
        uint64_t bytes;
    };
    void key(const std::string& k, uint32_t type);
    void put(const void* p, size_t n) { kv_.append(static_cast<const char*>(p), n); }
    void put_str(const std::string& s);
    void write(const void* p, size_t n);
    void pad_to(uint64_t boundary_pos);

    std::filesystem::path path_, tmp_;
    uint32_t alignment_;
    std::FILE* f_ = nullptr;
    std::string kv_;
    uint64_t n_kv_ = 0;
    std::string infos_;
    std::vector<Pending> tensors_;
    uint64_t data_size_ = 0;
    size_t current_ = 0;    // tensor being appended
    uint64_t written_ = 0;  // bytes of it written so far
    uint64_t file_pos_ = 0;
    bool started_ = false, finished_ = false;
};

}  // namespace mf
