#include "codegen/cuda/layer_kernels.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace mf {

namespace {
constexpr unsigned kNormThreads = 256, kRopeThreads = 128, kRouterThreads = 128, kEltThreads = 256;
}

std::string rms_norm_name(const RmsNormDesc& d) {
    return "rms_norm_" + fields_name(d);
}

CudaKernelSource rms_norm_source(const RmsNormDesc& d) {
    if (d.dim < 1) throw std::invalid_argument("rms_norm: dim must be positive");
    CudaKernelSource s{rms_norm_name(d), "", kNormThreads, 0};
    s.source = fmt::format(
        "#include \"rms_norm.cuh\"\n"
        "extern \"C\" __global__ void __launch_bounds__({0}) {1}(const mf::RmsNormParams p) {{\n"
        "    mf::rms_norm<{2}, {3}, {4}, {0}>(p);\n"
        "}}\n",
        kNormThreads, s.name, cuda_device_type(d.src), cuda_device_type(d.dst), d.dim);
    return s;
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
    CudaKernelSource s{rope_name(d), "", kRopeThreads, 0};
    s.source = fmt::format(
        "#include \"rope.cuh\"\n"
        "extern \"C\" __global__ void __launch_bounds__({0}) {1}(const mf::RopeParams p) {{\n"
        "    mf::rope<{2}, {3}, {4}>(p);\n"
        "}}\n",
        kRopeThreads, s.name, cuda_device_type(d.dtype), d.rope_dim, d.interleaved ? "true" : "false");
    return s;
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
    CudaKernelSource s{router_topk_name(d), "", kRouterThreads, 0};
    s.source = fmt::format(
        "#include \"router_topk.cuh\"\n"
        "extern \"C\" __global__ void __launch_bounds__({0}) {1}(const mf::RouterTopkParams p) {{\n"
        "    mf::router_topk<{2}, {3}, {4}, {5}, {6}, {7}, {8}>(p);\n"
        "}}\n",
        kRouterThreads, s.name, d.experts, d.groups, d.groups_kept, d.group_top, d.top_k,
        d.sigmoid ? "true" : "false", d.normalize ? "true" : "false");
    return s;
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
    CudaKernelSource s{elementwise_name(d), "", kEltThreads, 0};
    s.source = fmt::format(
        "#include \"elementwise.cuh\"\n"
        "extern \"C\" __global__ void __launch_bounds__({0}) {1}(const mf::{2} p) {{\n"
        "    mf::{3}<{4}, {5}>(p);\n"
        "}}\n",
        kEltThreads, s.name, params, fn, cuda_device_type(d.src), cuda_device_type(d.dst));
    return s;
}

Dim3 elementwise_grid(long long elements) {
    const long long blocks = std::clamp<long long>((elements + kEltThreads - 1) / kEltThreads, 1, 4096);
    return Dim3{static_cast<unsigned>(blocks), 1, 1};
}

}  // namespace mf
