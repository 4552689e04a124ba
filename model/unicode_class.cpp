#include "model/unicode_class.hpp"

#include <algorithm>
#include <array>

namespace mf {

extern const CharClassRange kCharClassRanges[];
extern const int kCharClassRangeCount;

namespace {

CharClass search_ranges(uint32_t cp) {
    const CharClassRange* end = kCharClassRanges + kCharClassRangeCount;
    const CharClassRange* it = std::upper_bound(
        kCharClassRanges, end, cp, [](uint32_t c, const CharClassRange& r) { return c < r.first; });
    return it == kCharClassRanges ? CharClass::other : (it - 1)->cls;
}

// The Basic Multilingual Plane, where nearly all text lives, as a flat 64 KiB table built on first use.
struct BmpTable {
    std::array<CharClass, 0x10000> cls;
    BmpTable() {
        for (uint32_t cp = 0; cp < 0x10000; ++cp) cls[cp] = search_ranges(cp);
    }
};

}  // namespace

CharClass char_class(uint32_t cp) {
    static const BmpTable bmp;
    if (cp < 0x10000) return bmp.cls[cp];
    return cp > 0x10FFFF ? CharClass::other : search_ranges(cp);
}

}  // namespace mf
