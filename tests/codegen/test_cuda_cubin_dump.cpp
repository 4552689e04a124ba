// A refactor check for the CUDA kernels that needs no GPU: with MOEFORGE_CUBIN_DUMP=<dir> this writes the CUBIN of
// every MLA decode candidate (sm_90a and sm_80; 128 and 72 heads) and of its profiled build into <dir>. Dump before
// and after a change that should not change the machine code, then compare the .text sections:
//   MOEFORGE_CUBIN_DUMP=/tmp/before ./build/tests/test_codegen -tc='cuda nvrtc: MOEFORGE_CUBIN_DUMP*'
//   (change, rebuild)
//   MOEFORGE_CUBIN_DUMP=/tmp/after ./build/tests/test_codegen -tc='cuda nvrtc: MOEFORGE_CUBIN_DUMP*'
//   tools/cubin_text_diff.py /tmp/before /tmp/after
// Session 6 mended kernel duplicates this way (tests/bench/cuda_mla_decode_results.md) when no device time was left.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "codegen/cuda/mla_kernels.hpp"
#include "codegen/cuda/nvrtc_compiler.hpp"

using namespace mf;

TEST_CASE("cuda nvrtc: MOEFORGE_CUBIN_DUMP writes every MLA decode candidate's CUBIN (refactor check)") {
    const char* dir = std::getenv("MOEFORGE_CUBIN_DUMP");
    if (!dir || !*dir) {
        MESSAGE("skipped: set MOEFORGE_CUBIN_DUMP=<dir> to write the CUBINs (a check before and after a refactor)");
        return;
    }
    if (!nvrtc_available()) {
        MESSAGE("skipped: moeforge was built without NVRTC");
        return;
    }
    std::filesystem::create_directories(dir);
    int written = 0;
    for (int heads : {128, 72}) {
        MlaDecodeDesc d;
        d.heads = heads;
        for (int sm : {90, 80}) {
            const CudaArch arch = sm == 90 ? CudaArch{9, 0, true} : CudaArch{8, 0, false};
            for (const MlaDecodeConfig& c : mla_decode_candidates(d, sm)) {
                for (int profile : {0, 1}) {
                    MlaDecodeConfig x = c;
                    x.profile = profile;
                    if (profile && (!c.wgmma || !mla_decode_unsupported(d, x, sm).empty())) continue;
                    const CudaKernelSource src = mla_decode_source(d, x, sm);
                    const CudaBinary bin = compile_cuda_kernel(src, arch, {});
                    CHECK(cubin_has_symbol(bin.cubin, src.name));
                    std::ofstream(std::string(dir) + "/" + src.name + "_sm" + std::to_string(sm) + ".cubin",
                                  std::ios::binary)
                        << bin.cubin;
                    ++written;
                }
            }
        }
    }
    MESSAGE(written << " CUBINs written to " << std::string(dir));
    CHECK(written > 0);
}
