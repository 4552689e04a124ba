#include "runtime/logits_file.hpp"

#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

#include <fmt/core.h>

namespace mf {
namespace {

constexpr size_t kHeaderBytes = 128;

std::string npy_header(int64_t rows, int64_t cols) {
    std::string dict = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", rows, cols);
    const size_t fixed = 10;  // magic (6) + version (2) + header length (2)
    dict.resize(kHeaderBytes - fixed - 1, ' ');
    dict += '\n';
    std::string h = "\x93NUMPY";
    h += char(1);
    h += char(0);
    const uint16_t len = uint16_t(dict.size());
    h += char(len & 0xff);
    h += char(len >> 8);
    return h + dict;
}

}  // namespace

LogitsWriter::LogitsWriter(const std::filesystem::path& path, int64_t vocab) : path_(path), vocab_(vocab) {
    f_ = std::fopen(path.c_str(), "wb");
    if (!f_) throw std::runtime_error("cannot create the logits file " + path.string() + ": " + std::strerror(errno));
    const std::string h = npy_header(0, vocab);
    std::fwrite(h.data(), 1, h.size(), f_);
}

LogitsWriter::~LogitsWriter() {
    try {
        close();
    } catch (...) {
    }
}

void LogitsWriter::append(std::span<const float> row) {
    if (!f_) throw std::logic_error("LogitsWriter::append after close");
    if (int64_t(row.size()) != vocab_) throw std::logic_error("LogitsWriter::append: row length != vocab");
    if (std::fwrite(row.data(), sizeof(float), row.size(), f_) != row.size())
        throw std::runtime_error("cannot write the logits file " + path_.string() + " (disk full?)");
    ++rows_;
}

void LogitsWriter::close() {
    if (!f_) return;
    const std::string h = npy_header(rows_, vocab_);
    std::fseek(f_, 0, SEEK_SET);
    std::fwrite(h.data(), 1, h.size(), f_);
    const bool ok = std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok) throw std::runtime_error("cannot finish the logits file " + path_.string());
}

NpyMatrix read_npy_f32(const std::filesystem::path& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path.string());
    char pre[10];
    if (!f.read(pre, 10) || std::memcmp(pre, "\x93NUMPY", 6) != 0)
        throw std::runtime_error(path.string() + " is not a .npy file");
    const size_t len = uint8_t(pre[8]) | (size_t(uint8_t(pre[9])) << 8);
    std::string dict(len, '\0');
    if (!f.read(dict.data(), std::streamsize(len))) throw std::runtime_error(path.string() + ": truncated header");
    if (dict.find("'<f4'") == std::string::npos || dict.find("False") == std::string::npos)
        throw std::runtime_error(path.string() + ": not a C-order float32 array");
    const size_t s = dict.find("'shape': (");
    if (s == std::string::npos) throw std::runtime_error(path.string() + ": no shape in the header");
    NpyMatrix m;
    if (std::sscanf(dict.c_str() + s + 10, "%ld, %ld", &m.rows, &m.cols) != 2 || m.rows < 0 || m.cols <= 0)
        throw std::runtime_error(path.string() + ": not a 2-D shape");
    m.data.resize(size_t(m.rows * m.cols));
    if (!f.read(reinterpret_cast<char*>(m.data.data()), std::streamsize(m.data.size() * 4)))
        throw std::runtime_error(path.string() + ": shorter than its shape says");
    return m;
}

}  // namespace mf
