#include "model/gguf_vocab.hpp"

#include <fmt/core.h>

#include <stdexcept>

#include "model/gguf_file.hpp"
#include "model/gguf_writer.hpp"

namespace mf {

TokenizerVocab read_gguf_vocab(const GgufFile& f) {
    TokenizerVocab v;
    v.model = f.get_string("tokenizer.ggml.model");
    v.pre = f.opt_string("tokenizer.ggml.pre").value_or("default");
    const GgufValue* tokens = f.find("tokenizer.ggml.tokens");
    if (!tokens || tokens->type != GgufValueType::array || tokens->elem_type != GgufValueType::string)
        f.fail("key 'tokenizer.ggml.tokens' is missing or not an array of strings");
    v.tokens = tokens->strings;
    if (const GgufValue* tt = f.find("tokenizer.ggml.token_type")) {
        if (tt->type != GgufValueType::array || tt->array_size() != v.tokens.size() ||
            tt->ints.size() != v.tokens.size())
            f.fail(fmt::format("key 'tokenizer.ggml.token_type' should be {} integers", v.tokens.size()));
        for (int64_t t : tt->ints) v.token_types.push_back(int32_t(t));
    } else {
        v.token_types.assign(v.tokens.size(), int32_t(TokenType::normal));
    }
    if (const GgufValue* m = f.find("tokenizer.ggml.merges")) {
        if (m->type != GgufValueType::array || m->elem_type != GgufValueType::string)
            f.fail("key 'tokenizer.ggml.merges' is not an array of strings");
        v.merges = m->strings;
    }
    auto id = [&](const char* key, int32_t dflt) {
        const auto x = f.opt_uint(key);
        if (x && *x >= v.tokens.size()) f.fail(fmt::format("key '{}' = {} is not a token id", key, *x));
        return x ? int32_t(*x) : dflt;
    };
    v.bos_id = id("tokenizer.ggml.bos_token_id", 0);
    v.eos_id = id("tokenizer.ggml.eos_token_id", 1);
    v.pad_id = id("tokenizer.ggml.padding_token_id", -1);
    v.add_bos = f.opt_bool("tokenizer.ggml.add_bos_token").value_or(true);
    v.chat_template = f.opt_string("tokenizer.chat_template").value_or("");
    return v;
}

void write_gguf_vocab(GgufWriter& w, const TokenizerVocab& v) {
    if (v.token_types.size() != v.tokens.size())
        throw std::invalid_argument("write_gguf_vocab: token_types and tokens differ in length");
    w.add_string("tokenizer.ggml.model", v.model);
    w.add_string("tokenizer.ggml.pre", v.pre);
    w.add_string_array("tokenizer.ggml.tokens", v.tokens);
    w.add_i32_array("tokenizer.ggml.token_type", v.token_types);
    w.add_string_array("tokenizer.ggml.merges", v.merges);
    w.add_u32("tokenizer.ggml.bos_token_id", uint32_t(v.bos_id));
    w.add_u32("tokenizer.ggml.eos_token_id", uint32_t(v.eos_id));
    if (v.pad_id >= 0) w.add_u32("tokenizer.ggml.padding_token_id", uint32_t(v.pad_id));
    w.add_bool("tokenizer.ggml.add_bos_token", v.add_bos);
    w.add_bool("tokenizer.ggml.add_eos_token", false);
    if (!v.chat_template.empty()) w.add_string("tokenizer.chat_template", v.chat_template);
}

void pad_vocab(TokenizerVocab& v, size_t n) {
    if (v.tokens.size() > n)
        throw std::runtime_error(fmt::format(
            "the tokenizer has {} tokens, more than the model's vocabulary of {}", v.tokens.size(), n));
    if (v.token_types.size() < v.tokens.size())
        v.token_types.resize(v.tokens.size(), int32_t(TokenType::normal));
    for (size_t i = v.tokens.size(); i < n; ++i) {
        v.tokens.push_back(fmt::format("[PAD{}]", i));
        v.token_types.push_back(int32_t(TokenType::unused));
    }
}

}  // namespace mf
