#include "model/gguf_writer.hpp"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace mf {
namespace {
enum : uint32_t {
    kU8 = 0,
    kU16 = 2,
    kI32 = 5,
    kU32 = 4,
    kF32 = 6,
    kBool = 7,
    kString = 8,
    kArray = 9,
    kU64 = 10
};
}

GgufWriter::GgufWriter(std::filesystem::path path, uint32_t alignment)
    : path_(std::move(path)), tmp_(path_.string() + ".part"), alignment_(alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)))
        throw std::invalid_argument("GgufWriter: alignment must be a power of two");
    if (alignment != 32) add_u32("general.alignment", alignment);
}

GgufWriter::~GgufWriter() {
    if (f_) {
        std::fclose(f_);
        if (!finished_) std::filesystem::remove(tmp_);
    }
}

void GgufWriter::put_str(const std::string& s) {
    const uint64_t n = s.size();
    put(&n, 8);
    put(s.data(), s.size());
}

void GgufWriter::key(const std::string& k, uint32_t type) {
    if (started_) throw std::logic_error("GgufWriter: metadata added after begin_data()");
    put_str(k);
    put(&type, 4);
    ++n_kv_;
}

void GgufWriter::add_string(const std::string& k, const std::string& v) {
    key(k, kString), put_str(v);
}
void GgufWriter::add_u32(const std::string& k, uint32_t v) {
    key(k, kU32), put(&v, 4);
}
void GgufWriter::add_u16(const std::string& k, uint16_t v) {
    key(k, kU16), put(&v, 2);
}
void GgufWriter::add_i32(const std::string& k, int32_t v) {
    key(k, kI32), put(&v, 4);
}
void GgufWriter::add_f32(const std::string& k, float v) {
    key(k, kF32), put(&v, 4);
}
void GgufWriter::add_bool(const std::string& k, bool v) {
    key(k, kBool);
    const uint8_t b = v;
    put(&b, 1);
}
void GgufWriter::add_string_array(const std::string& k, const std::vector<std::string>& v) {
    key(k, kArray);
    const uint32_t et = kString;
    const uint64_t n = v.size();
    put(&et, 4), put(&n, 8);
    for (const auto& s : v) put_str(s);
}
void GgufWriter::add_i32_array(const std::string& k, const std::vector<int32_t>& v) {
    key(k, kArray);
    const uint32_t et = kI32;
    const uint64_t n = v.size();
    put(&et, 4), put(&n, 8), put(v.data(), v.size() * 4);
}
void GgufWriter::add_f32_array(const std::string& k, const std::vector<float>& v) {
    key(k, kArray);
    const uint32_t et = kF32;
    const uint64_t n = v.size();
    put(&et, 4), put(&n, 8), put(v.data(), v.size() * 4);
}

uint64_t GgufWriter::add_tensor(const std::string& name, GgmlType type, const std::vector<uint64_t>& ne) {
    if (started_) throw std::logic_error("GgufWriter: tensor added after begin_data()");
    uint64_t n = 1;
    for (uint64_t d : ne) n *= d;
    const auto row = ggml_row_bytes(uint32_t(type), ne.at(0));
    if (!row)
        throw std::invalid_argument(fmt::format("GgufWriter: tensor '{}': a row of {} is not whole {} blocks",
                                                name, ne.at(0), ggml_type_name(type)));
    const uint64_t bytes = *row * (n / ne[0]);
    const uint64_t len = name.size();
    infos_.append(reinterpret_cast<const char*>(&len), 8).append(name);
    const uint32_t nd = uint32_t(ne.size()), t = uint32_t(type);
    infos_.append(reinterpret_cast<const char*>(&nd), 4);
    for (uint64_t d : ne) infos_.append(reinterpret_cast<const char*>(&d), 8);
    infos_.append(reinterpret_cast<const char*>(&t), 4);
    infos_.append(reinterpret_cast<const char*>(&data_size_), 8);
    tensors_.push_back({name, bytes});
    data_size_ += (bytes + alignment_ - 1) / alignment_ * alignment_;
    return bytes;
}

void GgufWriter::write(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n)
        throw std::runtime_error(tmp_.string() + ": write failed: " + std::strerror(errno));
    file_pos_ += n;
}

void GgufWriter::pad_to(uint64_t boundary) {
    static const char zeros[256] = {};
    while (file_pos_ % boundary)
        write(zeros, size_t(std::min<uint64_t>(boundary - file_pos_ % boundary, 256)));
}

void GgufWriter::begin_data() {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) throw std::runtime_error(tmp_.string() + ": cannot create: " + std::strerror(errno));
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 22);
    started_ = true;
    const uint32_t magic = 0x46554747, version = 3;
    const uint64_t nt = tensors_.size();
    write(&magic, 4), write(&version, 4), write(&nt, 8), write(&n_kv_, 8);
    write(kv_.data(), kv_.size());
    write(infos_.data(), infos_.size());
    pad_to(alignment_);
    kv_.clear(), infos_.clear();
}

void GgufWriter::append(const void* src, size_t n) {
    const auto* p = static_cast<const uint8_t*>(src);
    while (n > 0) {
        if (current_ >= tensors_.size())
            throw std::logic_error("GgufWriter: more data than the tensors declared");
        const uint64_t take = std::min<uint64_t>(n, tensors_[current_].bytes - written_);
        write(p, size_t(take));
        p += take, n -= size_t(take), written_ += take;
        if (written_ == tensors_[current_].bytes) {
            pad_to(alignment_);
            ++current_, written_ = 0;
        }
    }
}

void GgufWriter::finish() {
    if (!started_) begin_data();
    if (current_ != tensors_.size())
        throw std::logic_error(fmt::format("GgufWriter: {}: tensor '{}' is missing data", path_.string(),
                                           tensors_[current_].name));
    if (std::fclose(f_) != 0) {
        f_ = nullptr;
        throw std::runtime_error(tmp_.string() + ": close failed: " + std::strerror(errno));
    }
    f_ = nullptr;
    std::filesystem::rename(tmp_, path_);
    finished_ = true;
}

}  // namespace mf
