// DeepSeek-V3's tokenizer: special tokens, then the DeepSeek-V3 pre-tokenizer, then byte-level BPE by merge
// rank. Gives the same ids as the reference (Hugging Face's tokenizer.json run by transformers.js) for any
// input; bytes that are not valid UTF-8 are first replaced by U+FFFD as a JavaScript string would hold them.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "model/tokenizer_vocab.hpp"

namespace mf {

struct EncodeOptions {
    bool add_bos = false;       // put bos_id first (the chat template adds its own)
    bool parse_special = true;  // text spelling a special token becomes that token, as in the reference
    // Long texts are pre-tokenized in chunks of about this many bytes, cut where the pre-tokenizer cuts anyway
    // (next_pretokenize_cut), which bounds the memory used; the ids do not depend on it.
    size_t chunk_bytes = size_t(1) << 20;
};

class Tokenizer {
  public:
    // Throws std::runtime_error when the vocab is not a byte-level BPE with DeepSeek-V3's pre-tokenizer, or
    // lacks a token for one of the 256 bytes, or bos/eos are out of range.
    explicit Tokenizer(const TokenizerVocab& vocab);
    ~Tokenizer();

    std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;

    // The bytes the ids stand for, concatenated; not necessarily valid UTF-8 (a token may hold part of a
    // character). Throws std::out_of_range for an id outside the vocab.
    std::string decode(std::span<const int32_t> ids) const;
    // The bytes of one token: the GPT-2 byte-to-unicode spelling undone for normal tokens, the text itself
    // for special ones; empty for unused (padding) ids.
    const std::string& token_bytes(int32_t id) const;

    int32_t vocab_size() const { return int32_t(bytes_.size()); }
    int32_t bos_id() const { return bos_id_; }
    int32_t eos_id() const { return eos_id_; }
    bool add_bos() const { return add_bos_; }
    bool is_special(int32_t id) const;
    // Merges of the vocab that name a token it lacks (and so can never apply); 0 for a sound vocab.
    int64_t unusable_merges() const { return unusable_merges_; }

  private:
    struct SpecialTrie;
    struct MergeResult {
        int32_t rank;
        int32_t id;
    };

    void encode_word(std::string_view word, std::vector<int32_t>& dst) const;
    void bpe(std::string_view word, std::vector<int32_t>& dst) const;

    std::vector<std::string> bytes_;                    // token id -> its bytes
    std::vector<int32_t> types_;                        // token id -> TokenType
    int32_t byte_token_[256];                           // byte -> the token spelling that single byte
    std::unordered_map<uint64_t, MergeResult> merges_;  // (left id << 32 | right id) -> rank and merged id
    std::unique_ptr<SpecialTrie> special_;
    int32_t bos_id_, eos_id_;
    bool add_bos_;
    int64_t unusable_merges_ = 0;

    // BPE results per word, shared by all callers (words repeat: caching them makes encoding ~10x faster).
    struct StringHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    mutable std::mutex cache_mutex_;
    mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

// Turns ids into text one token at a time without ever splitting a multi-byte character: bytes of a character
// whose end has not arrived yet are held back until it does. Output is always valid UTF-8; bytes that cannot
// become a character are replaced by U+FFFD, as the reference's decode does.
class TokenStreamDecoder {
  public:
    explicit TokenStreamDecoder(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
    // The text that the token completes (possibly empty).
    std::string push(int32_t id);
    // What is still held back, as U+FFFD; call at the end of the stream.
    std::string flush();

  private:
    const Tokenizer& tokenizer_;
    std::string pending_;
};

}  // namespace mf
