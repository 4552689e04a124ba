// The list of tensors of a synthetic DeepSeek-V3 model, their types, initial scales and seeded values; shared
// by the GGUF and safetensors sides of write_synthetic_model (see synthetic_model.hpp for the scaling).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/deepseek_v3_config.hpp"
#include "model/ggml_type.hpp"

namespace mf {

struct PlannedTensor {
    std::string hf_name;
    std::string gguf_name;       // routed experts: the stacked 3-D tensor's name
    int64_t expert = -1;         // routed expert index within gguf_name, else -1
    bool kv_b = false;           // GGUF MLA layout writes it as attn_k_b + attn_v_b
    std::vector<int64_t> shape;  // HF row-major: [rows][cols] or [n]
    GgmlType gguf_type = GgmlType::f32;
    float stddev = 0;  // values uniform in center +- sqrt(3)*stddev
    float center = 0;

    int64_t rows() const { return shape.size() == 1 ? 1 : shape[0]; }
    int64_t cols() const { return shape.back(); }
};

// In HF order: embedding, each layer (attention, then dense FFN or router + experts + shared expert), final
// norm, lm_head. `notes` collects the tensors whose rows do not fit `wtype` and the fallback chosen.
std::vector<PlannedTensor> plan_synthetic_tensors(const DeepSeekV3Config& c, GgmlType wtype,
                                                  std::vector<std::string>* notes);

// Rows [row0, row0+n) of the tensor's fp32 values (before any quantisation), deterministic in (seed, name,
// row).
void generate_rows(const PlannedTensor& t, uint64_t seed, int64_t row0, int64_t n, float* dst);

}  // namespace mf
