// The fp32 reference forward against llama.cpp itself: mkmodel's tiny model (f32 weights, both GGUF attention
// layouts) through llama.cpp's deepseek2 graph via node-llama-cpp, comparing the next-token probabilities at
// every position. Runs where node and node-llama-cpp are installed (see the skip message), else skips.
#include <doctest/doctest.h>
#include <fmt/core.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "model/model.hpp"
#include "model/reference_forward.hpp"
#include "model/synthetic_model.hpp"
#include "tests/model/scratch_dir.hpp"
#include "tools/cache_dir.hpp"

using namespace mf;

namespace {

std::filesystem::path node_llama_cpp_entry() {
    if (const char* e = std::getenv("MOEFORGE_NODE_LLAMA_CPP")) return e;
    return cache_dir() / "llama-cpp-node/node_modules/node-llama-cpp/dist/index.js";
}

std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    std::array<char, 4096> buf;
    while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
    pclose(p);
    return out;
}

}  // namespace

TEST_CASE("reference forward matches llama.cpp's deepseek2 on mkmodel's tiny model") {
    const auto entry = node_llama_cpp_entry();
    if (!std::filesystem::exists(entry) || run("node --version 2>/dev/null").empty()) {
        MESSAGE(
            "skipped: llama.cpp for node is not installed; to run this comparison: npm i -E "
            "node-llama-cpp@3.21.1 "
            "--prefix "
            << (cache_dir() / "llama-cpp-node").string()
            << " (or set MOEFORGE_NODE_LLAMA_CPP to its "
               "dist/index.js)");
        return;
    }
    test::ScratchDir dir("llama-cpp");
    const std::vector<int32_t> tokens = {0, 17, 299, 5000, 129279, 42, 42, 1, 7, 100000};
    const std::string script =
        std::string(MOEFORGE_SOURCE_DIR) + "/tests/model/llama_cpp_reference/probabilities.mjs";
    std::vector<std::filesystem::path> files;
    std::vector<std::unique_ptr<Model>> models;
    for (bool mla : {true, false}) {
        SyntheticModelOptions o;
        o.config = preset_config("tiny");
        o.name = mla ? "tiny-mla" : "tiny-legacy";
        o.seed = 3;
        o.wtype =
            GgmlType::f32;  // llama.cpp keeps f32 activations for f32 weights: a like-for-like comparison
        o.gguf_mla_layout = mla;
        o.safetensors = false;
        for (int i = 0; i < 256; ++i) o.vocab.tokens.push_back(fmt::format("<{}>", i));
        o.vocab.token_types.assign(256, 1);
        files.push_back(write_synthetic_model(o, dir.path()).gguf);
        models.push_back(Model::open(files.back()));
    }
    std::string cmd =
        fmt::format("node '{}' '{}' '{}' 8", script, entry.string(), nlohmann::json(tokens).dump());
    for (const auto& f : files) cmd += " '" + f.string() + "'";
    const std::string out = run(cmd + " 2>&1");
    nlohmann::json all;
    try {
        all = nlohmann::json::parse(out.substr(out.find("{\"")));
    } catch (const std::exception&) {
        FAIL("llama.cpp run failed: " << out);
    }
    for (size_t m = 0; m < files.size(); ++m) {
        CAPTURE(files[m].filename().string());
        const Model& model = *models[m];
        CHECK(model.mla_layout() == (m == 0));
        const auto logits = reference_forward(model.config(), model.weights(), tokens);
        const auto& got = all[files[m].string()];
        REQUIRE(got.size() == tokens.size());
        const int64_t V = model.config().vocab_size;
        double worst = 0;
        for (size_t t = 0; t < tokens.size(); ++t) {
            const float* l = &logits[t * size_t(V)];
            const double mx = *std::max_element(l, l + V);
            double sum = 0;
            for (int64_t i = 0; i < V; ++i) sum += std::exp(double(l[i]) - mx);
            const int64_t best = std::max_element(l, l + V) - l;
            CHECK(got[t][0][0].get<int64_t>() == best);
            for (const auto& entry_p : got[t]) {
                const int64_t id = entry_p[0].get<int64_t>();
                const double p_llama = entry_p[1].get<double>();
                const double p_ref = std::exp(double(l[id]) - mx) / sum;
                const double rel = std::fabs(p_llama - p_ref) / p_ref;
                worst = std::max(worst, rel);
                CHECK(rel < 0.01);
            }
        }
        MESSAGE(fmt::format("{}: worst relative difference of llama.cpp's top-8 probabilities {:.2e}",
                            files[m].filename().string(), worst));
    }
}
