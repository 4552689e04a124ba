#include "model/unicode_utf8.hpp"

namespace mf {
namespace {

enum class Status { ok, invalid, truncated };

struct Decoded {
    uint32_t cp;
    uint32_t len;  // bytes consumed: the whole character, or the maximal subpart of an ill-formed one
    Status status;
};

// The table of well-formed UTF-8 (Unicode 15, table 3-7): the lead byte fixes the length and the range of the
// second byte; every other continuation byte is 80..BF.
Decoded decode(std::string_view s) {
    const auto b = [&](size_t i) { return uint8_t(s[i]); };
    const uint8_t b0 = b(0);
    if (b0 < 0x80) return {b0, 1, Status::ok};
    uint32_t need, cp;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1, cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2, cp = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
        if (b0 == 0xED) hi = 0x9F;  // no surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3, cp = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;  // no overlong forms
        if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    } else {
        return {0xFFFD, 1, Status::invalid};  // a continuation byte, C0, C1 or F5..FF
    }
    for (uint32_t i = 1; i <= need; ++i) {
        if (i >= s.size()) return {0xFFFD, i, Status::truncated};
        const uint8_t c = b(i);
        if (c < lo || c > hi) return {0xFFFD, i, Status::invalid};
        lo = 0x80, hi = 0xBF;
        cp = (cp << 6) | (c & 0x3F);
    }
    return {cp, need + 1, Status::ok};
}

}  // namespace

Utf8Char decode_utf8(std::string_view src, bool* valid) {
    const Decoded d = decode(src);
    if (valid) *valid = d.status == Status::ok;
    return {d.cp, d.len};
}

void append_utf8(std::string& dst, uint32_t cp) {
    if (cp < 0x80) {
        dst += char(cp);
    } else if (cp < 0x800) {
        dst += char(0xC0 | (cp >> 6));
        dst += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        dst += char(0xE0 | (cp >> 12));
        dst += char(0x80 | ((cp >> 6) & 0x3F));
        dst += char(0x80 | (cp & 0x3F));
    } else {
        dst += char(0xF0 | (cp >> 18));
        dst += char(0x80 | ((cp >> 12) & 0x3F));
        dst += char(0x80 | ((cp >> 6) & 0x3F));
        dst += char(0x80 | (cp & 0x3F));
    }
}

std::string sanitize_utf8(std::string_view src) {
    std::string dst;
    dst.reserve(src.size());
    size_t i = 0;
    while (i < src.size()) {
        // Copy runs of ASCII and well-formed characters as they are.
        const Decoded d = decode(src.substr(i));
        if (d.status == Status::ok)
            dst.append(src.data() + i, d.len);
        else
            dst += "\xEF\xBF\xBD";
        i += d.len;
    }
    return dst;
}

Utf8Prefix complete_utf8_prefix(std::string_view src) {
    size_t i = 0;
    while (i < src.size()) {
        const Decoded d = decode(src.substr(i));
        if (d.status != Status::ok) return {i, d.status == Status::truncated};
        i += d.len;
    }
    return {i, false};
}

}  // namespace mf
