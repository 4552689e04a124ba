// UTF-8 decoding and encoding with the WHATWG replacement rules: what the JavaScript reference tokenizer (and
// a browser) does to bytes that are not valid UTF-8.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace mf {

// One decoded code point: its value and its length in the source bytes (1..4).
struct Utf8Char {
    uint32_t cp;
    uint32_t len;
};

// Decodes the code point at the start of `src` (not empty). An ill-formed sequence yields U+FFFD for its
// maximal subpart (WHATWG / Unicode "U+FFFD substitution of maximal subparts"), so `len` is then 1..3.
// `valid` says whether the bytes were well-formed.
Utf8Char decode_utf8(std::string_view src, bool* valid = nullptr);

// `src` with every ill-formed subsequence replaced by U+FFFD (EF BF BD); valid input comes back unchanged.
std::string sanitize_utf8(std::string_view src);

// Appends the UTF-8 encoding of `cp` (<= U+10FFFF, not a surrogate) to dst.
void append_utf8(std::string& dst, uint32_t cp);

// Length of the longest prefix of `src` made of complete, well-formed UTF-8 characters, and whether the rest
// is the beginning of a well-formed character that more bytes could complete.
struct Utf8Prefix {
    size_t complete;
    bool rest_incomplete;
};
Utf8Prefix complete_utf8_prefix(std::string_view src);

}  // namespace mf
