// The tokenizer on a small hand-built vocab (BPE against a naive reference, special tokens, decoding, the
// streaming decoder) and, when fetched, round trips on DeepSeek-V3's.
#include <doctest/doctest.h>
#include <fmt/core.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "model/tokenizer.hpp"
#include "model/unicode_utf8.hpp"
#include "tests/model/test_tokenizer_data.hpp"

namespace mf {
namespace {

// GPT-2's byte-level alphabet restated from its definition: the bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF
// are their own code point; the remaining 68 bytes, in increasing order, take U+0100, U+0101, ...
std::string byte_spelling(uint8_t b) {
    const auto kept = [](int x) { return (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE; };
    uint32_t cp = b;
    if (!kept(b)) {
        cp = 0x100;
        for (int x = 0; x < b; ++x) cp += kept(x) ? 0 : 1;
    }
    std::string s;
    append_utf8(s, cp);
    return s;
}

// 256 byte tokens, then merged tokens from `merges` ("left right" of byte-level spellings), then specials.
TokenizerVocab small_vocab(const std::vector<std::string>& merges, const std::vector<std::string>& specials) {
    TokenizerVocab v;
    for (int b = 0; b < 256; ++b) v.tokens.push_back(byte_spelling(uint8_t(b)));
    for (const std::string& m : merges) {
        const size_t sp = m.find(' ');
        const std::string joined = m.substr(0, sp) + m.substr(sp + 1);
        if (std::find(v.tokens.begin(), v.tokens.end(), joined) == v.tokens.end()) v.tokens.push_back(joined);
    }
    v.token_types.assign(v.tokens.size(), int32_t(TokenType::normal));
    for (const std::string& s : specials) {
        v.tokens.push_back(s);
        v.token_types.push_back(int32_t(TokenType::control));
    }
    v.merges = merges;
    v.bos_id = specials.empty() ? -1 : int32_t(v.tokens.size() - specials.size());  // the first special
    v.eos_id = v.bos_id;
    return v;
}

// Textbook BPE: while some neighbouring pair has a merge, merge the best-ranked one (leftmost among equals).
std::vector<std::string> naive_bpe(const std::string& word, const std::vector<std::string>& merges) {
    std::map<std::pair<std::string, std::string>, size_t> rank;
    for (size_t r = 0; r < merges.size(); ++r) {
        const size_t sp = merges[r].find(' ');
        rank.try_emplace({merges[r].substr(0, sp), merges[r].substr(sp + 1)}, r);
    }
    std::vector<std::string> syms;
    for (unsigned char c : word) syms.push_back(byte_spelling(c));
    for (;;) {
        size_t best = SIZE_MAX, at = 0;
        for (size_t i = 0; i + 1 < syms.size(); ++i) {
            auto it = rank.find({syms[i], syms[i + 1]});
            if (it != rank.end() && it->second < best) best = it->second, at = i;
        }
        if (best == SIZE_MAX) return syms;
        syms[at] += syms[at + 1];
        syms.erase(syms.begin() + std::ptrdiff_t(at) + 1);
    }
}

std::vector<std::string> spellings(const TokenizerVocab& v, const std::vector<int32_t>& ids) {
    std::vector<std::string> s;
    for (int32_t id : ids) s.push_back(v.tokens[size_t(id)]);
    return s;
}

bool is_valid_utf8(const std::string& s) { return complete_utf8_prefix(s).complete == s.size(); }

}  // namespace

TEST_CASE("byte-level spellings follow GPT-2's alphabet") {
    CHECK(byte_spelling(' ') == "Ġ");
    CHECK(byte_spelling('\n') == "Ċ");
    CHECK(byte_spelling('\t') == "ĉ");
    CHECK(byte_spelling('a') == "a");
    CHECK(byte_spelling(0xAD) == "Ń");
}

TEST_CASE("BPE applies merges by rank, leftmost first among equals") {
    const std::vector<std::string> merges = {"a a", "l l", "h e", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "aa aa"};
    const TokenizerVocab v = small_vocab(merges, {});
    const Tokenizer tok(v);
    CHECK(spellings(v, tok.encode("hello")) == std::vector<std::string>{"hello"});
    CHECK(spellings(v, tok.encode(" world")) == std::vector<std::string>{"Ġwor", "l", "d"});
    CHECK(spellings(v, tok.encode("aaa")) == std::vector<std::string>{"aa", "a"});
    CHECK(spellings(v, tok.encode("aaaaa")) == std::vector<std::string>{"aaaa", "a"});
    CHECK(spellings(v, tok.encode("hello world")) == std::vector<std::string>{"hello", "Ġwor", "l", "d"});
}

TEST_CASE("BPE matches a naive reference on random merges and words") {
    std::mt19937 rng(7);
    // Random merges over a three-letter alphabet: each joins two tokens that exist so far.
    std::vector<std::string> pool = {"a", "b", "c"}, merges;
    std::uniform_int_distribution<int> coin(0, 1);
    while (merges.size() < 60) {
        const std::string l = pool[rng() % pool.size()], r = pool[rng() % pool.size()];
        if (l.size() + r.size() > 6) continue;
        const std::string m = l + " " + r;
        if (std::find(merges.begin(), merges.end(), m) != merges.end()) continue;
        merges.push_back(m);
        if (std::find(pool.begin(), pool.end(), l + r) == pool.end()) pool.push_back(l + r);
    }
    const TokenizerVocab v = small_vocab(merges, {});
    const Tokenizer tok(v);
    for (int t = 0; t < 500; ++t) {
        std::string word;
        for (int i = int(rng() % 40) + 1; i > 0; --i) word += char('a' + rng() % 3);
        CAPTURE(word);
        CHECK(spellings(v, tok.encode(word)) == naive_bpe(word, merges));
    }
}

TEST_CASE("special tokens: longest match first, optional, and bos") {
    const TokenizerVocab v = small_vocab({"a b"}, {"<s>", "<|x|>", "<|xy|>"});
    const Tokenizer tok(v);
    const int32_t s = int32_t(v.tokens.size()) - 3, x = s + 1, xy = s + 2;
    CHECK(tok.encode("<|xy|>") == std::vector<int32_t>{xy});
    CHECK(tok.encode("ab<|x|>ab") == std::vector<int32_t>{256, x, 256});
    CHECK(tok.encode("<s><s>") == std::vector<int32_t>{s, s});
    CHECK(tok.encode("<|x") == std::vector<int32_t>{'<', '|', 'x'});
    CHECK(tok.encode("<s>", {.add_bos = false, .parse_special = false}) == std::vector<int32_t>{'<', 's', '>'});
    CHECK(tok.encode("ab", {.add_bos = true}) == std::vector<int32_t>{s, 256});
    CHECK(tok.is_special(x));
    CHECK_FALSE(tok.is_special(256));
}

TEST_CASE("decode undoes the byte-level spelling, special tokens decode to their text") {
    const TokenizerVocab v = small_vocab({"Ġ w", "o r"}, {"<s>"});
    const Tokenizer tok(v);
    const std::string text = "<s>hi world\n\t\x01 é中😀";
    CHECK(tok.decode(tok.encode(text)) == text);
    CHECK(tok.token_bytes(' ') == " ");
    CHECK(tok.token_bytes(0xE4) == "\xE4");
    CHECK_THROWS_AS(tok.token_bytes(-1), std::out_of_range);
    CHECK_THROWS_AS(tok.token_bytes(tok.vocab_size()), std::out_of_range);
}

TEST_CASE("invalid UTF-8 is tokenized as U+FFFD") {
    const TokenizerVocab v = small_vocab({}, {});
    const Tokenizer tok(v);
    CHECK(tok.encode("a\xFF" "b") == tok.encode("a\xEF\xBF\xBD" "b"));
    CHECK(tok.encode("\xE4\xB8") == std::vector<int32_t>{0xEF, 0xBF, 0xBD});
}

TEST_CASE("the streaming decoder never splits a character and replaces what can never be one") {
    const TokenizerVocab v = small_vocab({}, {"<s>"});
    const Tokenizer tok(v);
    TokenStreamDecoder d(tok);
    // One token per byte, so every multi-byte character arrives in pieces.
    CHECK(d.push('a') == "a");
    CHECK(d.push(0xC3) == "");
    CHECK(d.push(0xA9) == "é");
    CHECK(d.push(0xF0) == "");
    CHECK(d.push(0x9F) == "");
    CHECK(d.push(0x98) == "");
    CHECK(d.push(0x80) == "😀");
    CHECK(d.push(0xFF) == "\xEF\xBF\xBD");          // can never start a character: replaced at once
    CHECK(d.push(0xE4) == "");
    CHECK(d.push('x') == "\xEF\xBF\xBD" "x");       // E4 then 'x': E4 was a dead end
    CHECK(d.push(int32_t(v.tokens.size()) - 1) == "<s>");
    CHECK(d.push(0xE4) == "");
    CHECK(d.push(0xB8) == "");
    CHECK(d.flush() == "\xEF\xBF\xBD");             // stream ended inside a character
    CHECK(d.flush() == "");

    // On random byte tokens: every piece is valid UTF-8 and together they are the replaced decode.
    std::mt19937 rng(11);
    for (int t = 0; t < 200; ++t) {
        std::vector<int32_t> ids;
        for (int i = int(rng() % 30); i > 0; --i)
            ids.push_back(rng() % 3 ? int32_t(rng() % 256) : int32_t(0xC0 + rng() % 0x35));
        TokenStreamDecoder s(tok);
        std::string all;
        for (int32_t id : ids) {
            const std::string piece = s.push(id);
            CHECK(is_valid_utf8(piece));
            all += piece;
        }
        all += s.flush();
        CHECK(all == sanitize_utf8(tok.decode(ids)));
    }
}

TEST_CASE("encode from several threads at once gives the single-threaded ids (the word cache is shared)") {
    const std::vector<std::string> merges = {"a b", "b c", "ab c", "c a", "Ġ a", "Ġa b"};
    const TokenizerVocab v = small_vocab(merges, {});
    const Tokenizer tok(v), fresh(v);
    std::mt19937 rng(3);
    std::vector<std::string> texts(64);
    for (std::string& t : texts)
        for (int i = int(rng() % 200); i > 0; --i) t += "abc "[rng() % 4];
    std::vector<std::vector<int32_t>> got(texts.size());
    std::vector<std::thread> threads;
    for (int w = 0; w < 4; ++w)
        threads.emplace_back([&, w] {
            for (size_t i = size_t(w); i < texts.size(); i += 4) got[i] = tok.encode(texts[i]);
        });
    for (std::thread& t : threads) t.join();
    for (size_t i = 0; i < texts.size(); ++i) CHECK(got[i] == fresh.encode(texts[i]));
}

TEST_CASE("Tokenizer refuses vocabs it cannot tokenize exactly") {
    TokenizerVocab v = small_vocab({}, {});
    v.pre = "llama3";
    CHECK_THROWS_WITH_AS(Tokenizer{v}, doctest::Contains("llama3"), std::runtime_error);
    v = small_vocab({}, {});
    v.model = "llama";
    CHECK_THROWS_AS(Tokenizer{v}, std::runtime_error);
    v = small_vocab({}, {});
    v.tokens[' '] = "space";  // no token for byte 0x20 any more
    CHECK_THROWS_WITH_AS(Tokenizer{v}, doctest::Contains("0x20"), std::runtime_error);
    v = small_vocab({}, {});
    v.token_types.pop_back();
    CHECK_THROWS_AS(Tokenizer{v}, std::runtime_error);
    v = small_vocab({}, {"<s>"});
    v.bos_id = int32_t(v.tokens.size());
    CHECK_THROWS_AS(Tokenizer{v}, std::runtime_error);
    v = small_vocab({"a b"}, {});
    v.merges.push_back("x zz");  // names a token the vocab lacks: never applies
    CHECK(Tokenizer(v).unusable_merges() == 1);
}

TEST_CASE("DeepSeek-V3: decode(encode(text)) == text on the valid corpus, streamed or not") {
    const auto path = test::fetched_tokenizer_json();
    if (!path) {
        MESSAGE("skipped: DeepSeek-V3's tokenizer.json is not fetched; " << test::kFetchHint);
        return;
    }
    const Tokenizer tok(load_tokenizer_json(*path));
    const auto corpus = std::filesystem::path(MOEFORGE_SOURCE_DIR) / "tests/model/tokenizer_reference/corpus";
    int files = 0;
    for (const auto& e : std::filesystem::directory_iterator(corpus)) {
        std::ifstream f(e.path(), std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        const std::string text = ss.str();
        CAPTURE(e.path().filename().string());
        const std::vector<int32_t> ids = tok.encode(text);
        // Ill-formed input comes back as the U+FFFD text it was tokenized as.
        CHECK(tok.decode(ids) == sanitize_utf8(text));
        TokenStreamDecoder s(tok);
        std::string streamed;
        for (int32_t id : ids) {
            const std::string piece = s.push(id);
            CHECK(is_valid_utf8(piece));
            streamed += piece;
        }
        CHECK(streamed + s.flush() == sanitize_utf8(text));
        // Without special-token parsing no control token appears and the text still round-trips.
        const std::vector<int32_t> plain = tok.encode(text, {.parse_special = false});
        CHECK(std::none_of(plain.begin(), plain.end(), [&](int32_t id) { return tok.is_special(id); }));
        CHECK(tok.decode(plain) == sanitize_utf8(text));
        // Chunked pre-tokenization (for long texts) gives the same ids.
        CHECK(tok.encode(text, {.chunk_bytes = 16}) == ids);
        ++files;
    }
    CHECK(files >= 20);
    CHECK(tok.encode("Hi", {.add_bos = true}).front() == 0);
}

}  // namespace mf
