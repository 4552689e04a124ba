// Per-token layer kernels around the GEMMs: RMSNorm, rotary embedding (YaRN frequencies), group-limited top-k
// routing and the elementwise glue. Device code: kernels/{rms_norm,rope,router_topk,elementwise}.cuh; launch
// parameters: kernels/layer_params.cuh. Each family: a Desc (one field list), a name, a source, a grid.
#pragma once
#include "codegen/rope_yarn.hpp"
#include <string>
#include <vector>

#include "codegen/cuda/cuda_dtype.hpp"
#include "codegen/cuda/cuda_kernel_source.hpp"
#include "codegen/cuda/cuda_module.hpp"
#include "codegen/cuda/kernel_fields.hpp"
#include "codegen/cuda/kernels/layer_params.cuh"

namespace mf {

struct RmsNormDesc {
    int dim = 7168;
    CudaDtype src = CudaDtype::f32;
    CudaDtype dst = CudaDtype::bf16;
    template <class S, class F>
    static void fields(S& s, F&& f) {
        f("dim", "d", s.dim);
        f("src", "", s.src);
        f("dst", "to", s.dst);
    }
    bool operator==(const RmsNormDesc& o) const { return fields_equal(*this, o); }
};
std::string rms_norm_name(const RmsNormDesc& d);
CudaKernelSource rms_norm_source(const RmsNormDesc& d);
Dim3 rms_norm_grid(int rows);

struct RopeDesc {
    int rope_dim = 64;
    CudaDtype dtype = CudaDtype::bf16;
    bool interleaved = true;  // pairs (2i, 2i+1); false: (i, i + rope_dim/2)
    template <class S, class F>
    static void fields(S& s, F&& f) {
        f("rope_dim", "r", s.rope_dim);
        f("dtype", "", s.dtype);
        f("interleaved", "il", s.interleaved);
    }
    bool operator==(const RopeDesc& o) const { return fields_equal(*this, o); }
};
std::string rope_name(const RopeDesc& d);
CudaKernelSource rope_source(const RopeDesc& d);
Dim3 rope_grid(const RopeDesc& d, int rows, int heads);


struct RouterTopkDesc {
    int experts = 256;
    int groups = 8;
    int groups_kept = 4;
    int group_top = 2;  // a group's score sums its group_top best biased scores (V3: 2; V2's max: 1)
    int top_k = 8;
    bool sigmoid = true;  // false: softmax scores
    bool normalize = true;
    template <class S, class F>
    static void fields(S& s, F&& f) {
        f("experts", "e", s.experts);
        f("groups", "g", s.groups);
        f("groups_kept", "kg", s.groups_kept);
        f("group_top", "gt", s.group_top);
        f("top_k", "k", s.top_k);
        f("sigmoid", "sig", s.sigmoid);
        f("normalize", "norm", s.normalize);
    }
    bool operator==(const RouterTopkDesc& o) const { return fields_equal(*this, o); }
};
std::string router_topk_name(const RouterTopkDesc& d);
CudaKernelSource router_topk_source(const RouterTopkDesc& d);  // throws std::invalid_argument on a bad shape
Dim3 router_topk_grid(int tokens);

enum class ElementwiseOp { embedding, silu_mul, add, cast };
const char* field_text(ElementwiseOp op);
bool field_parse(std::string_view s, ElementwiseOp& op);

// embedding: EmbeddingParams; silu_mul: SiluMulParams; add, cast: ElementwiseParams.
struct ElementwiseDesc {
    ElementwiseOp op = ElementwiseOp::add;
    CudaDtype src = CudaDtype::bf16;
    CudaDtype dst = CudaDtype::f32;
    template <class S, class F>
    static void fields(S& s, F&& f) {
        f("op", "", s.op);
        f("src", "", s.src);
        f("dst", "to", s.dst);
    }
    bool operator==(const ElementwiseDesc& o) const { return fields_equal(*this, o); }
};
std::string elementwise_name(const ElementwiseDesc& d);
CudaKernelSource elementwise_source(const ElementwiseDesc& d);
Dim3 elementwise_grid(long long elements);  // grid-stride: at most 4096 blocks of 256

}  // namespace mf
