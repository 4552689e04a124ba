#include "model/safetensors_file.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace mf {

std::optional<uint32_t> safetensors_dtype_size(const std::string& d) {
    if (d == "BOOL" || d == "U8" || d == "I8" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
    if (d == "U16" || d == "I16" || d == "F16" || d == "BF16") return 2;
    if (d == "U32" || d == "I32" || d == "F32") return 4;
    if (d == "U64" || d == "I64" || d == "F64") return 8;
    return std::nullopt;
}

std::optional<GgmlType> safetensors_dtype_to_ggml(const std::string& d) {
    if (d == "F32") return GgmlType::f32;
    if (d == "F16") return GgmlType::f16;
    if (d == "BF16") return GgmlType::bf16;
    if (d == "F8_E4M3") return GgmlType::f8_e4m3;
    return std::nullopt;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : map_(path) {
    const std::string file = path.string();
    auto fail = [&](const std::string& what) -> void { throw std::runtime_error(file + ": " + what); };
    if (map_.size() < 8) fail(fmt::format("too short for a safetensors file ({} bytes)", map_.size()));
    uint64_t header_len;
    std::memcpy(&header_len, map_.data(), 8);
    if (header_len > map_.size() - 8)
        fail(fmt::format("header length {} is beyond the end of the file ({} bytes)", header_len,
                         map_.size()));
    if (header_len > (uint64_t(1) << 30))
        fail(fmt::format("header length {} is implausibly large", header_len));
    const uint8_t* data = map_.data() + 8 + header_len;
    const uint64_t data_size = map_.size() - 8 - header_len;
    nlohmann::json header;
    try {
        header = nlohmann::json::parse(map_.data() + 8, map_.data() + 8 + header_len);
    } catch (const nlohmann::json::exception& e) {
        fail(std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) fail("header is not a JSON object");
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string& name = it.key();
        const auto& v = it.value();
        if (name == "__metadata__") {
            if (!v.is_object()) fail("__metadata__ is not an object");
            for (auto m = v.begin(); m != v.end(); ++m)
                if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
            continue;
        }
        const std::string what = "tensor '" + name + "'";
        if (!v.is_object()) fail(what + ": entry is not an object");
        if (!v.contains("dtype") || !v["dtype"].is_string()) fail(what + ": missing string 'dtype'");
        if (!v.contains("shape") || !v["shape"].is_array()) fail(what + ": missing array 'shape'");
        if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2)
            fail(what + ": missing 'data_offsets' [begin, end]");
        SafetensorsTensor t;
        t.name = name;
        t.dtype = v["dtype"].get<std::string>();
        const auto esize = safetensors_dtype_size(t.dtype);
        if (!esize) fail(what + ": unknown dtype '" + t.dtype + "'");
        uint64_t n = 1;
        for (const auto& d : v["shape"]) {
            if (!d.is_number_unsigned()) fail(what + ": shape entries must be non-negative integers");
            const uint64_t x = d.get<uint64_t>();
            if (x > (uint64_t(1) << 40)) fail(fmt::format("{}: dimension {} is implausibly large", what, x));
            if (x != 0 && n > (uint64_t(1) << 50) / x) fail(what + ": element count overflows");
            n *= x;
            t.shape.push_back(x);
        }
        const auto& off = v["data_offsets"];
        if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            fail(what + ": data_offsets must be non-negative integers");
        const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
        if (begin > end) fail(fmt::format("{}: data_offsets [{}, {}) run backwards", what, begin, end));
        if (end > data_size)
            fail(fmt::format("{}: data [{}, {}) lies beyond the end of the data ({} bytes; truncated file?)",
                             what, begin, end, data_size));
        if (end - begin != n * *esize)
            fail(fmt::format("{}: {} bytes of data for {} {} values ({} bytes expected)", what, end - begin,
                             n, t.dtype, n * *esize));
        t.data = data + begin;
        t.n_bytes = end - begin;
        index_[name] = tensors_.size();
        tensors_.push_back(std::move(t));
    }
}

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace mf
