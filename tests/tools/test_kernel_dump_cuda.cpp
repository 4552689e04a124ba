#include <doctest/doctest.h>

#include <string>

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
