// The plan: JSON round trip, file naming, refusal of another host's or shape's plan, defaults when none exists.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "codegen/kernel_fields.hpp"
#include "codegen/x64/expert_ffn_desc.hpp"
#include "codegen/x64/expert_gemm_desc.hpp"
#include "model/synthetic_model.hpp"
#include "runtime/plan.hpp"

using namespace mf;

namespace {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        path = std::filesystem::temp_directory_path() / ("mf_test_plan_" + std::to_string(getpid()));
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

Plan sample_plan() {
    ModelShape s;
    s.top_k = 6;
    s.wtype = "int4";
    s.group_size = 32;
    Plan p = default_plan("0123456789abcdef", s);
    p.is_default = false;
    p.host_description = "Test CPU | avx512f | 1 socket";
    p.created_at = "2026-11-27T12:00:00Z";
    p.tool_version = "moeforge 0.1.0";
    p.tune_seconds = 123.5;
    p.budget_seconds = 180;
    p.tolerance = 0.03;
    p.amx_min_tokens = 6;
    p.kernels[1].config = fields_to_json(GemvConfig{4, 16, 2});
    p.kernels[1].seconds = 1.25e-3;
    p.kernels[1].default_seconds = 1.5e-3;
    p.kernels[1].ops = 2.0 * 7168 * 4096;
    p.kernels[1].bytes = 7168.0 * 4096;
    p.kernels[1].bench_m = 4;
    p.kernels[1].bench_experts = 8;
    p.kernels[1].verified = true;
    p.threads = {2, {0, 1}, {0, 0}, 1, false};
    p.gpu = {false, 1, 40, "NVIDIA H200", 90};
    p.host = {"Test CPU", 2, 4.8e12, 3.3e12, 1.1e12, 1.56e10, 480ull << 20, 3.9e12};
    p.notes = {"a note"};
    PlannedKernel mla;  // a GPU entry: config and split policy in one object, a range of contexts
    mla.family = "mla_decode";
    mla.role = "decode";
    mla.name = "mla_decode_bf16_h128_lat512_rope64_pg64__t32_s2_c4";
    mla.desc = {{"dtype", "bf16"}, {"heads", 128}, {"latent_dim", 512}, {"rope_dim", 64}, {"page_size", 64}};
    mla.config = {{"tile_tokens", 32}, {"stages", 2}, {"cluster", 4}, {"min_split_tiles", 2}, {"split_sm_fill_pct", 50}};
    mla.m_min = 2897;
    mla.m_max = 16384;
    mla.bench_m = 8192;
    p.kernels.push_back(mla);
    p.trials = {{"gemm_amx k7168 m256", "mt2nt2nmpf0", 0.5, 0.01, 0, true, false},
                {"gemm_amx k7168 m256", "mt1nt4mnpf4", 0.9, 0.008, 1, false, false},
                {"gemm_amx k7168 m256", "mt4nt4mnpf4", 0.95, 0, -1, false, true}};
    p.checks = {{1, 16, 8, 0.02, 0.018, 0.8}, {256, 16, 4, 0.5, 0.4, 0.3}};
    return p;
}

}  // namespace

TEST_CASE("plan: JSON round trip keeps every field") {
    const Plan p = sample_plan();
    const Plan q = plan_from_json(nlohmann::json::parse(plan_to_json(p).dump()));
    CHECK(plan_to_json(q) == plan_to_json(p));
    CHECK(q.shape == p.shape);
    CHECK(q.threads.cpus == std::vector<int>{0, 1});
    CHECK(q.gpu.gpu_layers == 40);
    CHECK(q.gpu.cpu_only == false);
    REQUIRE(q.kernels.size() == p.kernels.size());
    CHECK(q.kernels[1].family == "gemv_avx512");
    CHECK(fields_from_json<GemvConfig>(q.kernels[1].config) == GemvConfig{4, 16, 2});
    CHECK(q.kernels[1].speedup() == doctest::Approx(1.2));
    CHECK(q.kernels[1].bench_experts == 8);
    REQUIRE(q.checks.size() == 2);
    CHECK(q.checks[1].speedup() == doctest::Approx(1.25));
    REQUIRE(q.trials.size() == 3);
    CHECK(q.trials[2].failed);
    CHECK_FALSE(q.trials[1].failed);
    CHECK(q.trials[1].config == "mt1nt4mnpf4");
    CHECK(q.trials[1].seconds == 0.008);
    CHECK(q.gpu.name == "NVIDIA H200");
    CHECK(q.gpu.sm == 90);
    CHECK(q.host.gpu_copy_bytes == 3.9e12);
    CHECK(q.notes == std::vector<std::string>{"a note"});
    const PlannedKernel* m = q.find("mla_decode", "decode", 8192);
    REQUIRE(m);
    CHECK(m->config.at("split_sm_fill_pct") == 50);
    CHECK(m->desc.at("heads") == 128);
    CHECK(q.find("mla_decode", "decode", 1024) == nullptr);
}

TEST_CASE("plan: file round trip and file name spell host and shape") {
    TempDir dir;
    const Plan p = sample_plan();
    const auto path = dir.path / plan_file_name(p.host_fingerprint, p.shape);
    CHECK(path.filename() == "plan-0123456789abcdef-h7168-i2048-k6-int4-g32-mla128x512r64.json");
    write_plan_file(path, p);
    const Plan q = read_plan_file(path);
    CHECK(plan_to_json(q) == plan_to_json(p));
    CHECK(q.source == path.string());
    const Plan r = load_plan(dir.path, p.host_fingerprint, p.shape);
    CHECK_FALSE(r.is_default);
    CHECK(r.amx_min_tokens == 6);
    CHECK(r.threads.threads_per_expert == 1);
}

TEST_CASE("plan: a plan from another host or shape is refused naming both") {
    TempDir dir;
    const Plan p = sample_plan();
    const auto path = dir.path / "copied.json";
    write_plan_file(path, p);
    try {
        load_plan(dir.path, "fedcba9876543210", p.shape, path);
        FAIL("another host's plan was accepted");
    } catch (const PlanMismatch& e) {
        const std::string msg = e.what();
        CHECK(msg.find("0123456789abcdef") != std::string::npos);
        CHECK(msg.find("fedcba9876543210") != std::string::npos);
        CHECK(msg.find("moeforge tune") != std::string::npos);
    }
    ModelShape other = p.shape;
    other.hidden = 4096;
    CHECK_THROWS_AS(load_plan(dir.path, p.host_fingerprint, other, path), PlanMismatch);
    // The same refusal when the file sits under this host's name in the cache dir but was made elsewhere.
    write_plan_file(dir.path / plan_file_name("fedcba9876543210", p.shape), p);
    CHECK_THROWS_AS(load_plan(dir.path, "fedcba9876543210", p.shape), PlanMismatch);
}

TEST_CASE("plan: no plan gives the documented defaults and says so") {
    TempDir dir;
    const ModelShape s;
    const Plan p = load_plan(dir.path, "0123456789abcdef", s);
    CHECK(p.is_default);
    CHECK(p.source.find("defaults") != std::string::npos);
    CHECK(p.source.find("moeforge tune") != std::string::npos);
    CHECK(p.amx_min_tokens == ExpertFfnConfig{}.gemv_max_m + 1);
    const PlannedKernel* f = p.find("moe_ffn", "expert", 300);
    REQUIRE(f);
    CHECK(fields_from_json<ExpertFfnConfig>(f->config) == ExpertFfnConfig{});
    CHECK(fields_from_json<ExpertFfnDesc>(f->desc).hidden == 7168);
    const PlannedKernel* g = p.find("gemv_avx512", "gate_up", 1);
    const PlannedKernel* a = p.find("gemm_amx", "down", 1024);
    REQUIRE(g);
    REQUIRE(a);
    CHECK(fields_from_json<GemvConfig>(g->config) == GemvConfig{});
    CHECK(fields_from_json<AmxGemmConfig>(a->config) == AmxGemmConfig{});
    CHECK(fields_from_json<AmxGemmDesc>(a->desc).k == 2048);
    CHECK(fields_from_json<GemvDesc>(g->desc).k == 7168);
    CHECK(p.find("gemm_amx", "down", p.amx_min_tokens - 1) == nullptr);
    CHECK(p.find("gemv_avx512", "down", p.amx_min_tokens - 1) != nullptr);
    CHECK(p.find("gemv_avx512", "down", p.amx_min_tokens) == nullptr);
}

TEST_CASE("plan: bad files are rejected naming the key") {
    TempDir dir;
    nlohmann::json j = plan_to_json(sample_plan());
    j["version"] = 99;
    CHECK_THROWS_WITH_AS(plan_from_json(j), doctest::Contains("version 99"), std::runtime_error);
    j = plan_to_json(sample_plan());
    j["threads"].erase("cpus");
    CHECK_THROWS_WITH_AS(plan_from_json(j), doctest::Contains("threads"), std::runtime_error);
    j = plan_to_json(sample_plan());
    j["shape"]["top_k"] = 0;
    CHECK_THROWS_WITH_AS(plan_from_json(j), doctest::Contains("shape"), std::runtime_error);
    const auto path = dir.path / "broken.json";
    std::ofstream(path) << "{ \"version\": 1, ";
    CHECK_THROWS_WITH_AS(read_plan_file(path), doctest::Contains("broken.json"), std::runtime_error);
}

TEST_CASE("plan: the key holds what the kernels see, so a v3-slice model finds the full model's plan") {
    const ModelShape full = model_shape_of(DeepSeekV3Config{}, "int8");
    CHECK(full == ModelShape{});
    CHECK(full.key() == "h7168-i2048-k8-int8-mla128x512r64");
    for (const char* preset : {"v3-slice-1", "v3-slice-4"}) {
        CAPTURE(preset);
        const DeepSeekV3Config c = preset_config(preset);
        CHECK(c.n_layers < DeepSeekV3Config{}.n_layers);  // fewer layers, same widths
        CHECK(model_shape_of(c, "int8") == full);
    }
    // What the kernels see is in the key: widths, experts per token, format, attention shape.
    DeepSeekV3Config c;
    c.moe_inter = 1024;
    CHECK_FALSE(model_shape_of(c, "int8") == full);
    c = DeepSeekV3Config{};
    c.n_experts_used = 6;
    CHECK_FALSE(model_shape_of(c, "int8") == full);
    c = DeepSeekV3Config{};
    c.n_heads = 16;
    CHECK(model_shape_of(c, "int8").key() == "h7168-i2048-k8-int8-mla16x512r64");
    CHECK(model_shape_of(DeepSeekV3Config{}, "int4").key() == "h7168-i2048-k8-int4-g32-mla128x512r64");

    TempDir dir;
    Plan p = default_plan("0123456789abcdef", full);
    p.is_default = false;
    write_plan_file(dir.path / plan_file_name(p.host_fingerprint, full), p);
    const Plan q = load_plan(dir.path, p.host_fingerprint, model_shape_of(preset_config("v3-slice-2"), "int8"));
    CHECK_FALSE(q.is_default);
}

TEST_CASE("plan: a version 1 plan (keyed by layer counts) is refused with what to do") {
    TempDir dir;
    nlohmann::json j = plan_to_json(sample_plan());
    j["version"] = 1;
    j["shape"] = {{"hidden", 7168}, {"moe_intermediate", 2048}, {"experts", 256}, {"top_k", 8},
                  {"moe_layers", 58}, {"wtype", "int8"}, {"group_size", 0}};
    CHECK_THROWS_WITH_AS(plan_from_json(j), doctest::Contains("version 1"), std::runtime_error);
    // Under its old name in the cache dir it is not read, and the defaults' note names it.
    std::ofstream(dir.path / "plan-0123456789abcdef-h7168-i2048-e256-k8-int8.json") << j.dump();
    CHECK_THROWS_WITH_AS(read_plan_file(dir.path / "plan-0123456789abcdef-h7168-i2048-e256-k8-int8.json"),
                         doctest::Contains("run `moeforge tune` again"), std::runtime_error);
    const Plan d = load_plan(dir.path, "0123456789abcdef", ModelShape{});
    CHECK(d.is_default);
    CHECK(d.source.find("plan-0123456789abcdef-h7168-i2048-e256-k8-int8.json") != std::string::npos);
    CHECK(d.source.find("version 1") != std::string::npos);
}
