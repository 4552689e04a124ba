#include "model/ggml_type.hpp"

namespace mf {

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t id) {
    switch (static_cast<GgmlType>(id)) {
        case GgmlType::f32: return GgmlTypeTraits{"f32", 1, 4};
        case GgmlType::f16: return GgmlTypeTraits{"f16", 1, 2};
        case GgmlType::bf16: return GgmlTypeTraits{"bf16", 1, 2};
        case GgmlType::f64: return GgmlTypeTraits{"f64", 1, 8};
        case GgmlType::i8: return GgmlTypeTraits{"i8", 1, 1};
        case GgmlType::i16: return GgmlTypeTraits{"i16", 1, 2};
        case GgmlType::i32: return GgmlTypeTraits{"i32", 1, 4};
        case GgmlType::i64: return GgmlTypeTraits{"i64", 1, 8};
        case GgmlType::q4_0: return GgmlTypeTraits{"q4_0", 32, 18};
        case GgmlType::q4_1: return GgmlTypeTraits{"q4_1", 32, 20};
        case GgmlType::q5_0: return GgmlTypeTraits{"q5_0", 32, 22};
        case GgmlType::q5_1: return GgmlTypeTraits{"q5_1", 32, 24};
        case GgmlType::q8_0: return GgmlTypeTraits{"q8_0", 32, 34};
        case GgmlType::q8_1: return GgmlTypeTraits{"q8_1", 32, 36};
        case GgmlType::q2_k: return GgmlTypeTraits{"q2_K", 256, 84};
        case GgmlType::q3_k: return GgmlTypeTraits{"q3_K", 256, 110};
        case GgmlType::q4_k: return GgmlTypeTraits{"q4_K", 256, 144};
        case GgmlType::q5_k: return GgmlTypeTraits{"q5_K", 256, 176};
        case GgmlType::q6_k: return GgmlTypeTraits{"q6_K", 256, 210};
        case GgmlType::q8_k: return GgmlTypeTraits{"q8_K", 256, 292};
        case GgmlType::f8_e4m3: return GgmlTypeTraits{"f8_e4m3", 1, 1};
    }
    return std::nullopt;
}

std::string ggml_type_name(uint32_t id) {
    if (auto t = ggml_type_traits(id)) return t->name;
    return "type " + std::to_string(id);
}

std::optional<uint64_t> ggml_row_bytes(uint32_t id, uint64_t elems) {
    const auto t = ggml_type_traits(id);
    if (!t || elems % t->block_elems != 0) return std::nullopt;
    return elems / t->block_elems * t->block_bytes;
}

}  // namespace mf
