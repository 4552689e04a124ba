// SASS evidence for the producer/consumer MLA decode kernels (kernels/mla_decode_pc.cuh, mla_decode_pvfirst.cuh)
// next to the default: instruction counts (HGMMA, spills, warpgroup waits) and the S loop of pc1, printed into
// the benchmark log. Needs cuobjdump or nvdisasm (the device machine's CUDA toolkit), not a GPU; runs with the
// benchmark:
//   MOEFORGE_CUDA_BENCH=1 ./build/tests/test_codegen -tc='cuda bench*'
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "codegen/cuda/cuda_kernel_dump.hpp"
#include "codegen/cuda/mla_kernels.hpp"
#include "codegen/cuda/nvrtc_compiler.hpp"

using namespace mf;

namespace {

size_t count_of(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("cuda bench sass: producer/consumer MLA decode instruction counts and pc1's S loop") {
    const char* on = std::getenv("MOEFORGE_CUDA_BENCH");
    if (!on || std::string(on) != "1") {
        MESSAGE("skipped: set MOEFORGE_CUDA_BENCH=1 to run it (device machine, with the benchmark)");
        return;
    }
    if (!nvrtc_available() || find_sass_disassembler().empty()) {
        MESSAGE("skipped: needs NVRTC and cuobjdump or nvdisasm");
        return;
    }
    const MlaDecodeDesc d;
    MlaDecodeConfig def = mla_decode_default_config(d, 90), pc1 = def, pc2 = def;
    pc1.stages = 3;
    pc1.producer_consumer = 1;
    pc2.producer_consumer = 2;
    const MlaDecodeConfig configs[3] = {def, pc1, pc2};
    for (int ci = 0; ci < 3; ++ci) {
        const MlaDecodeConfig& c = configs[ci];
        const CudaKernelDump k = dump_cuda_kernel(mla_decode_source(d, c, 90), CudaArch{9, 0, true});
        REQUIRE_FALSE(k.sass.empty());
        std::printf("<!-- sass %s (%s): HGMMA %zu (64x32x16 %zu, 64x64x16 %zu, 64x256x16 %zu), WARPGROUP.ARRIVE %zu, "
                    "WARPGROUP.DEPBAR %zu, LDL %zu, STL %zu, USETMAXREG %zu -->\n",
                    k.name.c_str(), k.sass_tool.c_str(), count_of(k.sass, "HGMMA."), count_of(k.sass, "HGMMA.64x32x16"),
                    count_of(k.sass, "HGMMA.64x64x16"), count_of(k.sass, "HGMMA.64x256x16"),
                    count_of(k.sass, "WARPGROUP.ARRIVE"), count_of(k.sass, "WARPGROUP.DEPBAR"),
                    count_of(k.sass, "LDL"), count_of(k.sass, "STL"), count_of(k.sass, "USETMAXREG"));
        CHECK(count_of(k.sass, "HGMMA.") > 0);
        if (ci != 1) continue;
        // pc1's S loop: from a few instructions before the first m64n32k16 to past the 36th
        std::istringstream in(k.sass);
        std::vector<std::string> lines;
        for (std::string l; std::getline(in, l);) lines.push_back(l);
        size_t first = lines.size();
        for (size_t i = 0; i < lines.size() && first == lines.size(); ++i)
            if (lines[i].find("HGMMA.64x32x16") != std::string::npos) first = i;
        std::printf("<!-- sass pc1 S loop:\n");
        for (size_t i = first >= 8 ? first - 8 : 0, n = 0; i < lines.size() && n < 140; ++i, ++n)
            std::printf("%s\n", lines[i].c_str());
        std::printf("-->\n");
        std::fflush(stdout);
    }
}
