// The data of a byte-level BPE tokenizer, as carried by tokenizer.json or a GGUF's tokenizer.ggml.* keys.
// The tokenizer (model/tokenizer.*) is built from it; mkmodel writes it into generated models.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mf {

// GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

struct TokenizerVocab {
    std::string model = "gpt2";       // tokenizer.ggml.model
    std::string pre = "deepseek-v3";  // tokenizer.ggml.pre
    std::vector<std::string> tokens;  // byte-level (GPT-2 byte-to-unicode) spellings, index = token id
    std::vector<int32_t> token_types; // TokenType per token
    std::vector<std::string> merges;  // "left right", in rank order
    int32_t bos_id = 0;
    int32_t eos_id = 1;
    int32_t pad_id = -1;
    bool add_bos = true;
    std::string chat_template;        // Jinja source, as shipped
};

// Reads a Hugging Face tokenizer.json (plus tokenizer_config.json beside it, when present, for the chat template
// and bos/eos). Throws std::runtime_error naming the file and what is wrong.
//
// tokens: model.vocab with added_tokens placed at their ids; token_types: control for added tokens, normal for the
// rest. Only DeepSeek-V3's pre-tokenizer is accepted (pre = "deepseek-v3"): any other would tokenize wrongly.
// vocab_size > 0 pads the table with "[PAD<id>]" tokens of type unused up to that size, as llama.cpp's converter
// does for a model whose embedding has more rows than the tokenizer has tokens (DeepSeek-V3: 128815 -> 129280);
// 0 keeps the file's count. A vocab_size smaller than the file's count is an error.
TokenizerVocab load_tokenizer_json(const std::filesystem::path& tokenizer_json, int32_t vocab_size = 0);

// The token spelled `text` (exact match), or -1.
int32_t find_token(const TokenizerVocab& vocab, const std::string& text);

}  // namespace mf
