// Hand-checkable pieces of the reference forward: RMSNorm, YaRN frequencies against a formula written here
// independently, the attention scale, rope rotation, and the group-limited router on crafted scores.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "model/deepseek_v3_config.hpp"
#include "model/moe_router.hpp"
#include "model/reference_ops.hpp"

using namespace mf;

TEST_CASE("RMSNorm divides by the root mean square and scales by the weight") {
    const float x[4] = {1, 2, 3, 4}, w[4] = {1, 1, 2, 0.5f};
    float out[4];
    rms_norm(x, w, 4, 0.0f, out);
    const float rms = std::sqrt((1 + 4 + 9 + 16) / 4.0f);  // sqrt(7.5)
    CHECK(out[0] == doctest::Approx(1 / rms));
    CHECK(out[2] == doctest::Approx(6 / rms));
    CHECK(out[3] == doctest::Approx(2 / rms));
    rms_norm(x, w, 4, 2.5f, out);  // eps adds to the mean square
    CHECK(out[1] == doctest::Approx(2 / std::sqrt(10.0f)));
}

TEST_CASE("YaRN inv_freq of DeepSeek-V3 matches the YaRN paper's formula") {
    const DeepSeekV3Config c;  // theta 1e4, dim 64, factor 40, original 4096, beta 32/1
    const auto inv = yarn_inv_freq(c);
    REQUIRE(inv.size() == 32);
    // Written out independently: the dims whose wavelength fits beta rotations in the original context.
    const double pi = 3.14159265358979323846;
    auto dim_for = [&](double rot) { return 64 * std::log(4096 / (rot * 2 * pi)) / (2 * std::log(10000.0)); };
    const int low = int(std::floor(dim_for(32))), high = int(std::ceil(dim_for(1)));
    CHECK(low == 10);
    CHECK(high == 23);
    for (int i = 0; i < 32; ++i) {
        const double base = 1.0 / std::pow(10000.0, 2.0 * i / 64.0);
        double t = (i - low) / double(high - low);
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        const double expected = base * (1 - t) + base / 40.0 * t;
        CHECK(inv[size_t(i)] == doctest::Approx(expected).epsilon(1e-6));
    }
    CHECK(inv[0] == 1.0f);                                                  // fastest pair untouched
    CHECK(inv[31] == doctest::Approx(std::pow(10000.0, -62.0 / 64) / 40));  // slowest pair interpolated
    DeepSeekV3Config plain = c;
    plain.yarn = false;
    CHECK(yarn_inv_freq(plain)[31] == doctest::Approx(std::pow(10000.0, -62.0 / 64)));
    CHECK(rope_cos_sin_scale(c) == 1.0f);
}

TEST_CASE("attention scale is 192^-0.5 * (0.1 ln 40 + 1)^2") {
    const DeepSeekV3Config c;
    CHECK(c.attention_scale() == doctest::Approx(0.1352338).epsilon(1e-6));
    DeepSeekV3Config plain = c;
    plain.yarn = false;
    CHECK(plain.attention_scale() == doctest::Approx(1 / std::sqrt(192.0)));
}

TEST_CASE("rope rotates interleaved pairs by pos * inv_freq") {
    std::vector<float> x = {1, 0, 0, 2, 3, 4};
    const std::vector<float> inv = {0.5f, 1.0f, 0.0f};
    rope_interleaved(x.data(), 6, 3, inv, 1.0f);
    CHECK(x[0] == doctest::Approx(std::cos(1.5)));
    CHECK(x[1] == doctest::Approx(std::sin(1.5)));
    CHECK(x[2] == doctest::Approx(-2 * std::sin(3.0)));
    CHECK(x[3] == doctest::Approx(2 * std::cos(3.0)));
    CHECK(x[4] == 3.0f);  // frequency 0: unchanged
    CHECK(x[5] == 4.0f);
}

TEST_CASE("router: group-limited top-k on a crafted example") {
    DeepSeekV3Config c;
    c.n_experts = 8, c.n_groups = 4, c.n_groups_used = 2, c.n_experts_used = 3, c.routed_scaling = 2.5f;
    // Groups {0,1} {2,3} {4,5} {6,7}. Expert 6 has the single best score, but group 3's top-2 sum is poor;
    // the bias lifts expert 3 for choosing while its weight stays the unbiased sigmoid.
    auto logit = [](double p) { return float(std::log(p / (1 - p))); };  // sigmoid^-1
    const float logits[8] = {logit(0.6),  logit(0.5), logit(0.3), logit(0.2),
                             logit(0.55), logit(0.5), logit(0.9), logit(0.01)};
    const float bias[8] = {0, 0, 0, 0.5f, 0, 0, 0, 0};
    const RoutedExperts r = route_token(c, logits, bias);
    // Biased scores: .6 .5 | .3 .7 | .55 .5 | .9 .01 -> group sums 1.1, 1.0, 1.05, 0.91 -> keep groups 0
    // and 2.
    CHECK(r.groups == std::vector<int>{0, 2});
    // Among experts 0,1,4,5 (biased .6 .5 .55 .5): 0, 4, then 1 (tie with 5 goes to the lower index).
    CHECK(r.ids == std::vector<int>{0, 4, 1});
    const double sum = 0.6 + 0.55 + 0.5;
    CHECK(r.weights[0] == doctest::Approx(0.6 / sum * 2.5));
    CHECK(r.weights[1] == doctest::Approx(0.55 / sum * 2.5));
    CHECK(r.weights[2] == doctest::Approx(0.5 / sum * 2.5));
    // The narrowest decision: expert 1 beat expert 5 on a tie (the group gap 1.05 - 1.0 is wider).
    CHECK(r.margin == doctest::Approx(0.0).epsilon(1e-6));

    // Without the group limit expert 6 (0.9) is picked first.
    c.n_groups = 1, c.n_groups_used = 1;
    const RoutedExperts all = route_token(c, logits, bias);
    CHECK(all.ids == std::vector<int>{6, 3, 0});
    // The weight of the bias-lifted expert 3 is its unbiased 0.2.
    CHECK(all.weights[1] == doctest::Approx(0.2 / (0.9 + 0.2 + 0.6) * 2.5));
    CHECK(all.margin == doctest::Approx(0.6 - 0.55));  // third chosen (0.6) against the best rejected (0.55)
    c.n_groups = 4, c.n_groups_used = 2, c.n_experts_used = 1;
    CHECK(route_token(c, logits, bias).margin == doctest::Approx(0.6 - 0.55));  // experts 0 vs 4 (groups: 0.05)
}

TEST_CASE("config.json round trip and the DeepSeek-V3 release's config") {
    DeepSeekV3Config c;
    c.n_layers = 5, c.n_groups_used = 3, c.routed_scaling = 1.5f;
    CHECK(config_from_hf_json(config_to_hf_json(c, "bfloat16"), "x") == c);
    // The fields of the official config.json that matter (values as released).
    const auto official = nlohmann::json::parse(R"({
      "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "vocab_size": 129280,
      "hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_hidden_layers": 61,
      "num_nextn_predict_layers": 1, "num_attention_heads": 128, "num_key_value_heads": 128,
      "n_shared_experts": 1, "n_routed_experts": 256, "ep_size": 1, "routed_scaling_factor": 2.5,
      "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64, "v_head_dim": 128,
      "qk_nope_head_dim": 128, "topk_method": "noaux_tc", "n_group": 8, "topk_group": 4,
      "num_experts_per_tok": 8, "moe_layer_freq": 1, "first_k_dense_replace": 3, "norm_topk_prob": true,
      "scoring_func": "sigmoid", "hidden_act": "silu", "max_position_embeddings": 163840, "rms_norm_eps": 1e-06,
      "bos_token_id": 0, "eos_token_id": 1, "rope_theta": 10000,
      "rope_scaling": {"beta_fast": 32, "beta_slow": 1, "factor": 40, "mscale": 1.0, "mscale_all_dim": 1.0,
                       "original_max_position_embeddings": 4096, "type": "yarn"}})");
    CHECK(config_from_hf_json(official, "config.json") == DeepSeekV3Config{});
    auto bad = official;
    bad["n_group"] = 7;
    CHECK_THROWS_WITH_AS(config_from_hf_json(bad, "config.json"),
                         doctest::Contains("do not split into 7 groups"), std::runtime_error);
    bad = official;
    bad["model_type"] = "llama";
    CHECK_THROWS_WITH_AS(config_from_hf_json(bad, "config.json"), doctest::Contains("model_type is 'llama'"),
                         std::runtime_error);
    bad = official;
    bad["hidden_size"] = "big";
    CHECK_THROWS_WITH_AS(config_from_hf_json(bad, "config.json"),
                         doctest::Contains("'hidden_size' is not a number"), std::runtime_error);
}
