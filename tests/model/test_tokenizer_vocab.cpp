// load_tokenizer_json: small hand-written tokenizer.json files (both merge formats, every error path) and, when
// fetched, DeepSeek-V3's real one.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fmt/core.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "model/tokenizer_vocab.hpp"
#include "tests/model/test_tokenizer_data.hpp"

namespace mf {
namespace {

using nlohmann::json;

// DeepSeek-V3's pre_tokenizer, as its tokenizer.json spells it.
const char* const kPreTokenizer = R"json({"type": "Sequence", "pretokenizers": [
  {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": false},
  {"type": "Split", "pattern": {"Regex": "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"}, "behavior": "Isolated", "invert": false},
  {"type": "Split", "pattern": {"Regex": "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
  {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})json";

json small_tokenizer() {
    json t;
    t["version"] = "1.0";
    t["normalizer"] = json::parse(R"({"type": "Sequence", "normalizers": []})");
    t["pre_tokenizer"] = json::parse(kPreTokenizer);
    t["model"] = {{"type", "BPE"}, {"vocab", {{"a", 3}, {"b", 4}, {"ab", 5}, {"Ġ", 6}, {"Ġab", 7}}},
                  {"merges", {"a b", "Ġ ab"}}};
    t["added_tokens"] = json::array({{{"id", 0}, {"content", "<s>"}, {"special", true}},
                                     {{"id", 1}, {"content", "</s>"}, {"special", true}},
                                     {{"id", 8}, {"content", "<tool>"}, {"special", false}}});
    return t;
}

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        // ctest runs test cases as parallel processes: the name must be unique per process, not per seed.
        std::string tmpl = (std::filesystem::temp_directory_path() / "mf_tokvocab_XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::filesystem::path write(const std::string& name, const std::string& text) const {
        std::ofstream(path / name, std::ios::binary) << text;
        return path / name;
    }
};

std::string load_error(const std::filesystem::path& p, int32_t vocab_size = 0) {
    try {
        load_tokenizer_json(p, vocab_size);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

TEST_CASE("load_tokenizer_json reads tokens, added tokens, types and merges of a small file") {
    TempDir dir;
    const auto p = dir.write("tokenizer.json", small_tokenizer().dump());
    const TokenizerVocab v = load_tokenizer_json(p);
    REQUIRE(v.tokens.size() == 9);
    CHECK(v.tokens[0] == "<s>");
    CHECK(v.tokens[5] == "ab");
    CHECK(v.tokens[8] == "<tool>");
    CHECK(v.tokens[2] == "[PAD2]");  // an id nobody defines
    CHECK(v.token_types[0] == int32_t(TokenType::control));
    CHECK(v.token_types[8] == int32_t(TokenType::control));
    CHECK(v.token_types[5] == int32_t(TokenType::normal));
    CHECK(v.token_types[2] == int32_t(TokenType::unused));
    CHECK(v.merges == std::vector<std::string>{"a b", "Ġ ab"});
    CHECK(v.model == "gpt2");
    CHECK(v.pre == "deepseek-v3");
    CHECK(v.bos_id == -1);  // no DeepSeek spelling and no tokenizer_config.json
    CHECK(v.chat_template.empty());

    const TokenizerVocab padded = load_tokenizer_json(p, 12);
    REQUIRE(padded.tokens.size() == 12);
    CHECK(padded.tokens[11] == "[PAD11]");
    CHECK(padded.token_types[11] == int32_t(TokenType::unused));
}

TEST_CASE("load_tokenizer_json accepts [left, right] merge pairs") {
    TempDir dir;
    json t = small_tokenizer();
    t["model"]["merges"] = json::array({json::array({"a", "b"}), json::array({"Ġ", "ab"})});
    const TokenizerVocab v = load_tokenizer_json(dir.write("tokenizer.json", t.dump()));
    CHECK(v.merges == std::vector<std::string>{"a b", "Ġ ab"});
}

TEST_CASE("load_tokenizer_json takes bos, eos, pad, add_bos and the chat template from tokenizer_config.json") {
    TempDir dir;
    const auto p = dir.write("tokenizer.json", small_tokenizer().dump());
    json c = {{"bos_token", {{"__type", "AddedToken"}, {"content", "<s>"}}}, {"eos_token", "</s>"},
              {"pad_token", "</s>"}, {"add_bos_token", false}, {"chat_template", "{{bos_token}}"}};
    dir.write("tokenizer_config.json", c.dump());
    TokenizerVocab v = load_tokenizer_json(p);
    CHECK(v.bos_id == 0);
    CHECK(v.eos_id == 1);
    CHECK(v.pad_id == 1);
    CHECK_FALSE(v.add_bos);
    CHECK(v.chat_template == "{{bos_token}}");

    c["bos_token"] = "<nope>";
    dir.write("tokenizer_config.json", c.dump());
    const std::string e = load_error(p);
    CHECK(e.find("tokenizer_config.json") != std::string::npos);
    CHECK(e.find("<nope>") != std::string::npos);
}

TEST_CASE("load_tokenizer_json names the file and the problem") {
    TempDir dir;
    struct Case {
        const char* label;
        std::function<void(json&)> corrupt;
        const char* expect;
    };
    const Case cases[] = {
        {"wrong model", [](json& t) { t["model"]["type"] = "Unigram"; }, "Unigram"},
        {"byte fallback", [](json& t) { t["model"]["byte_fallback"] = true; }, "byte_fallback"},
        {"other pre-tokenizer", [](json& t) { t["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\d"; },
         "pre_tokenizer"},
        {"normalizer", [](json& t) { t["normalizer"] = {{"type", "NFC"}}; }, "normalizer"},
        {"vocab not an object", [](json& t) { t["model"]["vocab"] = json::array(); }, "model.vocab"},
        {"id not integer", [](json& t) { t["model"]["vocab"]["a"] = "x"; }, "model.vocab[\"a\"]"},
        {"negative id", [](json& t) { t["model"]["vocab"]["a"] = -4; }, "out of range"},
        {"huge id", [](json& t) { t["model"]["vocab"]["a"] = int64_t(1) << 40; }, "out of range"},
        {"duplicate id", [](json& t) { t["model"]["vocab"]["b"] = 3; }, "used twice"},
        {"bad merge string", [](json& t) { t["model"]["merges"][0] = "ab"; }, "model.merges[0]"},
        {"bad merge pair", [](json& t) { t["model"]["merges"][1] = json::array({"a"}); }, "model.merges[1]"},
        {"added token without id", [](json& t) { t["added_tokens"][1].erase("id"); }, "added_tokens[1]"},
        {"no model", [](json& t) { t.erase("model"); }, "\"model\""},
    };
    for (const Case& c : cases) {
        CAPTURE(c.label);
        json t = small_tokenizer();
        c.corrupt(t);
        const auto p = dir.write("tokenizer.json", t.dump());
        const std::string e = load_error(p);
        CHECK(e.find(p.string()) != std::string::npos);
        CHECK(e.find(c.expect) != std::string::npos);
    }
    const auto p = dir.write("tokenizer.json", "{\"model\": ");
    CHECK(load_error(p).find("not valid JSON") != std::string::npos);
    CHECK(load_error(dir.path / "missing.json").find("fetch_tokenizer.sh") != std::string::npos);
    CHECK(load_error(dir.write("tokenizer.json", small_tokenizer().dump()), 5).find("vocab_size 5") !=
          std::string::npos);
}

TEST_CASE("load_tokenizer_json on DeepSeek-V3's tokenizer.json") {
    const auto path = test::fetched_tokenizer_json();
    if (!path) {
        MESSAGE("skipped: DeepSeek-V3's tokenizer.json is not fetched; " << test::kFetchHint);
        return;
    }
    const TokenizerVocab v = load_tokenizer_json(*path, 129280);
    REQUIRE(v.tokens.size() == 129280);
    CHECK(v.merges.size() == 127741);
    CHECK(v.bos_id == 0);
    CHECK(v.eos_id == 1);
    CHECK(v.pad_id == 1);
    CHECK(v.add_bos);
    CHECK(v.tokens[0] == "<｜begin▁of▁sentence｜>");
    CHECK(v.tokens[128803] == "<｜User｜>");
    CHECK(v.tokens[128804] == "<｜Assistant｜>");
    CHECK(v.token_types[128803] == int32_t(TokenType::control));
    CHECK(v.token_types[300] == int32_t(TokenType::normal));
    CHECK(v.token_types[129279] == int32_t(TokenType::unused));
    CHECK(v.tokens[128815] == "[PAD128815]");
    CHECK(v.chat_template.find("<｜Assistant｜>") != std::string::npos);
    CHECK(load_tokenizer_json(*path).tokens.size() == 128815);
}

}  // namespace mf
