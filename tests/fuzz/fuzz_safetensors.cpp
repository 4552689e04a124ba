// libFuzzer target: the safetensors reader, and an HF checkpoint directory (a fixed tiny config.json beside
// the fuzzed model.safetensors) bound as DeepSeek-V3 weights. Any input opens or throws std::runtime_error.
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "model/deepseek_v3_config.hpp"
#include "model/model.hpp"
#include "model/safetensors_file.hpp"
#include "tests/fuzz/fuzz_input_file.hpp"

namespace {
// The config make_fuzz_seeds uses for its safetensors seed (keep the two in step).
mf::DeepSeekV3Config micro_config() {
    mf::DeepSeekV3Config c;
    c.vocab_size = 64, c.hidden = 32, c.n_layers = 2, c.n_dense_layers = 1, c.dense_inter = 32,
    c.moe_inter = 32;
    c.n_experts = 4, c.n_experts_used = 2, c.n_groups = 2, c.n_groups_used = 1, c.n_shared_experts = 1;
    c.n_heads = 2, c.q_lora_rank = 32, c.kv_lora_rank = 32, c.qk_nope = 16, c.qk_rope = 8, c.v_head = 16;
    return c;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool config_written = [] {
        std::ofstream(mf::fuzz::input_dir() / "config.json")
            << mf::config_to_hf_json(micro_config(), "float32").dump();
        return true;
    }();
    (void)config_written;
    const auto path = mf::fuzz::write_input("model.safetensors", data, size);
    try {
        mf::SafetensorsFile f(path);
        volatile uint8_t sink = 0;
        for (const auto& t : f.tensors())
            if (t.n_bytes) sink = sink + t.data[t.n_bytes - 1];
        const auto m = mf::Model::open(mf::fuzz::input_dir());
        (void)m;
    } catch (const std::runtime_error&) {
    }
    return 0;
}
