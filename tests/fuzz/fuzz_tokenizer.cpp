// libFuzzer target: the tokenizer on arbitrary bytes. Encoding must not crash, every id must be in range,
// chunked pre-tokenization must give the same ids, and decoding must give back the bytes with ill-formed UTF-8
// replaced by U+FFFD (which is what was tokenized); the streaming decoder must agree. Uses DeepSeek-V3's
// tokenizer.json when fetched (tools/fetch_tokenizer.sh), else a vocab of the 256 byte tokens, a few merges
// and one special token.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "model/tokenizer.hpp"
#include "model/unicode_utf8.hpp"

namespace {

mf::TokenizerVocab fallback_vocab() {
    mf::TokenizerVocab v;
    const auto kept = [](int x) { return (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE; };
    uint32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
        std::string s;
        mf::append_utf8(s, kept(b) ? uint32_t(b) : next++);
        v.tokens.push_back(s);
    }
    v.merges = {"Ġ t", "h e", "Ġt he", "i n", "Ġ a"};
    for (const char* t : {"Ġt", "he", "Ġthe", "in", "Ġa"}) v.tokens.push_back(t);
    v.token_types.assign(v.tokens.size(), int32_t(mf::TokenType::normal));
    v.tokens.push_back("<｜User｜>");
    v.token_types.push_back(int32_t(mf::TokenType::control));
    v.bos_id = v.eos_id = -1;
    return v;
}

const mf::Tokenizer& tokenizer() {
    static const std::unique_ptr<mf::Tokenizer> tok = [] {
        std::filesystem::path p;
        if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
            p = x;
        else if (const char* h = std::getenv("HOME"); h && *h)
            p = std::filesystem::path(h) / ".cache";
        p /= "moeforge/tokenizer/deepseek-v3/tokenizer.json";
        return std::make_unique<mf::Tokenizer>(std::filesystem::exists(p) ? mf::load_tokenizer_json(p)
                                                                          : fallback_vocab());
    }();
    return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const mf::Tokenizer& tok = tokenizer();
    const std::string text(reinterpret_cast<const char*>(data), size);
    const std::vector<int32_t> ids = tok.encode(text);
    for (int32_t id : ids)
        if (id < 0 || id >= tok.vocab_size()) std::abort();
    // Pre-tokenizing in small chunks (as long texts are) must not change the ids.
    const size_t chunk = size == 0 ? 1 : 1 + data[0] % 64;
    if (tok.encode(text, {.chunk_bytes = chunk}) != ids) std::abort();
    const std::string expected = mf::sanitize_utf8(text);
    if (tok.decode(ids) != expected) std::abort();
    mf::TokenStreamDecoder stream(tok);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    if (streamed + stream.flush() != expected) std::abort();
    return 0;
}
