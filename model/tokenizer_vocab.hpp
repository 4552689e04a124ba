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
TokenizerVocab load_tokenizer_json(const std::filesystem::path& tokenizer_json);

}  // namespace mf
