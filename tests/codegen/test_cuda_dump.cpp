// kernel-dump's CUDA part: source, includes and PTX (NVRTC only); SASS only where a disassembler is
// installed.
#include <doctest/doctest.h>

#include "codegen/cuda/cuda_kernel_dump.hpp"
#include "codegen/cuda/mla_kernels.hpp"
#include "codegen/cuda/nvrtc_compiler.hpp"

using namespace mf;

TEST_CASE("cuda dump: MLA decode source, includes, PTX and SASS when a disassembler exists") {
    if (!nvrtc_available()) {
        MESSAGE("skipped: built without NVRTC");
        return;
    }
    const MlaDecodeDesc d;
    const MlaDecodeConfig c{64, 2};
    const CudaKernelDump dump = dump_cuda_kernel(mla_decode_source(d, c, 90), CudaArch{9, 0, true});
    CHECK(dump.name == mla_decode_name(d, c));
    CHECK(dump.arch == "sm_90a");
    CHECK(dump.source.find(dump.name) != std::string::npos);
    CHECK(dump.includes == std::vector<std::string>{"mla_decode.cuh", "bf16.cuh", "cluster_sm90.cuh",
                                                    "grid_dependency.cuh", "mla_params.cuh", "mma_sm80.cuh"});
    CHECK(dump.ptx.find(".entry " + dump.name) != std::string::npos);
    CHECK(dump.cubin_bytes > 1000);
    if (find_sass_disassembler().empty()) {
        CHECK(dump.sass.empty());
        CHECK(dump.sass_missing.find("cuobjdump") != std::string::npos);
        MESSAGE("no SASS disassembler here: " << dump.sass_missing);
    } else {
        CHECK(dump.sass.find("HMMA") != std::string::npos);
        CHECK(dump.sass.find("LDSM") != std::string::npos);
    }
}
