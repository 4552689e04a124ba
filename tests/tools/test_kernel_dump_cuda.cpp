#include <doctest/doctest.h>

#include <string>

#include "codegen/cuda/mla_kernels.hpp"
#include "runtime/plan.hpp"
#include "tools/kernel_dump_cuda.hpp"

TEST_CASE("kernel-dump --cuda lists every GPU kernel of a layer with its source and PTX size") {
#ifndef MOEFORGE_HAVE_CUDA
    MESSAGE("skipped: moeforge was built without the CUDA toolkit, so there is no NVRTC");
#else
    mf::CudaDumpOptions o;
    o.sm = 90;
    const std::string out = mf::render_cuda_kernel_dump(o);
    CHECK(out.find("for sm_90a") != std::string::npos);
    for (const char* family : {"== mla_decode_", "== mla_combine_", "== rms_norm_", "== rope_", "== router_topk_"})
        CHECK(out.find(family) != std::string::npos);
    CHECK(out.find("extern \"C\" __global__") != std::string::npos);
    CHECK(out.find("--- ptx: ") != std::string::npos);
    CHECK(out.find("mla_decode.cuh") != std::string::npos);

    o.filter = "rms_norm";
    o.ptx = true;
    o.sm = 86;
    const std::string norm = mf::render_cuda_kernel_dump(o);
    CHECK(norm.find("== rms_norm_") != std::string::npos);
    CHECK(norm.find("== mla_decode_") == std::string::npos);
    CHECK(norm.find(".target sm_86") != std::string::npos);  // the PTX itself, for the asked arch
#endif
}

TEST_CASE("kernel-dump --cuda shows the plan's tuned MLA decode kernels instead of the default") {
#ifndef MOEFORGE_HAVE_CUDA
    MESSAGE("skipped: moeforge was built without the CUDA toolkit, so there is no NVRTC");
#else
    const mf::MlaDecodeDesc d;
    // (shown as the runtime launches it, behind the cache append)
    const mf::MlaDecodeConfig def = mf::mla_decode_after_append_config(d, mf::mla_decode_default_config(d, 90), 90);
    const mf::MlaDecodeConfig tuned{32, 2, 4}, other_arch_only{64, 2, 8};
    mf::Plan plan = mf::default_plan("0123456789abcdef", mf::ModelShape{});
    plan.source = "plan-test.json";
    plan.gpu.name = "Test GPU";
    plan.gpu.sm = 90;
    const std::pair<int, int> ranges[] = {{1, 2896}, {2897, 16384}, {16385, 1 << 30}};
    const mf::MlaDecodeConfig cfgs[] = {tuned, tuned, other_arch_only};
    for (int i = 0; i < 3; ++i) {
        mf::PlannedKernel k;
        k.family = "mla_decode";
        k.role = "decode";
        k.desc = mf::fields_to_json(d);
        k.config = mf::fields_to_json(cfgs[i]);
        k.m_min = ranges[i].first;
        k.m_max = ranges[i].second;
        plan.kernels.push_back(k);
    }
    mf::CudaDumpOptions o;
    o.sm = 90;
    o.plan = &plan;
    o.filter = "mla_decode";
    const std::string out = mf::render_cuda_kernel_dump(o);
    CHECK(out.find("the plan plan-test.json (tuned on Test GPU, sm_90)") != std::string::npos);
    CHECK(out.find("== " + mf::mla_decode_name(d, tuned)) != std::string::npos);
    CHECK(out.find("== " + mf::mla_decode_name(d, other_arch_only)) != std::string::npos);
    if (!(def == tuned) && !(def == other_arch_only))
        CHECK(out.find("== " + mf::mla_decode_name(d, def)) == std::string::npos);
    CHECK(out.find("contexts 1-2896: " + mf::mla_decode_name(d, tuned)) != std::string::npos);
    // On an arch without clusters the plan's cluster kernels are named as unsupported, not compiled.
    o.sm = 86;
    const std::string ampere = mf::render_cuda_kernel_dump(o);
    CHECK(ampere.find("is not supported on sm_86") != std::string::npos);
    CHECK(ampere.find("== " + mf::mla_decode_name(d, tuned)) == std::string::npos);
    // A plan without CUDA kernels says so and shows the defaults.
    mf::Plan cpu = mf::default_plan("0123456789abcdef", mf::ModelShape{});
    cpu.source = "cpu-plan.json";
    o.plan = &cpu;
    o.sm = 90;
    const std::string defaults = mf::render_cuda_kernel_dump(o);
    CHECK(defaults.find("cpu-plan.json has no CUDA kernels") != std::string::npos);
    CHECK(defaults.find("== " + mf::mla_decode_name(d, def)) != std::string::npos);
#endif
}
