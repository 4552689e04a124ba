// Launch parameters of the per-token layer kernels (norm, rope, router, elementwise glue), shared by host C++ and
// NVRTC device code. Pointers to bf16 data are `void*` here: the element type is part of the kernel's Desc.
#pragma once

namespace mf {

// dst[r][i] = src[r][i] * rsqrt(mean_i(src[r]^2) + eps) * weight[i], i < dim (the Desc's dim).
struct RmsNormParams {
    const void* src;
    void* dst;
    const float* weight;  // [dim]
    int rows;
    int src_stride;       // elements between rows
    int dst_stride;
    float eps;
};

// Rotary embedding of `heads` vectors of rope_dim values per row; angle of pair i = positions[r] * inv_freq[i].
struct RopeParams {
    const void* src;
    void* dst;               // may equal src
    const int* positions;    // [rows]
    const float* inv_freq;   // [rope_dim / 2], YaRN blending already applied
    int rows;
    int heads;
    int src_row_stride, src_head_stride;  // elements
    int dst_row_stride, dst_head_stride;
    float cos_sin_scale;     // multiplies cos and sin (YaRN attention factor; 1 for DeepSeek-V3)
};

// Group-limited top-k routing: scores = sigmoid(logits) (or softmax); selection by scores + bias among the best
// groups; weights are the unbiased scores of the chosen experts, optionally normalised, times routed_scale.
struct RouterTopkParams {
    const float* logits;  // [tokens][experts]
    const float* bias;    // [experts] or null
    int* ids;             // [tokens][top_k]
    float* weights;       // [tokens][top_k]
    int tokens;
    float routed_scale;
};

struct EmbeddingParams {
    const void* table;  // [vocab][dim]
    const int* ids;     // [n]
    void* dst;          // [n][dim]
    int n;
    int dim;
    int vocab;          // ids outside [0, vocab) give a zero row
};

// dst[r][i] = silu(gate[r][i]) * up[r][i], i < dim.
struct SiluMulParams {
    const void* gate;
    const void* up;
    void* dst;
    int rows;
    int dim;
    int gate_stride, up_stride, dst_stride;  // elements
};

// dst[i] = dst[i] + src[i] (add) or dst[i] = src[i] converted (cast), i < count.
struct ElementwiseParams {
    const void* src;
    void* dst;
    long long count;
};

}  // namespace mf
