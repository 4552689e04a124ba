// A bounds-checked little-endian reader over a byte range. Every read checks the bytes are there first;
// a failure throws std::runtime_error that names the file, what was being read and where.
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mf {

class ByteCursor {
  public:
    ByteCursor(const uint8_t* data, uint64_t size, std::string file)
        : data_(data), size_(size), file_(std::move(file)) {}

    uint64_t pos() const { return pos_; }
    uint64_t remaining() const { return size_ - pos_; }
    const std::string& file() const { return file_; }

    [[noreturn]] void fail(std::string_view what) const {
        throw std::runtime_error(file_ + ": " + std::string(what) + " (at byte " + std::to_string(pos_) +
                                 " of " + std::to_string(size_) + ")");
    }
    void need(uint64_t n, std::string_view what) const {
        if (n > remaining())
            fail(std::string(what) + ": needs " + std::to_string(n) + " bytes, the file ends after " +
                 std::to_string(remaining()));
    }
    template <class T>
    T read(std::string_view what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, data_ + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string_view read_bytes(uint64_t n, std::string_view what) {
        need(n, what);
        std::string_view s(reinterpret_cast<const char*>(data_ + pos_), size_t(n));
        pos_ += n;
        return s;
    }
    void seek(uint64_t p) { pos_ = p; }

  private:
    const uint8_t* data_;
    uint64_t size_;
    uint64_t pos_ = 0;
    std::string file_;
};

}  // namespace mf
