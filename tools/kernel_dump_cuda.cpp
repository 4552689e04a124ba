#include "tools/kernel_dump_cuda.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "codegen/cuda/cuda_driver.hpp"
#include "codegen/cuda/cuda_kernel_dump.hpp"
#include "codegen/cuda/layer_kernels.hpp"
#include "codegen/cuda/mla_kernels.hpp"
#include "runtime/plan.hpp"

namespace mf {
namespace {

int default_sm() {
    const GpuQuery q = query_cuda_gpus();
    return q.gpus.empty() ? 90 : q.gpus[0].cc_major * 10 + q.gpus[0].cc_minor;
}

size_t count_lines(const std::string& s) {
    size_t n = 0;
    for (char c : s) n += c == '\n';
    return n;
}

}  // namespace

std::string render_cuda_kernel_dump(const CudaDumpOptions& o) {
    const int sm = o.sm > 0 ? o.sm : default_sm();
    const CudaArch arch = CudaArch::for_device(sm / 10, sm % 10);
    MlaDecodeDesc mla{};  // DeepSeek-V3: 128 heads, 512 latent + 64 rope, pages of 64 tokens, bf16
    std::vector<CudaKernelSource> sources;
    std::string origin = "defaults";
    bool bf16_partials = false;  // a plan's config writes bf16 partials: its combine variant too
    if (o.plan) {
        std::vector<std::string> uses;
        for (const PlannedKernel& k : o.plan->kernels) {
            if (k.family != "mla_decode") continue;
            mla = fields_from_json<MlaDecodeDesc>(k.desc);
            // as the runtime launches it: behind the cache append
            const MlaDecodeConfig c =
                mla_decode_after_append_config(mla, fields_from_json<MlaDecodeConfig>(k.config), sm);
            const std::string range = k.m_max >= (1 << 29) ? fmt::format("{}+", k.m_min)
                                                           : fmt::format("{}-{}", k.m_min, k.m_max);
            if (const std::string why = mla_decode_unsupported(mla, c, sm); !why.empty()) {
                uses.push_back(fmt::format("contexts {}: {} is not supported on sm_{} ({})", range,
                                           mla_decode_name(mla, c), sm, why));
                continue;
            }
            uses.push_back(fmt::format("contexts {}: {}", range, mla_decode_name(mla, c)));
            bf16_partials = bf16_partials || c.partial_bf16;
            if (std::none_of(sources.begin(), sources.end(),
                             [&](const CudaKernelSource& s) { return s.name == mla_decode_name(mla, c); }))
                sources.push_back(mla_decode_source(mla, c, sm));
        }
        std::string list;
        for (const auto& u : uses) list += "\n  " + u;
        origin = uses.empty() ? fmt::format("defaults: the plan {} has no CUDA kernels (tune on a machine with "
                                               "a GPU)",
                                               o.plan->source)
                                 : fmt::format("the plan {} (tuned on {}, sm_{}):{}", o.plan->source,
                                               o.plan->gpu.name, o.plan->gpu.sm, list);
    }
    if (sources.empty())  // no plan, a plan without CUDA kernels, or none of them runs on this arch
        sources.push_back(
            mla_decode_source(mla, mla_decode_after_append_config(mla, mla_decode_default_config(mla, sm), sm), sm));
    if (bf16_partials) sources.push_back(mla_combine_source(mla, true));
    for (CudaKernelSource s : {
        mla_combine_source(mla),
        kv_append_source(mla),
        rms_norm_source(RmsNormDesc{}),
        rope_source(RopeDesc{}),
        router_topk_source(RouterTopkDesc{}),
    })
        sources.push_back(std::move(s));
    for (ElementwiseOp op : {ElementwiseOp::embedding, ElementwiseOp::silu_mul, ElementwiseOp::add, ElementwiseOp::cast})
        sources.push_back(elementwise_source(ElementwiseDesc{op}));

    std::string out = fmt::format("CUDA kernels of a DeepSeek-V3 layer for {} ({})\n\n", arch.sm_name(), origin);
    for (const CudaKernelSource& src : sources) {
        if (!o.filter.empty() && src.name.find(o.filter) == std::string::npos) continue;
        const CudaKernelDump d = dump_cuda_kernel(src, arch);
        std::string includes;
        for (const auto& h : d.includes) includes += (includes.empty() ? "" : " ") + h;
        out += fmt::format("== {}\n  arch:     {}, cubin {} bytes, {} threads per block, {} B dynamic shared memory\n"
                           "  includes: {}\n--- source\n{}\n",
                           d.name, d.arch, d.cubin_bytes, src.block_threads, src.dynamic_smem_bytes, includes,
                           d.source);
        if (o.ptx)
            out += "--- ptx\n" + d.ptx + "\n";
        else
            out += fmt::format("--- ptx: {} lines (--ptx prints them)\n", count_lines(d.ptx));
        out += d.sass.empty() ? fmt::format("--- sass: {}\n\n", d.sass_missing)
                              : fmt::format("--- sass ({})\n{}\n", d.sass_tool, d.sass);
    }
    return out;
}

}  // namespace mf
