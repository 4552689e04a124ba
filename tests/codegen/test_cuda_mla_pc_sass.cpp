// SASS evidence for the wgmma-family MLA decode kernels (the default, kernels/mla_decode_pc.cuh,
// mla_decode_pvfirst.cuh, mla_decode_seesaw.cuh): instruction counts (HGMMA, spills, warpgroup waits) and the
// uniform-datapath instructions that issue S = Q K^T (the descriptor arithmetic between its HGMMAs), printed into
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

// One disassembled instruction: its text ("UIADD3 UR8, UR4, 0x2, URZ") and opcode ("UIADD3"), predicate dropped.
struct SassInstr {
    std::string text, opcode;
};

// Instruction lines of cuobjdump / nvdisasm output: "/*0470*/  @P0 OPCODE operands ;  /* encoding */".
std::vector<SassInstr> sass_instructions(const std::string& sass) {
    std::vector<SassInstr> out;
    std::istringstream in(sass);
    for (std::string l; std::getline(in, l);) {
        const size_t open = l.find_first_not_of(" \t");
        if (open == std::string::npos || l.compare(open, 2, "/*") != 0) continue;
        const size_t close = l.find("*/", open);
        if (close == std::string::npos) continue;
        size_t at = l.find_first_not_of(" \t", close + 2);
        if (at == std::string::npos || l.compare(at, 2, "/*") == 0) continue;  // an encoding-only line
        const size_t semi = l.find(';', at);
        std::string text = l.substr(at, semi == std::string::npos ? std::string::npos : semi - at);
        std::istringstream words(text);
        std::string op;
        words >> op;
        if (!op.empty() && op[0] == '@') words >> op;
        out.push_back({text, op});
    }
    return out;
}

// The uniform datapath (descriptor arithmetic runs there): U* opcodes and the moves into uniform registers.
bool uniform_op(const std::string& op) {
    return (!op.empty() && op[0] == 'U') || op.rfind("R2UR", 0) == 0 || op.rfind("S2UR", 0) == 0;
}

// S's issue: from the WARPGROUP.ARRIVE before the first HGMMA of `shape` to its `steps`-th HGMMA of that shape.
struct SIssue {
    size_t begin = 0, end = 0;  // instruction range [begin, end)
    int hgmma = 0, uniform = 0;
};

SIssue s_issue(const std::vector<SassInstr>& code, const std::string& shape, int steps) {
    SIssue w;
    size_t first = code.size();
    for (size_t i = 0; i < code.size() && first == code.size(); ++i)
        if (code[i].text.find(shape) != std::string::npos) first = i;
    if (first == code.size()) return w;
    w.begin = first;
    while (w.begin > 0 && code[w.begin].opcode.rfind("WARPGROUP.ARRIVE", 0) != 0 && first - w.begin < 64) --w.begin;
    for (w.end = w.begin; w.end < code.size() && w.hgmma < steps; ++w.end) {
        if (code[w.end].text.find(shape) != std::string::npos) ++w.hgmma;
        if (uniform_op(code[w.end].opcode)) ++w.uniform;
    }
    return w;
}

}  // namespace

TEST_CASE("cuda bench sass: wgmma MLA decode instruction counts and uniform-datapath instructions per S k-step") {
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
    // "default": the session 5-7 default (bw0), whose S window holds only the k-steps' descriptor adds (the check
    // below); the default waits box by box since session 8 (bw1 pvo2: mbarrier waits inside S's window, printed only)
    const MlaDecodeConfig bw1 = mla_decode_default_config(d, 90);  // (and pv_overlap 2)
    MlaDecodeConfig def = bw1;
    def.tile_box_wait = def.pv_overlap = 0;
    MlaDecodeConfig base = def;
    base.prologue = base.fused_combine = base.merge_loads = 0;  // the other schedules: no fused epilogue
    MlaDecodeConfig pc1 = base, pc2 = base, ss = base, pc4 = base, pc8 = base;
    pc1.stages = 3;
    pc1.producer_consumer = 1;
    pc2.producer_consumer = 2;
    ss.seesaw = 1;
    pc4.producer_consumer = 4;  // P V late, fast softmax (S of tile 0 is the first run of 36 HGMMA.64x64x16)
    pc4.softmax_fast = 1;
    pc8.producer_consumer = 8;  // session 7: warpgroup 0's P from registers, 8 exponentials a thread on the FP32 pipe
    pc8.softmax_fast = 3;
    struct Case {
        const char* label;
        MlaDecodeConfig config;
        const char* s_shape;  // the HGMMA of S = Q K^T and its k-steps per S
        int s_steps;
    };
    const Case cases[7] = {{"default", def, "HGMMA.64x64x16", 36},
                           {"default bw1", bw1, "HGMMA.64x64x16", 36},
                           {"pc1", pc1, "HGMMA.64x32x16", 36},
                           {"pc2", pc2, "HGMMA.64x64x16", 36},
                           {"seesaw", ss, "HGMMA.64x64x16", 36},
                           {"pc4 sf1", pc4, "HGMMA.64x64x16", 36},
                           {"pc8 sf3", pc8, "HGMMA.64x64x16", 36}};
    for (const Case& c : cases) {
        const CudaKernelDump k = dump_cuda_kernel(mla_decode_source(d, c.config, 90), CudaArch{9, 0, true});
        REQUIRE_FALSE(k.sass.empty());
        std::printf("<!-- sass %s %s (%s): HGMMA %zu (64x32x16 %zu, 64x64x16 %zu, 64x128x16 %zu, 64x256x16 %zu), "
                    "WARPGROUP.ARRIVE %zu, WARPGROUP.DEPBAR %zu, LDL %zu, STL %zu, USETMAXREG %zu, STSM %zu, "
                    "MUFU.EX2 %zu -->\n",
                    c.label, k.name.c_str(), k.sass_tool.c_str(), count_of(k.sass, "HGMMA."),
                    count_of(k.sass, "HGMMA.64x32x16"), count_of(k.sass, "HGMMA.64x64x16"),
                    count_of(k.sass, "HGMMA.64x128x16"), count_of(k.sass, "HGMMA.64x256x16"), count_of(k.sass, "WARPGROUP.ARRIVE"),
                    count_of(k.sass, "WARPGROUP.DEPBAR"), count_of(k.sass, "LDL"), count_of(k.sass, "STL"),
                    count_of(k.sass, "USETMAXREG"), count_of(k.sass, "STSM"), count_of(k.sass, "MUFU.EX2"));
        CHECK(count_of(k.sass, "HGMMA.") > 0);
        const std::vector<SassInstr> code = sass_instructions(k.sass);
        const SIssue s = s_issue(code, c.s_shape, c.s_steps);
        REQUIRE(s.hgmma == c.s_steps);
        const double per_step = (double)s.uniform / s.hgmma;
        std::printf("<!-- sass %s S issue: %d %s in %zu instructions, %d on the uniform datapath (%.2f per k-step; "
                    "session 4, descriptors recomputed per wgmma: ~10) -->\n",
                    c.label, s.hgmma, c.s_shape, s.end - s.begin, s.uniform, per_step);
        if (c.label == std::string("default")) {  // the first k-steps, for the record
            std::printf("<!-- sass default S issue, first instructions:\n");
            for (size_t i = s.begin; i < s.end && i < s.begin + 40; ++i) std::printf("  %s\n", code[i].text.c_str());
            std::printf("-->\n");
        }
        std::fflush(stdout);
        // the default: each k-step's two descriptors are the tile's base descriptors plus a constant, one 32-bit
        // add each (wgmma_desc_add), plus at most the moves of the unchanged high words into the HGMMA's register
        // quad (~4); recomputed descriptors took ~10 (session 4's SASS)
        if (c.label == std::string("default")) CHECK(per_step < 7.0);
        // P V late with the fast softmax: no spills, P by stmatrix (4 per softmax: tile 0 and the loop)
        if (c.label == std::string("pc4 sf1")) {
            CHECK(count_of(k.sass, "LDL") == 0);
            CHECK(count_of(k.sass, "STL") == 0);
            CHECK(count_of(k.sass, "STSM") == 8);
        }
        // ... and with P from registers for warpgroup 0: 2 x 2 alpha + 2 x 24 of the 32 p on the MUFU (tile 0 and the
        // loop), warpgroup 1's P still by stmatrix
        if (c.label == std::string("pc8 sf3")) {
            CHECK(count_of(k.sass, "LDL") == 0);
            CHECK(count_of(k.sass, "STL") == 0);
            CHECK(count_of(k.sass, "STSM") == 8);
            CHECK(count_of(k.sass, "MUFU.EX2") == 2 * (2 + 24));
            CHECK(count_of(k.sass, "HGMMA.64x256x16") == 12);
        }
    }
}
