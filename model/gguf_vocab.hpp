// The tokenizer.ggml.* keys of a GGUF <-> TokenizerVocab (the data the BPE tokenizer is built from).
#pragma once
#include "model/tokenizer_vocab.hpp"

namespace mf {

class GgufFile;
class GgufWriter;

// Throws naming the file and key if the keys are missing or inconsistent (token_type count != token count).
TokenizerVocab read_gguf_vocab(const GgufFile& f);
// Writes tokenizer.ggml.{model,pre,tokens,token_type,merges,bos_token_id,eos_token_id,padding_token_id,
// add_bos_token,add_eos_token} and tokenizer.chat_template, as llama.cpp's converter does.
void write_gguf_vocab(GgufWriter& w, const TokenizerVocab& v);

// Pads a vocabulary to `n` tokens with "[PAD<id>]" entries of type unused (as llama.cpp's converter does for
// DeepSeek-V3's 129280-row embedding); throws if it already has more than n.
void pad_vocab(TokenizerVocab& v, size_t n);

}  // namespace mf
