#include "model/tokenizer_pretokenize.hpp"

#include <algorithm>
#include <cstdint>

#include "model/unicode_class.hpp"
#include "model/unicode_utf8.hpp"

namespace mf {
namespace {

// The text as code points with their classes and byte offsets (off[n] == text.size()).
struct Chars {
    std::vector<uint32_t> cp;
    std::vector<CharClass> cls;
    std::vector<uint32_t> off;
};

bool is_cr_lf(uint32_t c) {
    return c == '\r' || c == '\n';
}
bool is_ascii_letter(uint32_t c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
bool is_ascii_punct(uint32_t c) {  // the 32 characters of [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
}
bool is_cjk(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x3040 && c <= 0x30FF);
}

// A rule: the length (in code points) of its match starting at i, the piece ending at `end`; 0 when none.
// Splits [begin, end) into matches and the text between them, like the Isolated behaviour, and hands each
// piece [a, b) to `emit`.
template <class Match, class Emit>
void split_isolated(const Chars& t, uint32_t begin, uint32_t end, Match match, Emit emit) {
    uint32_t gap = begin, i = begin;
    while (i < end) {
        const uint32_t len = match(t, i, end);
        if (len == 0) {
            ++i;
            continue;
        }
        if (gap < i) emit(gap, i);
        emit(i, i + len);
        i += len;
        gap = i;
    }
    if (gap < end) emit(gap, end);
}

// Rule 1: \p{N}{1,3}
uint32_t match_numbers(const Chars& t, uint32_t i, uint32_t end) {
    uint32_t j = i;
    while (j < end && j - i < 3 && t.cls[j] == CharClass::number) ++j;
    return j - i;
}

// Rule 2: [\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+
uint32_t match_cjk(const Chars& t, uint32_t i, uint32_t end) {
    uint32_t j = i;
    while (j < end && is_cjk(t.cp[j])) ++j;
    return j - i;
}

// Rule 3, alternative by alternative, each as its regex first matches (greedy, then backtracking).
uint32_t match_words(const Chars& t, uint32_t i, uint32_t end) {
    const auto cls = [&](uint32_t k) { return t.cls[k]; };
    const auto letter_or_mark = [&](uint32_t k) {
        return cls(k) == CharClass::letter || cls(k) == CharClass::mark;
    };
    const auto punct_or_symbol = [&](uint32_t k) {
        return cls(k) == CharClass::punct || cls(k) == CharClass::symbol;
    };
    const auto space = [&](uint32_t k) { return cls(k) == CharClass::space; };
    const auto run = [&](uint32_t k, auto pred) {
        while (k < end && pred(k)) ++k;
        return k;
    };
    const uint32_t c = t.cp[i];

    // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+
    if (is_ascii_punct(c) && i + 1 < end && is_ascii_letter(t.cp[i + 1]))
        return run(i + 1, [&](uint32_t k) { return is_ascii_letter(t.cp[k]); }) - i;

    // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ : the optional character is taken when letters or marks follow it.
    const bool optional_char = !is_cr_lf(c) && cls(i) != CharClass::letter && !punct_or_symbol(i);
    if (optional_char && i + 1 < end && letter_or_mark(i + 1)) return run(i + 1, letter_or_mark) - i;
    if (letter_or_mark(i)) return run(i, letter_or_mark) - i;

    // ' '?[\p{P}\p{S}]+[\r\n]*
    const uint32_t p = (c == ' ' && i + 1 < end && punct_or_symbol(i + 1)) ? i + 1 : i;
    if (punct_or_symbol(p))
        return run(run(p, punct_or_symbol), [&](uint32_t k) { return is_cr_lf(t.cp[k]); }) - i;

    if (!space(i)) return 0;
    const uint32_t ws_end = run(i, space);
    // \s*[\r\n]+ : \s* gives back characters until a CR or LF follows: the match ends at the last one.
    for (uint32_t k = ws_end; k > i; --k)
        if (is_cr_lf(t.cp[k - 1])) return k - i;
    // \s+(?!\S) : the whole run at the end of the piece, else all but its last character (before a \S).
    if (ws_end == end) return ws_end - i;
    if (ws_end - i >= 2) return ws_end - 1 - i;
    // \s+
    return ws_end - i;
}

}  // namespace

void pretokenize_deepseek_v3(std::string_view text, std::vector<std::string_view>& pieces) {
    Chars t;
    t.cp.reserve(text.size());
    t.cls.reserve(text.size());
    t.off.reserve(text.size() + 1);
    for (size_t i = 0; i < text.size();) {
        const Utf8Char c = decode_utf8(text.substr(i));
        t.cp.push_back(c.cp);
        t.cls.push_back(char_class(c.cp));
        t.off.push_back(uint32_t(i));
        i += c.len;
    }
    t.off.push_back(uint32_t(text.size()));

    const auto emit = [&](uint32_t a, uint32_t b) {
        pieces.push_back(text.substr(t.off[a], t.off[b] - t.off[a]));
    };
    split_isolated(t, 0, uint32_t(t.cp.size()), match_numbers, [&](uint32_t a1, uint32_t b1) {
        split_isolated(t, a1, b1, match_cjk,
                       [&](uint32_t a2, uint32_t b2) { split_isolated(t, a2, b2, match_words, emit); });
    });
}

size_t next_pretokenize_cut(std::string_view text, size_t from) {
    for (size_t p = std::max<size_t>(from, 1); p < text.size(); ++p) {
        p = text.find('\n', p - 1);
        if (p == std::string_view::npos || ++p >= text.size()) break;
        if (char_class(decode_utf8(text.substr(p)).cp) != CharClass::space) return p;
    }
    return std::string_view::npos;
}

}  // namespace mf
