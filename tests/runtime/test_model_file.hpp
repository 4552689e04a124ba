// A generated model file for the runtime tests: seeded random weights of one type and a 300-token vocabulary
// ("t0".."t299", one merge), written as GGUF into a test's scratch dir. The seed is the caller's: several tests
// are written around where their seed puts the router's near ties.
#pragma once
#include <filesystem>
#include <string>

#include "model/synthetic_model.hpp"

namespace mf::test {

inline TokenizerVocab small_vocab() {
    TokenizerVocab v;
    for (int i = 0; i < 300; ++i) v.tokens.push_back("t" + std::to_string(i));
    v.token_types.assign(300, int32_t(TokenType::normal));
    v.merges = {"t 1"};
    return v;
}

inline std::filesystem::path write_test_model(const std::filesystem::path& dir, const DeepSeekV3Config& c,
                                              uint64_t seed, GgmlType wtype = GgmlType::bf16,
                                              bool gguf_mla_layout = true) {
    SyntheticModelOptions o;
    o.config = c;
    o.name = "m";
    o.seed = seed;
    o.wtype = wtype;
    o.safetensors = false;
    o.gguf_mla_layout = gguf_mla_layout;
    o.vocab = small_vocab();
    return write_synthetic_model(o, dir).gguf;
}

}  // namespace mf::test
