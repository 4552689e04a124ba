#include "model/safetensors_writer.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "model/safetensors_file.hpp"

namespace mf {

SafetensorsWriter::SafetensorsWriter(std::filesystem::path path)
    : path_(std::move(path)), tmp_(path_.string() + ".part") {}

SafetensorsWriter::~SafetensorsWriter() {
    if (f_) {
        std::fclose(f_);
        if (!finished_) std::filesystem::remove(tmp_);
    }
}

uint64_t SafetensorsWriter::add_tensor(const std::string& name, const std::string& dtype,
                                       const std::vector<uint64_t>& shape) {
    if (f_) throw std::logic_error("SafetensorsWriter: tensor added after begin_data()");
    const auto esize = safetensors_dtype_size(dtype);
    if (!esize) throw std::invalid_argument("SafetensorsWriter: unknown dtype " + dtype);
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    entries_.push_back({name, dtype, shape, data_size_, data_size_ + n * *esize});
    data_size_ += n * *esize;
    return n * *esize;
}

void SafetensorsWriter::begin_data() {
    nlohmann::json h = nlohmann::json::object();
    if (!metadata_.empty()) h["__metadata__"] = metadata_;
    for (const auto& e : entries_)
        h[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
    std::string text = h.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) throw std::runtime_error(tmp_.string() + ": cannot create: " + std::strerror(errno));
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 22);
    const uint64_t len = text.size();
    if (std::fwrite(&len, 8, 1, f_) != 1 || std::fwrite(text.data(), 1, text.size(), f_) != text.size())
        throw std::runtime_error(tmp_.string() + ": write failed: " + std::strerror(errno));
}

void SafetensorsWriter::append(const void* src, size_t n) {
    if (!f_) begin_data();
    if (written_ + n > data_size_)
        throw std::logic_error("SafetensorsWriter: more data than the tensors declared");
    if (n && std::fwrite(src, 1, n, f_) != n)
        throw std::runtime_error(tmp_.string() + ": write failed: " + std::strerror(errno));
    written_ += n;
}

void SafetensorsWriter::finish() {
    if (!f_) begin_data();
    if (written_ != data_size_)
        throw std::logic_error(fmt::format("SafetensorsWriter: {}: {} of {} data bytes written",
                                           path_.string(), written_, data_size_));
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) throw std::runtime_error(tmp_.string() + ": close failed: " + std::strerror(errno));
    std::filesystem::rename(tmp_, path_);
    finished_ = true;
}

}  // namespace mf
