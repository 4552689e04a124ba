// UTF-8 decoding with WHATWG replacement, the character class table, and DeepSeek-V3's pre-tokenizer rules
// (expected splits worked out by hand from the regexes in tokenizer.json).
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "model/tokenizer_pretokenize.hpp"
#include "model/unicode_class.hpp"
#include "model/unicode_utf8.hpp"

namespace mf {
namespace {

std::vector<std::string> pretokenize(std::string_view text) {
    std::vector<std::string_view> pieces;
    pretokenize_deepseek_v3(text, pieces);
    return {pieces.begin(), pieces.end()};
}

using Pieces = std::vector<std::string>;

}  // namespace

TEST_CASE("decode_utf8 decodes every length and reports maximal subparts of ill-formed sequences") {
    struct Case {
        std::string bytes;
        uint32_t cp, len;
        bool valid;
    };
    const Case cases[] = {
        {"A", 0x41, 1, true},
        {"\xC3\xA9", 0xE9, 2, true},
        {"\xE4\xB8\xAD", 0x4E2D, 3, true},
        {"\xF0\x9F\x98\x80", 0x1F600, 4, true},
        {"\xF4\x8F\xBF\xBF", 0x10FFFF, 4, true},
        {"\x80", 0xFFFD, 1, false},              // lone continuation byte
        {"\xC0\xAF", 0xFFFD, 1, false},          // C0/C1 never start a character
        {"\xE0\x80\xAF", 0xFFFD, 1, false},      // overlong: E0 needs A0..BF next
        {"\xED\xA0\x80", 0xFFFD, 1, false},      // a surrogate: ED needs 80..9F next
        {"\xF4\x90\x80\x80", 0xFFFD, 1, false},  // above U+10FFFF
        {"\xF5\x80", 0xFFFD, 1, false},
        {"\xE4\xB8", 0xFFFD, 2, false},          // truncated: the two bytes are one maximal subpart
        {"\xF0\x9F\x98x", 0xFFFD, 3, false},
    };
    for (const Case& c : cases) {
        CAPTURE(c.bytes);
        bool valid = !c.valid;
        const Utf8Char d = decode_utf8(c.bytes, &valid);
        CHECK(d.cp == c.cp);
        CHECK(d.len == c.len);
        CHECK(valid == c.valid);
    }
}

TEST_CASE("sanitize_utf8 replaces ill-formed bytes as a WHATWG decoder (and node's Buffer) does") {
    const std::string r = "\xEF\xBF\xBD";
    CHECK(sanitize_utf8("plain ascii") == "plain ascii");
    CHECK(sanitize_utf8("中文 😀") == "中文 😀");
    CHECK(sanitize_utf8("a\xFF\xED\xA0\x80" "b") == "a" + r + r + r + r + "b");  // checked in node: 4 x U+FFFD
    CHECK(sanitize_utf8("\xE0\x80\xAF") == r + r + r);
    CHECK(sanitize_utf8("\xE4\xB8x") == r + "x");
    CHECK(sanitize_utf8("x\xF0\x9F\x98") == "x" + r);
    CHECK(sanitize_utf8(std::string("\0\x01", 2)) == std::string("\0\x01", 2));
}

TEST_CASE("complete_utf8_prefix holds back only a character that more bytes can complete") {
    CHECK(complete_utf8_prefix("ab\xE4\xB8").complete == 2);
    CHECK(complete_utf8_prefix("ab\xE4\xB8").rest_incomplete);
    CHECK(complete_utf8_prefix("ab\xFF" "c").complete == 2);
    CHECK_FALSE(complete_utf8_prefix("ab\xFF" "c").rest_incomplete);
    CHECK(complete_utf8_prefix("é中").complete == 5);
}

TEST_CASE("char_class matches the Unicode general categories and JavaScript's \\s") {
    struct Case {
        uint32_t cp;
        CharClass cls;
    };
    const Case cases[] = {
        {'A', CharClass::letter},     {0xE9, CharClass::letter},    {0x4E2D, CharClass::letter},
        {0xAC00, CharClass::letter},  {0x3042, CharClass::letter},  {0x1D400, CharClass::letter},
        {0x301, CharClass::mark},     {0x94D, CharClass::mark},     {0x20E3, CharClass::mark},
        {0xFE0F, CharClass::mark},    {'7', CharClass::number},     {0x663, CharClass::number},
        {0xB2, CharClass::number},    {0x216B, CharClass::number},  {0xFF11, CharClass::number},
        {'!', CharClass::punct},      {'_', CharClass::punct},      {0x3002, CharClass::punct},
        {'$', CharClass::symbol},     {'+', CharClass::symbol},     {'^', CharClass::symbol},
        {0x1F600, CharClass::symbol}, {0x1F3FD, CharClass::symbol}, {0xFFFD, CharClass::symbol},
        {' ', CharClass::space},      {'\t', CharClass::space},     {'\r', CharClass::space},
        {0xA0, CharClass::space},     {0x3000, CharClass::space},   {0x2028, CharClass::space},
        {0xFEFF, CharClass::space},   {0x200B, CharClass::other},   {0x200D, CharClass::other},
        {0x85, CharClass::other},     {0, CharClass::other},        {0xE000, CharClass::other},
        {0x10FFFF, CharClass::other}, {0x110000, CharClass::other},
    };
    for (const Case& c : cases) {
        CAPTURE(c.cp);
        CHECK(char_class(c.cp) == c.cls);
    }
}

TEST_CASE("pre-tokenizer: numbers in threes, CJK runs, words with their leading character") {
    CHECK(pretokenize("Hello world") == Pieces{"Hello", " world"});
    CHECK(pretokenize("12345") == Pieces{"123", "45"});
    CHECK(pretokenize("abc1234567def") == Pieces{"abc", "123", "456", "7", "def"});
    CHECK(pretokenize("x ١٢٣٤") == Pieces{"x", " ", "١٢٣", "٤"});
    CHECK(pretokenize("$100") == Pieces{"$", "100"});
    CHECK(pretokenize("你好世界abc") == Pieces{"你好世界", "abc"});
    CHECK(pretokenize("カタカナとabc") == Pieces{"カタカナと", "abc"});
    CHECK(pretokenize("ｶﾀｶﾅ") == Pieces{"ｶﾀｶﾅ"});  // halfwidth katakana: letters outside the CJK rule
    CHECK(pretokenize("한국어 문장") == Pieces{"한국어", " 문장"});
}

TEST_CASE("pre-tokenizer: ASCII punctuation before letters, apostrophes, symbols") {
    CHECK(pretokenize("I'm") == Pieces{"I", "'m"});
    CHECK(pretokenize("don't!!") == Pieces{"don", "'t", "!!"});
    CHECK(pretokenize(".NET") == Pieces{".NET"});
    CHECK(pretokenize("a.b") == Pieces{"a", ".b"});
    CHECK(pretokenize("x ?!\n\nok") == Pieces{"x", " ?!\n\n", "ok"});
    CHECK(pretokenize("«Bonjour»") == Pieces{"«", "Bonjour", "»"});
    CHECK(pretokenize("👍🏽 ok") == Pieces{"👍🏽", " ok"});
}

TEST_CASE("pre-tokenizer: marks, invisible characters and controls") {
    CHECK(pretokenize("e\u0301") == Pieces{"e\u0301"});
    CHECK(pretokenize("\u0301abc") == Pieces{"\u0301abc"});
    CHECK(pretokenize("a\u200Db") == Pieces{"a", "\u200Db"});  // ZWJ is neither a letter nor \s
    CHECK(pretokenize("\u200D\u200D") == Pieces{"\u200D\u200D"});  // matched by no rule: one gap
    CHECK(pretokenize(std::string("a\0b", 3)) == Pieces{"a", std::string("\0b", 2)});
}

TEST_CASE("pre-tokenizer: whitespace runs, newlines and CRLF") {
    CHECK(pretokenize("a  b") == Pieces{"a", " ", " b"});  // \s+(?!\S) leaves the last space to the word
    CHECK(pretokenize("a\n\nb") == Pieces{"a", "\n\n", "b"});
    CHECK(pretokenize("x  \n  y") == Pieces{"x", "  \n", " ", " y"});  // \s*[\r\n]+ stops at the last newline
    CHECK(pretokenize("x\r\n\r\ny") == Pieces{"x", "\r\n\r\n", "y"});
    CHECK(pretokenize("end   ") == Pieces{"end", "   "});
    CHECK(pretokenize("\t\tfoo") == Pieces{"\t", "\tfoo"});
    CHECK(pretokenize(" ") == Pieces{" "});
    CHECK(pretokenize("a \u3000b") == Pieces{"a", " ", "\u3000b"});
}

TEST_CASE("pre-tokenizer: cutting at next_pretokenize_cut never changes the pieces") {
    CHECK(next_pretokenize_cut("ab\ncd", 0) == 3);
    CHECK(next_pretokenize_cut("ab\n cd\n\n!", 0) == 8);  // not before a space or another newline
    CHECK(next_pretokenize_cut("ab\ncd\nef", 4) == 6);
    CHECK(next_pretokenize_cut("ab\n", 0) == std::string_view::npos);
    CHECK(next_pretokenize_cut("abc", 0) == std::string_view::npos);

    // Random texts dense in what could straddle a cut: newlines, CR, spaces, punctuation, digits, CJK, marks.
    const std::vector<std::string> atoms = {"\n", "\r", "\r\n", " ", "\t", "a", "Zz", "!", "?!", "'s", "1", "234",
                                            "中", "カ", "\u0301", "\u200D", "\u00A0", "😀", "\x01"};
    std::mt19937 rng(5);
    for (int t = 0; t < 2000; ++t) {
        std::string text;
        for (int i = int(rng() % 40); i > 0; --i) text += atoms[rng() % atoms.size()];
        CAPTURE(text);
        std::vector<std::string> chunked;
        for (size_t start = 0; start < text.size();) {
            const size_t cut = next_pretokenize_cut(text, start + 1);
            const std::string_view chunk = std::string_view(text).substr(start, cut == std::string_view::npos ? cut : cut - start);
            for (const std::string& p : pretokenize(chunk)) chunked.push_back(p);
            start = cut == std::string_view::npos ? text.size() : cut;
        }
        CHECK(chunked == pretokenize(text));
    }
}

}  // namespace mf
