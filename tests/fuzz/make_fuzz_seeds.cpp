// Writes the seed corpus of one fuzzer: `make_fuzz_seeds FUZZER DIR`. fuzz_gguf gets micro DeepSeek-V3 GGUFs
// (both attention layouts, two weight types); fuzz_safetensors a micro model.safetensors; any other fuzzer
// (the tokenizer's) a few texts in several scripts and some invalid UTF-8.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/synthetic_model.hpp"

namespace {

mf::DeepSeekV3Config micro_config() {  // keep in step with fuzz_safetensors.cpp
    mf::DeepSeekV3Config c;
    c.vocab_size = 64, c.hidden = 32, c.n_layers = 2, c.n_dense_layers = 1, c.dense_inter = 32,
    c.moe_inter = 32;
    c.n_experts = 4, c.n_experts_used = 2, c.n_groups = 2, c.n_groups_used = 1, c.n_shared_experts = 1;
    c.n_heads = 2, c.q_lora_rank = 32, c.kv_lora_rank = 32, c.qk_nope = 16, c.qk_rope = 8, c.v_head = 16;
    return c;
}

mf::SyntheticModelOptions micro_options() {
    mf::SyntheticModelOptions o;
    o.config = micro_config();
    o.name = "micro";
    for (int i = 0; i < 60; ++i) o.vocab.tokens.push_back("t" + std::to_string(i));
    o.vocab.token_types.assign(60, 1);
    o.vocab.merges = {"t 1"};
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: make_fuzz_seeds FUZZER_NAME DIR\n");
        return 2;
    }
    const std::string fuzzer = argv[1];
    const std::filesystem::path dir = argv[2];
    std::filesystem::create_directories(dir);
    const auto tmp = dir / ".work";
    int n = 0;
    if (fuzzer == "fuzz_gguf" || fuzzer == "fuzz_safetensors") {
        for (bool mla : {true, false})
            for (mf::GgmlType t : {mf::GgmlType::bf16, mf::GgmlType::q8_0}) {
                auto o = micro_options();
                o.wtype = t;
                o.gguf_mla_layout = mla;
                o.gguf = fuzzer == "fuzz_gguf";
                o.safetensors = !o.gguf;
                if (o.safetensors && !mla) continue;  // HF has one layout
                const auto res = mf::write_synthetic_model(o, tmp);
                const auto src = o.gguf ? res.gguf : res.hf_dir / "model.safetensors";
                std::filesystem::copy_file(src, dir / ("seed-" + std::to_string(n++)),
                                           std::filesystem::copy_options::overwrite_existing);
            }
    } else {
        const char* texts[] = {"Hello, world! The quick brown fox.",
                               "你好，世界。深度求索",
                               "日本語のテキストです",
                               "emoji 😀🎉 and numbers 1234567 3.14",
                               "def f(x):\n    return x  # code\n",
                               "   \t\n  spaces   ",
                               "\xff\xfe invalid \xc3\x28 utf8 \xe2\x82"};
        for (const char* t : texts) std::ofstream(dir / ("seed-" + std::to_string(n++))) << t;
    }
    std::filesystem::remove_all(tmp);
    std::printf("%s: %d seeds in %s\n", fuzzer.c_str(), n, dir.c_str());
    return 0;
}
