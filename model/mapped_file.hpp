// A read-only memory map of a whole file (model files are opened this way: weights stay in the page cache).
#pragma once
#include <cstdint>
#include <filesystem>

namespace mf {

class MappedFile {
  public:
    // Throws std::runtime_error naming the file if it cannot be opened or mapped.
    explicit MappedFile(const std::filesystem::path& path);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
};

}  // namespace mf
