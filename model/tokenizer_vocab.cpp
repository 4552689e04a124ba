// Reading a Hugging Face tokenizer.json (+ tokenizer_config.json) into a TokenizerVocab.
#include "model/tokenizer_vocab.hpp"

#include <fmt/core.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

namespace mf {
namespace {

using nlohmann::json;

// Largest table we accept: far above any real vocabulary, too small for a corrupt id to exhaust memory.
constexpr int64_t kMaxVocab = int64_t(1) << 24;

// DeepSeek-V3's three Split regexes, in tokenizer.json's own escaping (JSON string syntax).
// model/tokenizer.cpp implements exactly these rules by hand; any other pre-tokenizer is refused rather than
// tokenized wrongly.
const char* const kDeepSeekV3SplitRegexes = R"json([
  "\\p{N}{1,3}",
  "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
])json";

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& what) {
    throw std::runtime_error(fmt::format("{}: {}", file.string(), what));
}

json read_json(const std::filesystem::path& file) {
    std::ifstream f(file, std::ios::binary);
    if (!f)
        fail(file, "cannot open the file (run tools/fetch_tokenizer.sh to fetch DeepSeek-V3's tokenizer)");
    std::stringstream ss;
    ss << f.rdbuf();
    try {
        return json::parse(ss.str());
    } catch (const json::exception& e) {
        fail(file, fmt::format("not valid JSON: {}", e.what()));
    }
}

const json* find_key(const json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
}

bool is_deepseek_v3_pre_tokenizer(const json& pre) {
    static const json regexes = json::parse(kDeepSeekV3SplitRegexes);
    const json* list = find_key(pre, "pretokenizers");
    if (pre.value("type", "") != "Sequence" || !list || !list->is_array() || list->size() != 4) return false;
    for (size_t i = 0; i < 3; ++i) {
        const json& s = (*list)[i];
        const json* pattern = find_key(s, "pattern");
        if (s.value("type", "") != "Split" || !pattern || pattern->value("Regex", "") != regexes[i].get<std::string>() ||
            s.value("behavior", "") != "Isolated" || s.value("invert", true))
            return false;
    }
    const json& bl = (*list)[3];
    return bl.value("type", "") == "ByteLevel" && !bl.value("add_prefix_space", true) &&
           !bl.value("use_regex", true);
}

bool is_identity_normalizer(const json* n) {
    if (!n) return true;
    const json* list = find_key(*n, "normalizers");
    return n->value("type", "") == "Sequence" && list && list->is_array() && list->empty();
}

// tokenizer_config.json names tokens either as a string or as {"__type": "AddedToken", "content": ...}.
std::string config_token_text(const std::filesystem::path& file, const json& config, const char* key) {
    const json* v = find_key(config, key);
    if (!v) return {};
    if (v->is_string()) return v->get<std::string>();
    if (const json* c = find_key(*v, "content"); c && c->is_string()) return c->get<std::string>();
    fail(file, fmt::format("\"{}\" is neither a string nor an object with a \"content\" string", key));
}

void read_config(const std::filesystem::path& file, TokenizerVocab& v) {
    const json config = read_json(file);
    if (!config.is_object()) fail(file, "the top level is not a JSON object");
    auto token_id = [&](const char* key, int32_t current) {
        const std::string text = config_token_text(file, config, key);
        if (text.empty()) return current;
        const int32_t id = find_token(v, text);
        if (id < 0)
            fail(file, fmt::format("\"{}\" is \"{}\", which is not a token of tokenizer.json", key, text));
        return id;
    };
    v.bos_id = token_id("bos_token", v.bos_id);
    v.eos_id = token_id("eos_token", v.eos_id);
    v.pad_id = token_id("pad_token", v.pad_id);
    if (const json* b = find_key(config, "add_bos_token")) {
        if (!b->is_boolean()) fail(file, "\"add_bos_token\" is not a boolean");
        v.add_bos = b->get<bool>();
    }
    if (const json* t = find_key(config, "chat_template")) {
        if (t->is_string()) {
            v.chat_template = t->get<std::string>();
        } else if (t->is_array()) {  // a list of {"name", "template"}: the default one is the chat template
            for (const json& e : *t)
                if (e.is_object() && e.value("name", "") == "default" && e.contains("template") &&
                    e["template"].is_string())
                    v.chat_template = e["template"].get<std::string>();
        } else {
            fail(file, "\"chat_template\" is neither a string nor a list of {name, template}");
        }
    }
}

}  // namespace

int32_t find_token(const TokenizerVocab& vocab, const std::string& text) {
    for (size_t i = 0; i < vocab.tokens.size(); ++i)
        if (vocab.tokens[i] == text) return int32_t(i);
    return -1;
}

TokenizerVocab load_tokenizer_json(const std::filesystem::path& path, int32_t vocab_size) {
    const json root = read_json(path);
    if (!root.is_object()) fail(path, "the top level is not a JSON object");
    const json* model = find_key(root, "model");
    if (!model || !model->is_object()) fail(path, "no \"model\" object");
    if (model->value("type", "BPE") != "BPE")
        fail(path, fmt::format("model type \"{}\" is not supported (only byte-level BPE)",
                               model->value("type", "")));
    if (model->value("byte_fallback", false))
        fail(path, "BPE with byte_fallback is not supported (only byte-level)");
    if (!is_identity_normalizer(find_key(root, "normalizer")))
        fail(path, "has a normalizer; only DeepSeek-V3's tokenizer (no normalizer) is supported");
    const json* pre = find_key(root, "pre_tokenizer");
    if (!pre || !is_deepseek_v3_pre_tokenizer(*pre))
        fail(path,
             "the pre_tokenizer is not DeepSeek-V3's (Split \\p{N}{1,3}, CJK, letters/punctuation, "
             "ByteLevel); other tokenizers are not supported");

    TokenizerVocab v;
    v.model = "gpt2";
    v.pre = "deepseek-v3";

    // Tokens: model.vocab, then added_tokens at their ids (an added token replaces a vocab entry there).
    const json* vocab = find_key(*model, "vocab");
    if (!vocab || !vocab->is_object()) fail(path, "model.vocab is not an object of token -> id");
    const json* added = find_key(root, "added_tokens");
    if (added && !added->is_array()) fail(path, "added_tokens is not a list");
    std::vector<std::pair<int64_t, std::string>> entries;
    std::vector<bool> is_added;
    for (auto it = vocab->begin(); it != vocab->end(); ++it) {
        if (!it.value().is_number_integer())
            fail(path, fmt::format("model.vocab[\"{}\"] is not an integer id", it.key()));
        entries.emplace_back(it.value().get<int64_t>(), it.key());
        is_added.push_back(false);
    }
    if (added) {
        for (size_t i = 0; i < added->size(); ++i) {
            const json& a = (*added)[i];
            const json* id = find_key(a, "id");
            const json* content = find_key(a, "content");
            if (!id || !id->is_number_integer() || !content || !content->is_string())
                fail(path,
                     fmt::format("added_tokens[{}] lacks an integer \"id\" or a string \"content\"", i));
            entries.emplace_back(id->get<int64_t>(), content->get<std::string>());
            is_added.push_back(true);
        }
    }
    int64_t n = 0;
    for (const auto& [id, text] : entries) {
        if (id < 0 || id >= kMaxVocab)
            fail(path, fmt::format("token \"{}\" has id {}, out of range", text, id));
        if (text.empty()) fail(path, fmt::format("token id {} is the empty string", id));
        n = std::max(n, id + 1);
    }
    if (vocab_size > 0 && vocab_size < n)
        fail(path, fmt::format("defines token ids up to {}, more than the model's vocab_size {}", n - 1,
                               vocab_size));
    if (vocab_size > n) n = vocab_size;
    v.tokens.assign(size_t(n), std::string());
    v.token_types.assign(size_t(n), int32_t(TokenType::unused));
    std::vector<bool> from_added(size_t(n), false);
    for (size_t i = 0; i < entries.size(); ++i) {
        const auto& [id, text] = entries[i];
        if (!v.tokens[size_t(id)].empty() && !is_added[i] && !from_added[size_t(id)])
            fail(path, fmt::format("token id {} is used twice in model.vocab (\"{}\" and \"{}\")", id,
                                   v.tokens[size_t(id)], text));
        v.tokens[size_t(id)] = text;
        v.token_types[size_t(id)] = int32_t(is_added[i] ? TokenType::control : TokenType::normal);
        from_added[size_t(id)] = from_added[size_t(id)] || is_added[i];
    }
    for (int64_t id = 0; id < n; ++id)  // ids nobody defines: placeholders that never match any text
        if (v.tokens[size_t(id)].empty()) v.tokens[size_t(id)] = fmt::format("[PAD{}]", id);

    // Merges in rank order: "left right" strings (older files) or [left, right] pairs (tokenizers >= 0.20).
    const json* merges = find_key(*model, "merges");
    if (!merges || !merges->is_array()) fail(path, "model.merges is not a list");
    v.merges.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
        const json& m = (*merges)[i];
        if (m.is_string()) {
            const std::string s = m.get<std::string>();
            const size_t sp = s.find(' ');
            if (sp == std::string::npos || sp == 0 || sp + 1 == s.size())
                fail(path, fmt::format("model.merges[{}] \"{}\" is not \"left right\"", i, s));
            v.merges.push_back(s);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            const std::string l = m[0].get<std::string>(), r = m[1].get<std::string>();
            if (l.empty() || r.empty() || l.find(' ') != std::string::npos ||
                r.find(' ') != std::string::npos)
                fail(path, fmt::format("model.merges[{}] has an empty part or a part with a space", i));
            v.merges.push_back(l + " " + r);
        } else {
            fail(path, fmt::format("model.merges[{}] is neither \"left right\" nor [left, right]", i));
        }
    }

    // bos/eos: DeepSeek's spelling when present; tokenizer_config.json, when beside it, has the final word.
    v.bos_id = find_token(v, "<｜begin▁of▁sentence｜>");
    v.eos_id = find_token(v, "<｜end▁of▁sentence｜>");
    v.pad_id = -1;
    const auto config = path.parent_path() / "tokenizer_config.json";
    if (std::filesystem::exists(config)) read_config(config, v);
    return v;
}

}  // namespace mf
