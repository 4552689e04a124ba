// mkmodel's tiny model through both readers: the same Config, identical dequantised weights and identical
// logits from the GGUF and the safetensors copy; split GGUFs and sharded HF directories; FP8 checkpoints;
// clear errors for a model whose tensors disagree with its config.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "model/block_formats.hpp"
#include "model/float_formats.hpp"
#include "model/gguf_vocab.hpp"
#include "model/model.hpp"
#include "model/reference_forward.hpp"
#include "model/safetensors_writer.hpp"
#include "model/synthetic_model.hpp"
#include "tests/model/scratch_dir.hpp"

using namespace mf;

namespace {

TokenizerVocab test_vocab() {
    TokenizerVocab v;
    for (int i = 0; i < 300; ++i) v.tokens.push_back("t" + std::to_string(i));
    v.token_types.assign(300, int32_t(TokenType::normal));
    v.merges = {"t 1", "t1 0"};
    v.chat_template = "{{ bos_token }}";
    return v;
}

SyntheticModelResult make_tiny(const std::filesystem::path& dir, GgmlType wtype, bool mla = true,
                               uint64_t split = 0, uint64_t shard = 5ull << 30) {
    SyntheticModelOptions o;
    o.config = preset_config("tiny");
    o.name = "tiny";
    o.seed = 42;
    o.wtype = wtype;
    o.gguf_mla_layout = mla;
    o.gguf_split_bytes = split;
    o.shard_bytes = shard;
    o.vocab = test_vocab();
    return write_synthetic_model(o, dir);
}

// Every weight of `a` equals the same weight of `b` after dequantisation (kv_b compared in its dense form).
void check_same_weights(const Model& a, const Model& b) {
    REQUIRE(a.config() == b.config());
    const auto& c = a.config();
    auto same = [](const TensorView& x, const TensorView& y) {
        CAPTURE(x.name);
        CAPTURE(y.name);
        REQUIRE(x.shape == y.shape);
        const auto vx = dequantize(x), vy = dequantize(y);
        CHECK(std::memcmp(vx.data(), vy.data(), vx.size() * 4) == 0);
    };
    same(a.weights().token_embd, b.weights().token_embd);
    same(a.weights().output, b.weights().output);
    same(a.weights().output_norm, b.weights().output_norm);
    for (int64_t i = 0; i < c.n_layers; ++i) {
        const auto& la = a.weights().layers[size_t(i)];
        const auto& lb = b.weights().layers[size_t(i)];
        for (auto m :
             {&LayerWeights::attn_norm, &LayerWeights::q_a, &LayerWeights::q_a_norm, &LayerWeights::q_b,
              &LayerWeights::kv_a, &LayerWeights::kv_a_norm, &LayerWeights::o, &LayerWeights::ffn_norm})
            same(la.*m, lb.*m);
        CHECK(dense_kv_b(c, la) == dense_kv_b(c, lb));
        if (!c.is_moe_layer(i)) {
            same(la.ffn_gate, lb.ffn_gate), same(la.ffn_up, lb.ffn_up), same(la.ffn_down, lb.ffn_down);
            continue;
        }
        same(la.router, lb.router), same(la.router_bias, lb.router_bias);
        same(la.shexp_gate, lb.shexp_gate), same(la.shexp_up, lb.shexp_up),
            same(la.shexp_down, lb.shexp_down);
        for (int64_t e = 0; e < c.n_experts; ++e)
            same(la.exp_gate[size_t(e)], lb.exp_gate[size_t(e)]),
                same(la.exp_up[size_t(e)], lb.exp_up[size_t(e)]),
                same(la.exp_down[size_t(e)], lb.exp_down[size_t(e)]);
    }
}

const std::vector<int32_t> kTokens = {0, 17, 299, 5000, 129279, 42, 42, 1};

}  // namespace

TEST_CASE("mkmodel tiny: both readers give the same config, weights and logits, the forward is deterministic") {
    test::ScratchDir dir("tiny");
    for (GgmlType wtype : {GgmlType::bf16, GgmlType::q8_0}) {
        CAPTURE(ggml_type_name(wtype));
        const auto res = make_tiny(dir.path(), wtype);
        const auto g = Model::open(res.gguf);
        const auto h = Model::open(res.hf_dir);
        CHECK(g->format() == ModelFormat::gguf);
        CHECK(h->format() == ModelFormat::safetensors);
        CHECK(g->mla_layout());
        CHECK(g->config() == preset_config("tiny"));
        CHECK(g->weights().layers[1].exp_gate[3].type == wtype);
        check_same_weights(*g, *h);

        const auto vocab = read_gguf_vocab(*g->gguf_parts()[0]);
        CHECK(vocab.tokens.size() == 129280);
        CHECK(vocab.tokens[7] == "t7");
        CHECK(vocab.tokens[129279] == "[PAD129279]");
        CHECK(vocab.token_types[129279] == int32_t(TokenType::unused));
        CHECK(vocab.merges.size() == 2);
        CHECK(vocab.chat_template == "{{ bos_token }}");

        ReferenceTrace trace;
        const auto lg = reference_forward(g->config(), g->weights(), kTokens, &trace);
        const auto lh = reference_forward(h->config(), h->weights(), kTokens);
        const auto lg2 = reference_forward(g->config(), g->weights(), kTokens);
        REQUIRE(lg.size() == kTokens.size() * 129280);
        CHECK(lg == lh);   // identical weights, identical arithmetic
        CHECK(lg == lg2);  // deterministic
        // The documented scaling keeps the residual stream O(1) through every layer and the logits finite.
        for (float r : trace.layer_rms) CHECK((r > 0.3f && r < 5.0f));
        double ss = 0;
        bool finite = true;
        for (float v : lg) finite = finite && std::isfinite(v), ss += double(v) * v;
        CHECK(finite);
        const double rms = std::sqrt(ss / double(lg.size()));
        CHECK((rms > 0.1 && rms < 10));
        // Causality: the logits of the first 4 tokens do not depend on what follows.
        const std::vector<int32_t> prefix(kTokens.begin(), kTokens.begin() + 4);
        const auto lp = reference_forward(g->config(), g->weights(), prefix);
        for (size_t i = 0; i < lp.size(); ++i)
            REQUIRE(std::fabs(lp[i] - lg[i]) <= 1e-5f * (1 + std::fabs(lg[i])));
        CHECK_THROWS_AS(reference_forward(g->config(), g->weights(), {129280}), std::invalid_argument);
    }
}

TEST_CASE(
    "legacy attn_kv_b GGUF layout, split GGUF parts and a sharded HF directory open as the same model") {
    test::ScratchDir dir("tiny-split");
    const auto legacy = make_tiny(dir / "legacy", GgmlType::bf16, false);
    const auto split = make_tiny(dir / "split", GgmlType::bf16, true, 4 << 20, 6 << 20);
    const auto a = Model::open(legacy.gguf);
    CHECK(!a->mla_layout());
    CHECK(!a->weights().layers[0].kv_b.empty());
    REQUIRE(split.gguf.filename().string().find("-00001-of-") != std::string::npos);
    const auto b = Model::open(split.gguf);
    CHECK(b->gguf_parts().size() > 2);
    CHECK(std::filesystem::exists(split.hf_dir / "model.safetensors.index.json"));
    const auto hf = Model::open(split.hf_dir);
    CHECK(hf->hf()->shards().size() > 1);
    check_same_weights(*a, *b);
    check_same_weights(*a, *hf);
    // Any part opens the whole model; a missing part is named.
    const auto second = gguf_split_paths(split.gguf).at(1);
    CHECK(Model::open(second)->gguf_parts().size() == b->gguf_parts().size());
    std::filesystem::rename(second, dir / "moved.gguf");
    CHECK_THROWS_WITH_AS(Model::open(split.gguf), doctest::Contains("part 2 of"), std::runtime_error);
}

TEST_CASE("FP8 e4m3 experts with 128x128 scale_inv blocks load and dequantise") {
    test::ScratchDir dir("fp8");
    const auto res = make_tiny(dir.path(), GgmlType::f32);
    const auto ref = Model::open(res.hf_dir);
    // Rewrite the checkpoint with every 2-D *_proj.weight of the experts in FP8 plus its block scale.
    const auto src_path = res.hf_dir / "model.safetensors";
    {
        SafetensorsFile src(src_path);
        SafetensorsWriter w(dir / "fp8.safetensors");
        auto is_fp8 = [](const SafetensorsTensor& t) {
            return t.name.find("mlp.experts.") != std::string::npos && t.shape.size() == 2;
        };
        for (const auto& t : src.tensors()) {
            if (!is_fp8(t)) {
                w.add_tensor(t.name, t.dtype, t.shape);
                continue;
            }
            w.add_tensor(t.name, "F8_E4M3", t.shape);
            w.add_tensor(t.name + "_scale_inv", "F32", {(t.shape[0] + 127) / 128, (t.shape[1] + 127) / 128});
        }
        w.begin_data();
        for (const auto& t : src.tensors()) {
            if (!is_fp8(t)) {
                w.append(t.data, t.n_bytes);
                continue;
            }
            const size_t rows = t.shape[0], cols = t.shape[1];
            std::vector<float> v(rows * cols);
            std::memcpy(v.data(), t.data, v.size() * 4);
            const size_t br = (rows + 127) / 128, bc = (cols + 127) / 128;
            std::vector<float> scale(br * bc, 0.0f);
            for (size_t r = 0; r < rows; ++r)
                for (size_t c = 0; c < cols; ++c)
                    scale[r / 128 * bc + c / 128] =
                        std::max(scale[r / 128 * bc + c / 128], std::fabs(v[r * cols + c]) / 448.0f);
            std::vector<uint8_t> q(v.size());
            for (size_t r = 0; r < rows; ++r)
                for (size_t c = 0; c < cols; ++c)
                    q[r * cols + c] = f32_to_f8e4m3(v[r * cols + c] / scale[r / 128 * bc + c / 128]);
            w.append(q.data(), q.size());
            w.append(scale.data(), scale.size() * 4);
        }
        w.finish();
    }
    std::filesystem::rename(dir / "fp8.safetensors", src_path);
    const auto fp8 = Model::open(res.hf_dir);
    const TensorView& t = fp8->weights().layers[2].exp_down[5];
    CHECK(t.type == GgmlType::f8_e4m3);
    REQUIRE(t.scale_inv != nullptr);
    const auto a = dequantize(ref->weights().layers[2].exp_down[5]);
    const auto b = dequantize(t);
    for (size_t i = 0; i < a.size(); ++i) CHECK(std::fabs(a[i] - b[i]) <= std::fabs(a[i]) / 16 + 1e-6f);
    const auto logits = reference_forward(fp8->config(), fp8->weights(), {3, 4, 5});
    for (float v : logits) REQUIRE(std::isfinite(v));
}

TEST_CASE("a GGUF whose tensors disagree with its config names the tensor") {
    test::ScratchDir dir("tiny-bad");
    const auto res = make_tiny(dir.path(), GgmlType::bf16);
    std::ifstream in(res.gguf, std::ios::binary);
    const std::string good((std::istreambuf_iterator<char>(in)), {});
    auto patched = [&](const std::string& find, const std::function<void(std::string&, size_t)>& edit) {
        std::string b = good;
        const size_t at = b.find(find);
        REQUIRE(at != std::string::npos);
        edit(b, at);
        std::ofstream(dir / "bad.gguf", std::ios::binary | std::ios::trunc)
            .write(b.data(), std::streamsize(b.size()));
        try {
            Model::open(dir / "bad.gguf");
        } catch (const std::runtime_error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    // q_lora_rank 64 -> 48: q_a no longer has the implied shape.
    const std::string key = "deepseek2.attention.q_lora_rank";
    std::string err = patched(key, [&](std::string& b, size_t at) { b[at + key.size() + 4] = 48; });
    CHECK(err.find("bad.gguf") != std::string::npos);
    CHECK(err.find("blk.0.attn_q_a.weight") != std::string::npos);
    CHECK(err.find("[64, 64]") != std::string::npos);
    CHECK(err.find("[48, 64]") != std::string::npos);
    // A renamed tensor is a missing one.
    err = patched("blk.2.attn_q_b.weight", [](std::string& b, size_t at) { b[at + 11] = 'X'; });
    CHECK(err.find("missing tensor 'blk.2.attn_q_b.weight'") != std::string::npos);
    // A wrong architecture.
    const std::string arch = "deepseek2";
    err = patched("general.architecture", [&](std::string& b, size_t at) {
        const size_t v = b.find(arch, at);
        b[v] = 'D';
    });
    CHECK(err.find("Deepseek2") != std::string::npos);
}

TEST_CASE(
    "k-quant experts (q4_K, q5_K, q6_K) load identically through both readers and give the same logits") {
    test::ScratchDir dir("kquant");
    DeepSeekV3Config c = preset_config("tiny");
    c.vocab_size = 512, c.hidden = 256, c.n_layers = 2, c.n_dense_layers = 1, c.dense_inter = 256,
    c.moe_inter = 256;
    c.n_experts = 8, c.n_groups = 4, c.n_groups_used = 2, c.n_experts_used = 2;
    for (GgmlType wtype : {GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k}) {
        CAPTURE(ggml_type_name(wtype));
        SyntheticModelOptions o;
        o.config = c;
        o.name = "k";
        o.wtype = wtype;
        o.vocab = test_vocab();
        const auto res = write_synthetic_model(o, dir.path());
        CHECK(res.notes.empty());
        const auto g = Model::open(res.gguf);
        const auto h = Model::open(res.hf_dir);
        CHECK(g->weights().layers[0].ffn_down.type == wtype);
        CHECK(g->weights().layers[1].exp_down[7].type == wtype);
        CHECK(g->weights().layers[1].shexp_up.type == wtype);
        CHECK(h->weights().layers[1].exp_down[7].type == GgmlType::f32);
        check_same_weights(*g, *h);
        const std::vector<int32_t> tokens = {1, 2, 3, 511};
        CHECK(reference_forward(g->config(), g->weights(), tokens) ==
              reference_forward(h->config(), h->weights(), tokens));
    }
}
