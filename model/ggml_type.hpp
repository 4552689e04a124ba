// GGML tensor element types as stored in GGUF files: ids, names and block geometry.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace mf {

// Values are the GGUF on-disk ids (llama.cpp's enum ggml_type); only the ones moeforge reads are named.
enum class GgmlType : uint32_t {
    f32 = 0,
    f16 = 1,
    q4_0 = 2,
    q4_1 = 3,
    q5_0 = 6,
    q5_1 = 7,
    q8_0 = 8,
    q8_1 = 9,
    q2_k = 10,
    q3_k = 11,
    q4_k = 12,
    q5_k = 13,
    q6_k = 14,
    q8_k = 15,
    i8 = 24,
    i16 = 25,
    i32 = 26,
    i64 = 27,
    f64 = 28,
    bf16 = 30,
    // Not a GGUF type: FP8 e4m3 ("fn") as stored by the official DeepSeek-V3 safetensors release, with a
    // separate 128x128-block fp32 scale_inv tensor. The GGUF reader rejects it; only TensorView uses it.
    f8_e4m3 = 0x1000,
};

struct GgmlTypeTraits {
    const char* name;
    uint32_t block_elems;  // values per block (1 for plain types)
    uint32_t block_bytes;  // bytes per block
};

// nullopt for an id moeforge does not know; callers turn that into an error naming the tensor.
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t id);
inline std::optional<GgmlTypeTraits> ggml_type_traits(GgmlType t) { return ggml_type_traits(uint32_t(t)); }
std::string ggml_type_name(uint32_t id);  // "q4_K", or "type 17" for unknown ids
inline std::string ggml_type_name(GgmlType t) { return ggml_type_name(uint32_t(t)); }

// Bytes of a row of `elems` values; nullopt if `elems` is not a whole number of blocks or the id is unknown.
std::optional<uint64_t> ggml_row_bytes(uint32_t id, uint64_t elems);

}  // namespace mf
