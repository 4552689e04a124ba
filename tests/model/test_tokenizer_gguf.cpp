// The tokenizer built from a GGUF's tokenizer.ggml.* keys (as a converted DeepSeek-V3 GGUF carries them,
// padded to the 129280-row embedding) gives the same ids and text as the one built from tokenizer.json.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "model/gguf_file.hpp"
#include "model/gguf_vocab.hpp"
#include "model/gguf_writer.hpp"
#include "model/tokenizer.hpp"
#include "tests/model/test_tokenizer_data.hpp"

namespace mf {

TEST_CASE("DeepSeek-V3 tokenizer from GGUF metadata matches the one from tokenizer.json") {
    const auto path = test::fetched_tokenizer_json();
    if (!path) {
        MESSAGE("skipped: DeepSeek-V3's tokenizer.json is not fetched; " << test::kFetchHint);
        return;
    }
    const TokenizerVocab json_vocab = load_tokenizer_json(*path, 129280);
    std::string dir = (std::filesystem::temp_directory_path() / "mf_tokgguf_XXXXXX").string();
    REQUIRE(mkdtemp(dir.data()) != nullptr);
    const std::filesystem::path gguf_path = std::filesystem::path(dir) / "vocab.gguf";
    {
        GgufWriter w(gguf_path);
        w.add_string("general.architecture", "deepseek2");
        write_gguf_vocab(w, json_vocab);
        w.begin_data();
        w.finish();
    }
    const TokenizerVocab gguf_vocab = read_gguf_vocab(GgufFile(gguf_path));
    std::filesystem::remove_all(dir);
    CHECK(gguf_vocab.tokens == json_vocab.tokens);
    CHECK(gguf_vocab.token_types == json_vocab.token_types);
    CHECK(gguf_vocab.merges == json_vocab.merges);
    CHECK(gguf_vocab.bos_id == 0);
    CHECK(gguf_vocab.eos_id == 1);

    const Tokenizer from_json(load_tokenizer_json(*path)), from_gguf(gguf_vocab);
    CHECK(from_gguf.vocab_size() == 129280);
    const auto corpus = std::filesystem::path(MOEFORGE_SOURCE_DIR) / "tests/model/tokenizer_reference/corpus";
    for (const auto& e : std::filesystem::directory_iterator(corpus)) {
        std::ifstream f(e.path(), std::ios::binary);
        std::stringstream ss;
        ss << f.rdbuf();
        CAPTURE(e.path().filename().string());
        const std::vector<int32_t> ids = from_json.encode(ss.str());
        CHECK(from_gguf.encode(ss.str()) == ids);
        CHECK(from_gguf.decode(ids) == from_json.decode(ids));
    }
    // The padding rows are not special tokens: their spelling in a text is ordinary text.
    const std::vector<int32_t> pad_text = from_gguf.encode("[PAD129000]");
    CHECK(pad_text == from_json.encode("[PAD129000]"));
    CHECK(from_gguf.token_bytes(129000).empty());
}

}  // namespace mf
