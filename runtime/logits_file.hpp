// --logits-out: the raw logits of every scored position as a NumPy .npy file (format 1.0, little-endian float32,
// C order, shape (rows, vocab)), readable with numpy.load or any .npy reader. Rows are appended as they are
// produced; the header's row count is rewritten on close(), so an interrupted run leaves a file whose header says
// 0 rows (its data is still there: rows = (file size - 128) / (4 * vocab)). The header is always 128 bytes.
#pragma once
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <span>
#include <vector>

namespace mf {

class LogitsWriter {
public:
    // Throws std::runtime_error naming the file when it cannot be created.
    LogitsWriter(const std::filesystem::path& path, int64_t vocab);
    ~LogitsWriter();
    LogitsWriter(const LogitsWriter&) = delete;
    LogitsWriter& operator=(const LogitsWriter&) = delete;

    void append(std::span<const float> row);  // row.size() == vocab
    void close();                             // writes the final header; idempotent
    int64_t rows() const { return rows_; }

private:
    std::filesystem::path path_;
    std::FILE* f_ = nullptr;
    int64_t vocab_ = 0, rows_ = 0;
};

// Reads a float32 2-D .npy written by LogitsWriter (or numpy.save); throws std::runtime_error naming the file.
struct NpyMatrix {
    int64_t rows = 0, cols = 0;
    std::vector<float> data;
};
NpyMatrix read_npy_f32(const std::filesystem::path& path);

}  // namespace mf
