#include "model/gguf_file.hpp"

#include <fmt/core.h>

#include <limits>
#include <stdexcept>

#include "model/byte_cursor.hpp"

namespace mf {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxDims = 4;                  // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;

// Smallest encoded size of one value of a type: bounds array counts before anything is allocated.
uint64_t min_value_bytes(GgufValueType t) {
    switch (t) {
        case GgufValueType::u8:
        case GgufValueType::i8:
        case GgufValueType::boolean:
            return 1;
        case GgufValueType::u16:
        case GgufValueType::i16:
            return 2;
        case GgufValueType::u32:
        case GgufValueType::i32:
        case GgufValueType::f32:
            return 4;
        case GgufValueType::u64:
        case GgufValueType::i64:
        case GgufValueType::f64:
        case GgufValueType::string:
            return 8;
        case GgufValueType::array:
            return 12;
    }
    return 1;
}

bool valid_value_type(uint32_t t) {
    return t <= 12;
}

std::string read_string(ByteCursor& c, const std::string& what) {
    const uint64_t n = c.read<uint64_t>(what + ": string length");
    if (n > c.remaining())
        c.fail(fmt::format("{}: string length {} is beyond the end of the file ({} bytes left)", what, n,
                           c.remaining()));
    return std::string(c.read_bytes(n, what));
}

void read_value(ByteCursor& c, GgufValueType t, GgufValue& v, const std::string& key, int depth) {
    v.type = t;
    switch (t) {
        case GgufValueType::u8:
            v.u = c.read<uint8_t>(key);
            return;
        case GgufValueType::i8:
            v.i = c.read<int8_t>(key);
            return;
        case GgufValueType::u16:
            v.u = c.read<uint16_t>(key);
            return;
        case GgufValueType::i16:
            v.i = c.read<int16_t>(key);
            return;
        case GgufValueType::u32:
            v.u = c.read<uint32_t>(key);
            return;
        case GgufValueType::i32:
            v.i = c.read<int32_t>(key);
            return;
        case GgufValueType::u64:
            v.u = c.read<uint64_t>(key);
            return;
        case GgufValueType::i64:
            v.i = c.read<int64_t>(key);
            return;
        case GgufValueType::f32:
            v.f = c.read<float>(key);
            return;
        case GgufValueType::f64:
            v.f = c.read<double>(key);
            return;
        case GgufValueType::boolean: {
            const uint8_t b = c.read<uint8_t>(key);
            if (b > 1) c.fail(fmt::format("key '{}': bool value {} is neither 0 nor 1", key, b));
            v.u = b;
            return;
        }
        case GgufValueType::string:
            v.str = read_string(c, "key '" + key + "'");
            return;
        case GgufValueType::array: {
            if (depth >= kMaxArrayDepth)
                c.fail(fmt::format("key '{}': arrays nested deeper than {}", key, depth));
            const uint32_t et = c.read<uint32_t>("key '" + key + "': array element type");
            if (!valid_value_type(et))
                c.fail(fmt::format("key '{}': unknown array element type {}", key, et));
            v.elem_type = GgufValueType(et);
            const uint64_t n = c.read<uint64_t>("key '" + key + "': array length");
            if (n > c.remaining() / min_value_bytes(v.elem_type))
                c.fail(fmt::format("key '{}': array of {} {} values cannot fit in the {} bytes left", key, n,
                                   gguf_value_type_name(v.elem_type), c.remaining()));
            GgufValue item;
            for (uint64_t k = 0; k < n; ++k) {
                read_value(c, v.elem_type, item, key, depth + 1);
                switch (v.elem_type) {
                    case GgufValueType::string:
                        v.strings.push_back(std::move(item.str));
                        break;
                    case GgufValueType::f32:
                    case GgufValueType::f64:
                        v.floats.push_back(item.f);
                        break;
                    case GgufValueType::array:
                        v.arrays.push_back(std::move(item));
                        item = GgufValue{};
                        break;
                    case GgufValueType::i8:
                    case GgufValueType::i16:
                    case GgufValueType::i32:
                    case GgufValueType::i64:
                        v.ints.push_back(item.i);
                        break;
                    default:
                        v.ints.push_back(int64_t(item.u));
                        break;
                }
            }
            return;
        }
    }
    c.fail(fmt::format("key '{}': unknown value type {}", key, uint32_t(t)));
}

}  // namespace

const char* gguf_value_type_name(GgufValueType t) {
    static const char* names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return uint32_t(t) <= 12 ? names[uint32_t(t)] : "unknown";
}

uint64_t GgufValue::array_size() const {
    return strings.size() + ints.size() + floats.size() + arrays.size();
}

void GgufFile::fail(const std::string& what) const {
    throw std::runtime_error(path().string() + ": " + what);
}

GgufFile::GgufFile(const std::filesystem::path& path) : map_(path) {
    ByteCursor c(map_.data(), map_.size(), path.string());
    const uint32_t magic = c.read<uint32_t>("magic");
    if (magic != kGgufMagic) c.fail("not a GGUF file (bad magic)");
    version_ = c.read<uint32_t>("version");
    if (version_ == 1) c.fail("GGUF version 1 is not supported (convert the file with a current llama.cpp)");
    if (version_ != 2 && version_ != 3)
        c.fail(fmt::format("unsupported GGUF version {} (2 and 3 are read)", version_));
    const uint64_t n_tensors = c.read<uint64_t>("tensor count");
    const uint64_t n_kv = c.read<uint64_t>("metadata count");
    // A key needs at least 8 (length) + 4 (type) + 1 bytes, a tensor info at least 8 + 4 + 8 + 4 + 8.
    if (n_kv > c.remaining() / 13) c.fail(fmt::format("metadata count {} cannot fit in the file", n_kv));
    if (n_tensors > c.remaining() / 32)
        c.fail(fmt::format("tensor count {} cannot fit in the file", n_tensors));

    kv_.reserve(n_kv);
    for (uint64_t k = 0; k < n_kv; ++k) {
        std::string key = read_string(c, fmt::format("metadata key #{}", k));
        if (kv_index_.count(key)) c.fail(fmt::format("duplicate metadata key '{}'", key));
        const uint32_t t = c.read<uint32_t>("key '" + key + "': value type");
        if (!valid_value_type(t)) c.fail(fmt::format("key '{}': unknown value type {}", key, t));
        GgufValue v;
        read_value(c, GgufValueType(t), v, key, 0);
        kv_index_[key] = kv_.size();
        kv_.emplace_back(std::move(key), std::move(v));
    }
    if (const GgufValue* a = find("general.alignment")) {
        if (a->type != GgufValueType::u32) fail("key 'general.alignment' must be u32");
        if (a->u == 0 || (a->u & (a->u - 1)) != 0)
            fail(fmt::format("key 'general.alignment': {} is not a power of two", a->u));
        alignment_ = a->u;
    }

    tensors_.reserve(n_tensors);
    for (uint64_t k = 0; k < n_tensors; ++k) {
        GgufTensorInfo ti;
        ti.name = read_string(c, fmt::format("tensor #{} name", k));
        const std::string what = "tensor '" + ti.name + "'";
        if (tensor_index_.count(ti.name)) c.fail("duplicate " + what);
        const uint32_t n_dims = c.read<uint32_t>(what + ": dimension count");
        if (n_dims == 0 || n_dims > kMaxDims)
            c.fail(fmt::format("{}: {} dimensions (1 to {} allowed)", what, n_dims, kMaxDims));
        ti.n_elements = 1;
        for (uint32_t d = 0; d < n_dims; ++d) {
            const uint64_t n = c.read<uint64_t>(what + ": dimension");
            if (n == 0 || n > (uint64_t(1) << 40))
                c.fail(fmt::format("{}: dimension {} is {} (must be 1 to 2^40)", what, d, n));
            if (ti.n_elements > (uint64_t(1) << 50) / n) c.fail(what + ": element count overflows");
            ti.n_elements *= n;
            ti.ne.push_back(n);
        }
        const uint32_t type = c.read<uint32_t>(what + ": type");
        const auto traits = type < uint32_t(GgmlType::f8_e4m3) ? ggml_type_traits(type) : std::nullopt;
        if (!traits) c.fail(fmt::format("{}: unknown GGML type {}", what, type));
        ti.type = GgmlType(type);
        if (ti.ne[0] % traits->block_elems != 0)
            c.fail(fmt::format("{}: row of {} values is not a whole number of {} blocks ({} values)", what,
                               ti.ne[0], traits->name, traits->block_elems));
        ti.n_bytes = ti.n_elements / traits->block_elems * traits->block_bytes;
        ti.offset = c.read<uint64_t>(what + ": data offset");
        if (ti.offset % alignment_ != 0)
            c.fail(fmt::format("{}: data offset {} is not a multiple of the alignment {}", what, ti.offset,
                               alignment_));
        tensor_index_[ti.name] = tensors_.size();
        tensors_.push_back(std::move(ti));
    }
    data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
    if (data_offset_ > map_.size() && !tensors_.empty())
        fail(fmt::format("the data section would start at byte {}, past the end of the file ({} bytes)",
                         data_offset_, map_.size()));
    const uint64_t data_size = map_.size() > data_offset_ ? map_.size() - data_offset_ : 0;
    for (auto& ti : tensors_) {
        if (ti.offset > data_size || ti.n_bytes > data_size - ti.offset)
            fail(fmt::format(
                "tensor '{}': data [{}, {}) lies beyond the end of the file (data section is {} bytes; "
                "the file is truncated?)",
                ti.name, ti.offset, ti.offset + ti.n_bytes, data_size));
        ti.data = map_.data() + data_offset_ + ti.offset;
    }
}

const GgufValue* GgufFile::find(const std::string& key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
bool is_unsigned(GgufValueType t) {
    return t == GgufValueType::u8 || t == GgufValueType::u16 || t == GgufValueType::u32 ||
           t == GgufValueType::u64;
}
bool is_signed(GgufValueType t) {
    return t == GgufValueType::i8 || t == GgufValueType::i16 || t == GgufValueType::i32 ||
           t == GgufValueType::i64;
}
}  // namespace

std::optional<uint64_t> GgufFile::opt_uint(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (is_unsigned(v->type)) return v->u;
    if (is_signed(v->type)) {
        if (v->i < 0) fail(fmt::format("key '{}': value {} is negative", key, v->i));
        return uint64_t(v->i);
    }
    fail(fmt::format("key '{}': expected an integer, found {}", key, gguf_value_type_name(v->type)));
}

std::optional<double> GgufFile::opt_float(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->type == GgufValueType::f32 || v->type == GgufValueType::f64) return v->f;
    if (is_unsigned(v->type)) return double(v->u);
    if (is_signed(v->type)) return double(v->i);
    fail(fmt::format("key '{}': expected a number, found {}", key, gguf_value_type_name(v->type)));
}

std::optional<bool> GgufFile::opt_bool(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->type != GgufValueType::boolean)
        fail(fmt::format("key '{}': expected bool, found {}", key, gguf_value_type_name(v->type)));
    return v->u != 0;
}

std::optional<std::string> GgufFile::opt_string(const std::string& key) const {
    const GgufValue* v = find(key);
    if (!v) return std::nullopt;
    if (v->type != GgufValueType::string)
        fail(fmt::format("key '{}': expected string, found {}", key, gguf_value_type_name(v->type)));
    return v->str;
}

uint64_t GgufFile::get_uint(const std::string& key) const {
    if (auto v = opt_uint(key)) return *v;
    fail("missing key '" + key + "'");
}
int64_t GgufFile::get_int(const std::string& key) const {
    const GgufValue* v = find(key);
    if (v && is_signed(v->type)) return v->i;
    const uint64_t u = get_uint(key);
    if (u > uint64_t(std::numeric_limits<int64_t>::max())) fail("key '" + key + "': value out of range");
    return int64_t(u);
}
double GgufFile::get_float(const std::string& key) const {
    if (auto v = opt_float(key)) return *v;
    fail("missing key '" + key + "'");
}
bool GgufFile::get_bool(const std::string& key) const {
    if (auto v = opt_bool(key)) return *v;
    fail("missing key '" + key + "'");
}
std::string GgufFile::get_string(const std::string& key) const {
    if (auto v = opt_string(key)) return *v;
    fail("missing key '" + key + "'");
}

}  // namespace mf
