// x86-64 disassembly of generated kernels for kernel-dump, through Zydis 4 (which names AMX instructions).
// Without Zydis (MOEFORGE_HAVE_ZYDIS unset) the listing is raw bytes, 16 per line.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace mf {

// One line per instruction: "  0x0040  c4e27b4b0c24   tileloadd tmm1, [rsp+r12*1]". text_bytes of code are
// decoded; the remaining (size - text_bytes) bytes are listed as data.
std::string disassemble_x64(const uint8_t* code, size_t size, size_t text_bytes);

bool have_disassembler();

}  // namespace mf
