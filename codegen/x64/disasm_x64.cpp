#include "codegen/x64/disasm_x64.hpp"

#include <fmt/format.h>

#ifdef MOEFORGE_HAVE_ZYDIS
#include <Zydis/Zydis.h>
#endif

namespace mf {
namespace {

std::string hex_bytes(const uint8_t* p, size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += fmt::format("{:02x}", p[i]);
    return s;
}

std::string raw_lines(const uint8_t* code, size_t from, size_t to, const char* what) {
    std::string out;
    for (size_t off = from; off < to; off += 16)
        out += fmt::format("  0x{:04x}  {:<32} ({})\n", off,
                           hex_bytes(code + off, std::min<size_t>(16, to - off)), what);
    return out;
}

}  // namespace

bool have_disassembler() {
#ifdef MOEFORGE_HAVE_ZYDIS
    return true;
#else
    return false;
#endif
}

std::string disassemble_x64(const uint8_t* code, size_t size, size_t text_bytes) {
    text_bytes = std::min(text_bytes, size);
#ifdef MOEFORGE_HAVE_ZYDIS
    std::string out;
    size_t off = 0;
    while (off < text_bytes) {
        ZydisDisassembledInstruction insn;
        if (!ZYAN_SUCCESS(ZydisDisassembleIntel(ZYDIS_MACHINE_MODE_LONG_64, off, code + off, text_bytes - off,
                                                &insn))) {
            out += fmt::format("  0x{:04x}  {:<24} (undecodable)\n", off, hex_bytes(code + off, 1));
            ++off;
            continue;
        }
        const size_t len = insn.info.length;
        out += fmt::format("  0x{:04x}  {:<24} {}\n", off, hex_bytes(code + off, len), insn.text);
        off += len;
    }
    return out + raw_lines(code, text_bytes, size, "data");
#else
    return raw_lines(code, 0, text_bytes, "code; built without Zydis") +
           raw_lines(code, text_bytes, size, "data");
#endif
}

}  // namespace mf
