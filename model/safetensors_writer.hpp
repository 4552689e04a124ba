// Writes one .safetensors file, streaming: declare every tensor (name, dtype, shape), then begin_data()
// writes the JSON header (padded with spaces to 8 bytes, as the safetensors library does) and append() takes
// the data in declaration order. Written as PATH.part and renamed by finish().
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace mf {

class SafetensorsWriter {
  public:
    explicit SafetensorsWriter(std::filesystem::path path);
    ~SafetensorsWriter();
    SafetensorsWriter(const SafetensorsWriter&) = delete;
    SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

    void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
    // Returns the tensor's size in bytes.
    uint64_t add_tensor(const std::string& name, const std::string& dtype,
                        const std::vector<uint64_t>& shape);
    void begin_data();
    void append(const void* src, size_t n);
    void finish();
    uint64_t data_bytes() const { return data_size_; }

  private:
    struct Entry {
        std::string name, dtype;
        std::vector<uint64_t> shape;
        uint64_t begin, end;
    };
    std::filesystem::path path_, tmp_;
    std::map<std::string, std::string> metadata_;
    std::vector<Entry> entries_;
    uint64_t data_size_ = 0;
    uint64_t written_ = 0;
    std::FILE* f_ = nullptr;
    bool finished_ = false;
};

}  // namespace mf
