// kernel-dump's disassembly: Zydis must name the AMX and VNNI instructions our generators emit.
#include <doctest/doctest.h>

#include "codegen/kernel_cache.hpp"
#include "codegen/x64/disasm_x64.hpp"

using namespace mf;

TEST_CASE("Zydis decodes AMX tile instructions and VNNI from generated kernels") {
    if (!have_disassembler()) {
        MESSAGE("built without Zydis: skipped");
        return;
    }
    KernelCache cache;
    const auto& amx =
        cache.require(AmxGemmDesc{WeightType::int8, 256}, AmxGemmConfig{2, 2, LoopOrder::nm, 0});
    const std::string a =
        disassemble_x64(static_cast<const uint8_t*>(amx.entry()), amx.code_size(), amx.text_size());
    CHECK(a.find("ldtilecfg") != std::string::npos);
    CHECK(a.find("tileloadd tmm") != std::string::npos);
    CHECK(a.find("tdpbsud tmm0, tmm4, tmm6") != std::string::npos);
    CHECK(a.find("tilestored") != std::string::npos);
    CHECK(a.find("tilerelease") != std::string::npos);
    CHECK(a.find("(data)") != std::string::npos);  // the tile configuration after the code
    CHECK(a.find("undecodable") == std::string::npos);
    const auto& gemv = cache.require(GemvDesc{WeightType::int8, 256, 3}, GemvConfig{2, 8, 4});
    const std::string g =
        disassemble_x64(static_cast<const uint8_t*>(gemv.entry()), gemv.code_size(), gemv.text_size());
    CHECK(g.find("vpdpbusd zmm") != std::string::npos);
    CHECK(g.find("{1to16}") != std::string::npos);
    CHECK(g.find("prefetcht0") != std::string::npos);
}
