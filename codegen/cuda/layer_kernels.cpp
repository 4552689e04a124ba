#include "codegen/cuda/layer_kernels.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace mf {

namespace {
constexpr unsigned kNormThreads = 256, kRopeThreads = 128, kRouterThreads = 128, kEltThreads = 256;

// The stub every layer kernel shares: its header, and one extern "C" entry taking `params` by value that calls
// mf::`call`(p).
CudaKernelSource layer_kernel_source(std::string name, const char* header, unsigned threads, const char* params,
                                     const std::string& call) {
    CudaKernelSource s{std::move(name), "", threads, 0};
    s.source = fmt::format(
        "#include \"{}\"\n"
        "extern \"C\" __global__ void __launch_bounds__({}) {}(const mf::{} p) {{\n"
        "    mf::{}(p);\n"
        "}}\n",
        header, threads, s.name, params, call);
    return s;
}

}  // namespace

std::string rms_norm_name(const RmsNormDesc& d) {
    return "rms_norm_" + fields_name(d);
}

CudaKernelSource rms_norm_source(const RmsNormDesc& d) {
    if (d.dim < 1) throw std::invalid_argument("rms_norm: dim must be positive");
    return layer_kernel_source(rms_norm_name(d), "rms_norm.cuh", kNormThreads, "RmsNormParams",
                               fmt::format("rms_norm<{}, {}, {}, {}>", cuda_device_type(d.src),
                                           cuda_device_type(d.dst), d.dim, kNormThreads));
}

Dim3 rms_norm_grid(int rows) {
    return Dim3{static_cast<unsigned>(rows), 1, 1};
}

std::string rope_name(const RopeDesc& d) {
    return "rope_" + fields_name(d);
}

CudaKernelSource rope_source(const RopeDesc& d) {
    if (d.rope_dim < 2 || d.rope_dim % 2)
        throw std::invalid_argument("rope: rope_dim must be even and positive");
    return layer_kernel_source(rope_name(d), "rope.cuh", kRopeThreads, "RopeParams",
                               fmt::format("rope<{}, {}, {}>", cuda_device_type(d.dtype), d.rope_dim,
                                           d.interleaved ? "true" : "false"));
}

Dim3 rope_grid(const RopeDesc& d, int rows, int heads) {
    const long long n = static_cast<long long>(rows) * heads * (d.rope_dim / 2);
    return Dim3{static_cast<unsigned>((n + kRopeThreads - 1) / kRopeThreads), 1, 1};
}

std::string router_topk_name(const RouterTopkDesc& d) {
    return "router_topk_" + fields_name(d);
}

CudaKernelSource router_topk_source(const RouterTopkDesc& d) {
    if (d.experts < 1 || d.groups < 1 || d.experts % d.groups || d.groups_kept < 1 ||
        d.groups_kept > d.groups || d.group_top < 1 || d.group_top > d.experts / d.groups || d.top_k < 1 ||
        d.top_k > 32 || d.top_k > d.groups_kept * (d.experts / d.groups) || d.experts > 1024)
        throw std::invalid_argument(
            "router_topk: unsupported routing shape " + fields_print(d) +
            " (experts divisible by groups, groups_kept <= groups, top_k <= 32 and <= kept experts)");
    return layer_kernel_source(router_topk_name(d), "router_topk.cuh", kRouterThreads, "RouterTopkParams",
                               fmt::format("router_topk<{}, {}, {}, {}, {}, {}, {}>", d.experts, d.groups,
                                           d.groups_kept, d.group_top, d.top_k, d.sigmoid ? "true" : "false",
                                           d.normalize ? "true" : "false"));
}

Dim3 router_topk_grid(int tokens) {
    return Dim3{static_cast<unsigned>((tokens + 3) / 4), 1, 1};
}

const char* field_text(ElementwiseOp op) {
    switch (op) {
        case ElementwiseOp::embedding:
            return "embedding";
        case ElementwiseOp::silu_mul:
            return "silu_mul";
        case ElementwiseOp::add:
            return "add";
        case ElementwiseOp::cast:
            return "cast";
    }
    return "?";
}

bool field_parse(std::string_view s, ElementwiseOp& op) {
    for (ElementwiseOp o :
         {ElementwiseOp::embedding, ElementwiseOp::silu_mul, ElementwiseOp::add, ElementwiseOp::cast})
        if (s == field_text(o)) {
            op = o;
            return true;
        }
    return false;
}

std::string elementwise_name(const ElementwiseDesc& d) {
    return fields_name(d);
}

CudaKernelSource elementwise_source(const ElementwiseDesc& d) {
    const char* fn = nullptr;
    const char* params = nullptr;
    switch (d.op) {
        case ElementwiseOp::embedding:
            fn = "embedding_gather", params = "EmbeddingParams";
            break;
        case ElementwiseOp::silu_mul:
            fn = "silu_mul", params = "SiluMulParams";
            break;
        case ElementwiseOp::add:
            fn = "add_inplace", params = "ElementwiseParams";
            break;
        case ElementwiseOp::cast:
            fn = "cast", params = "ElementwiseParams";
            break;
    }
    return layer_kernel_source(elementwise_name(d), "elementwise.cuh", kEltThreads, params,
                               fmt::format("{}<{}, {}>", fn, cuda_device_type(d.src), cuda_device_type(d.dst)));
}

Dim3 elementwise_grid(long long elements) {
    const long long blocks = std::clamp<long long>((elements + kEltThreads - 1) / kEltThreads, 1, 4096);
    return Dim3{static_cast<unsigned>(blocks), 1, 1};
}

}  // namespace mf
