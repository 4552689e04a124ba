#include "runtime/plan.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "codegen/kernel_fields.hpp"
#include "codegen/x64/expert_ffn_desc.hpp"
#include "codegen/x64/expert_gemm_desc.hpp"

namespace mf {

using nlohmann::json;

std::string ModelShape::key() const {
    std::string s = fmt::format("h{}-i{}-k{}-{}", hidden, moe_intermediate, top_k, wtype);
    if (group_size > 0) s += fmt::format("-g{}", group_size);
    return s + fmt::format("-mla{}x{}r{}", heads, kv_lora_rank, qk_rope);
}

ModelShape model_shape_of(const DeepSeekV3Config& c, const std::string& expert_wtype) {
    ModelShape s;
    s.hidden = int(c.hidden);
    s.moe_intermediate = int(c.moe_inter);
    s.top_k = int(c.n_experts_used);
    s.wtype = expert_wtype;
    s.group_size = expert_wtype == "int4" ? kInt4Group : 0;
    s.heads = int(c.n_heads);
    s.kv_lora_rank = int(c.kv_lora_rank);
    s.qk_rope = int(c.qk_rope);
    return s;
}

const PlannedKernel* Plan::find(const std::string& family, const std::string& role, int m) const {
    for (const auto& k : kernels)
        if (k.family == family && k.role == role && m >= k.m_min && m <= k.m_max) return &k;
    return nullptr;
}

namespace {

WeightType weight_type_of(const ModelShape& s) {
    WeightType t{};
    enum_parse(s.wtype, t);
    return t;
}

// The GEMMs of one routed expert: gate and up interleaved in one pass (N = 2 x intermediate over K = hidden), then
// down (N = hidden over K = intermediate).
struct Role {
    const char* name;
    int k, n;
};

std::vector<Role> expert_roles(const ModelShape& s) {
    return {{"gate_up", s.hidden, 2 * s.moe_intermediate}, {"down", s.moe_intermediate, s.hidden}};
}

}  // namespace

Plan default_plan(const std::string& host_fingerprint, const ModelShape& shape) {
    Plan p;
    p.host_fingerprint = host_fingerprint;
    p.shape = shape;
    p.is_default = true;
    p.amx_min_tokens = ExpertFfnConfig{}.gemv_max_m + 1;
    const WeightType wt = weight_type_of(shape);
    PlannedKernel f;
    f.family = "moe_ffn";
    f.role = "expert";
    const ExpertFfnDesc fd{wt, shape.hidden, shape.moe_intermediate};
    f.desc = fields_to_json(fd);
    f.config = f.default_config = fields_to_json(ExpertFfnConfig{});
    f.name = kernel_name(fd, ExpertFfnConfig{});
    p.kernels.push_back(f);
    for (const Role& r : expert_roles(shape)) {
        PlannedKernel g;
        g.family = "gemv_avx512";
        g.role = r.name;
        const GemvDesc gd{wt, r.k, 1};
        g.desc = fields_to_json(gd);
        g.config = g.default_config = fields_to_json(GemvConfig{});
        g.name = kernel_name(gd, GemvConfig{});
        g.m_min = 1;
        g.m_max = p.amx_min_tokens - 1;
        p.kernels.push_back(g);
        PlannedKernel a;
        a.family = "gemm_amx";
        a.role = r.name;
        const AmxGemmDesc ad{wt, r.k};
        a.desc = fields_to_json(ad);
        a.config = a.default_config = fields_to_json(AmxGemmConfig{});
        a.name = kernel_name(ad, AmxGemmConfig{});
        a.m_min = p.amx_min_tokens;
        p.kernels.push_back(a);
    }
    return p;
}

std::string plan_file_name(const std::string& host_fingerprint, const ModelShape& shape) {
    return fmt::format("plan-{}-{}.json", host_fingerprint, shape.key());
}

json model_shape_to_json(const ModelShape& s) {
    return {{"hidden", s.hidden},   {"moe_intermediate", s.moe_intermediate}, {"top_k", s.top_k},
            {"wtype", s.wtype},     {"group_size", s.group_size},             {"heads", s.heads},
            {"kv_lora_rank", s.kv_lora_rank}, {"qk_rope", s.qk_rope}};
}

ModelShape model_shape_from_json(const json& j) {
    ModelShape s;
    s.hidden = j.at("hidden").get<int>();
    s.moe_intermediate = j.at("moe_intermediate").get<int>();
    s.top_k = j.at("top_k").get<int>();
    s.wtype = j.at("wtype").get<std::string>();
    s.group_size = j.at("group_size").get<int>();
    s.heads = j.at("heads").get<int>();
    s.kv_lora_rank = j.at("kv_lora_rank").get<int>();
    s.qk_rope = j.at("qk_rope").get<int>();
    if (s.hidden <= 0 || s.moe_intermediate <= 0 || s.top_k <= 0 || s.top_k > 4096 || s.group_size < 0 ||
        s.heads <= 0 || s.kv_lora_rank <= 0 || s.qk_rope < 0)
        throw std::runtime_error("model shape out of range: " + j.dump());
    return s;
}

json plan_to_json(const Plan& p) {
    json kernels = json::array(), trials = json::array(), checks = json::array();
    for (const auto& c : p.checks)
        checks.push_back({{"m", c.m}, {"experts", c.experts}, {"experts_per_call", c.experts_per_call},
                          {"default_seconds", c.default_seconds},
                          {"tuned_seconds", c.tuned_seconds}, {"roofline_ratio", c.roofline_ratio}});
    for (const auto& k : p.kernels)
        kernels.push_back({{"family", k.family},       {"role", k.role},
                           {"name", k.name},           {"desc", k.desc},
                           {"config", k.config},       {"default_config", k.default_config},
                           {"m_min", k.m_min},         {"m_max", k.m_max},
                           {"bench_m", k.bench_m},     {"bench_experts", k.bench_experts},
                           {"seconds", k.seconds},
                           {"default_seconds", k.default_seconds}, {"ops", k.ops},
                           {"bytes", k.bytes},         {"verified", k.verified}});
    for (const auto& t : p.trials)
        trials.push_back({t.family, t.config, t.at_seconds, t.seconds, t.rung, t.is_default, t.failed});
    const auto& th = p.threads;
    const auto& h = p.host;
    return {
        {"version", p.version},
        {"host_fingerprint", p.host_fingerprint},
        {"host_description", p.host_description},
        {"shape", model_shape_to_json(p.shape)},
        {"created_at", p.created_at},
        {"tool_version", p.tool_version},
        {"tune_seconds", p.tune_seconds},
        {"budget_seconds", p.budget_seconds},
        {"tolerance", p.tolerance},
        {"amx_min_tokens", p.amx_min_tokens},
        {"kernels", kernels},
        {"threads", {{"workers", th.workers}, {"cpus", th.cpus}, {"numa_node_of_worker", th.numa_node_of_worker},
                     {"threads_per_expert", th.threads_per_expert},
                     {"bind_experts_to_numa", th.bind_experts_to_numa}}},
        {"gpu", {{"cpu_only", p.gpu.cpu_only}, {"device", p.gpu.device}, {"gpu_layers", p.gpu.gpu_layers},
                 {"name", p.gpu.name}, {"sm", p.gpu.sm}}},
        {"host", {{"cpu_name", h.cpu_name}, {"cores", h.cores}, {"amx_int8_ops", h.amx_int8_ops},
                  {"amx_bf16_flops", h.amx_bf16_flops}, {"avx512_vnni_ops", h.avx512_vnni_ops},
                  {"dram_read_bytes", h.dram_read_bytes}, {"llc_bytes", h.llc_bytes},
                  {"gpu_copy_bytes", h.gpu_copy_bytes}}},
        {"trials_columns", {"family", "config", "at_seconds", "seconds", "rung", "is_default", "failed"}},
        {"trials", trials},
        {"checks", checks},
        {"notes", p.notes},
    };
}

Plan plan_from_json(const json& j) {
    const char* key = "version";
    try {
        Plan p;
        p.version = j.at("version").get<int>();
        if (p.version == 1)
            throw std::runtime_error(
                "plan version 1 (keyed by layer and expert counts) is not read by this version, which keys plans by "
                "the kernels' shapes so that a v3-slice model shares the full model's plan");
        if (p.version != Plan::kVersion)
            throw std::runtime_error(fmt::format("plan version {} is not the supported version {}; run `moeforge tune` "
                                                 "again to rewrite it",
                                                 p.version, Plan::kVersion));
        key = "host_fingerprint";
        p.host_fingerprint = j.at(key).get<std::string>();
        p.host_description = j.value("host_description", "");
        key = "shape";
        p.shape = model_shape_from_json(j.at(key));
        p.created_at = j.value("created_at", "");
        p.tool_version = j.value("tool_version", "");
        p.tune_seconds = j.value("tune_seconds", 0.0);
        p.budget_seconds = j.value("budget_seconds", 0.0);
        p.tolerance = j.value("tolerance", 0.0);
        key = "amx_min_tokens";
        p.amx_min_tokens = j.at(key).get<int>();
        key = "kernels";
        for (const auto& k : j.at(key)) {
            PlannedKernel pk;
            pk.family = k.at("family").get<std::string>();
            pk.role = k.at("role").get<std::string>();
            pk.name = k.at("name").get<std::string>();
            pk.desc = k.at("desc");
            pk.config = k.at("config");
            pk.default_config = k.value("default_config", json::object());
            pk.m_min = k.at("m_min").get<int>();
            pk.m_max = k.at("m_max").get<int>();
            pk.bench_m = k.value("bench_m", 0);
            pk.bench_experts = k.value("bench_experts", 1);
            pk.seconds = k.value("seconds", 0.0);
            pk.default_seconds = k.value("default_seconds", 0.0);
            pk.ops = k.value("ops", 0.0);
            pk.bytes = k.value("bytes", 0.0);
            pk.verified = k.value("verified", false);
            if (!pk.desc.is_object() || !pk.config.is_object() || pk.m_min < 0 || pk.m_max < pk.m_min)
                throw std::runtime_error("kernel '" + pk.name + "': bad desc/config or token range");
            p.kernels.push_back(std::move(pk));
        }
        key = "threads";
        const auto& th = j.at(key);
        p.threads.workers = th.at("workers").get<int>();
        p.threads.cpus = th.at("cpus").get<std::vector<int>>();
        p.threads.numa_node_of_worker = th.at("numa_node_of_worker").get<std::vector<int>>();
        p.threads.threads_per_expert = th.at("threads_per_expert").get<int>();
        p.threads.bind_experts_to_numa = th.at("bind_experts_to_numa").get<bool>();
        if (p.threads.workers < 0 || p.threads.threads_per_expert < 0 ||
            (!p.threads.cpus.empty() && int(p.threads.cpus.size()) != p.threads.workers) ||
            p.threads.numa_node_of_worker.size() != p.threads.cpus.size())
            throw std::runtime_error("workers, cpus and numa_node_of_worker disagree");
        key = "gpu";
        const auto& g = j.at(key);
        p.gpu.cpu_only = g.at("cpu_only").get<bool>();
        p.gpu.device = g.at("device").get<int>();
        p.gpu.gpu_layers = g.at("gpu_layers").get<int>();
        p.gpu.name = g.value("name", "");
        p.gpu.sm = g.value("sm", 0);
        key = "host";
        const auto& h = j.at(key);
        p.host.cpu_name = h.at("cpu_name").get<std::string>();
        p.host.cores = h.at("cores").get<int>();
        p.host.amx_int8_ops = h.at("amx_int8_ops").get<double>();
        p.host.amx_bf16_flops = h.at("amx_bf16_flops").get<double>();
        p.host.avx512_vnni_ops = h.at("avx512_vnni_ops").get<double>();
        p.host.dram_read_bytes = h.at("dram_read_bytes").get<double>();
        p.host.llc_bytes = h.at("llc_bytes").get<uint64_t>();
        p.host.gpu_copy_bytes = h.value("gpu_copy_bytes", 0.0);
        key = "notes";
        if (j.contains(key)) p.notes = j.at(key).get<std::vector<std::string>>();
        key = "trials";
        if (j.contains(key))
            for (const auto& t : j.at(key)) {
                if (!t.is_array() || t.size() != 7) throw std::runtime_error("a trial is not a 7-element row");
                p.trials.push_back({t[0].get<std::string>(), t[1].get<std::string>(), t[2].get<double>(),
                                    t[3].get<double>(), t[4].get<int>(), t[5].get<bool>(), t[6].get<bool>()});
            }
        key = "checks";
        if (j.contains(key))
            for (const auto& c : j.at(key))
                p.checks.push_back({c.at("m").get<int>(), c.at("experts").get<int>(),
                                    c.value("experts_per_call", 0), c.at("default_seconds").get<double>(),
                                    c.at("tuned_seconds").get<double>(), c.at("roofline_ratio").get<double>()});
        return p;
    } catch (const json::exception& e) {
        throw std::runtime_error(fmt::format("plan key '{}': {}", key, e.what()));
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error(fmt::format("plan key '{}': {}", key, e.what()));
    }
}

Plan read_plan_file(const std::filesystem::path& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read the plan " + path.string());
    std::stringstream ss;
    ss << f.rdbuf();
    try {
        Plan p = plan_from_json(json::parse(ss.str()));
        p.source = path.string();
        return p;
    } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("plan {}: {} (delete it or run `moeforge tune` again)", path.string(),
                                             e.what()));
    }
}

void write_plan_file(const std::filesystem::path& path, const Plan& p) {
    const auto tmp = path.string() + ".tmp." + std::to_string(getpid());
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) throw std::runtime_error("cannot write " + tmp);
        f << plan_to_json(p).dump(1) << '\n';
        if (!f.flush()) throw std::runtime_error("cannot write " + tmp + " (disk full?)");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) throw std::runtime_error("cannot rename " + tmp + " to " + path.string() + ": " + ec.message());
}

void check_plan_matches(const Plan& p, const std::string& host_fingerprint, const ModelShape& shape,
                        const std::string& where) {
    if (p.host_fingerprint != host_fingerprint)
        throw PlanMismatch(fmt::format(
            "the plan {} was tuned on host {} but this host is {}; kernels tuned elsewhere may be slow or use "
            "instructions this CPU lacks. Run `moeforge tune` here (or pass no plan to use the defaults)",
            where, p.host_fingerprint, host_fingerprint));
    if (!(p.shape == shape))
        throw PlanMismatch(fmt::format("the plan {} was tuned for model shape {} but the model is {}; run "
                                       "`moeforge tune --model <this model>`",
                                       where, p.shape.key(), shape.key()));
}

namespace {

// Version 1 plans were named with layer/expert counts and no attention shape ("...-e256-k8-int8.json"): name one
// if this host has such a file, so the user knows why it is not used.
std::string older_plan_note(const std::filesystem::path& cache_dir, const std::string& host_fingerprint) {
    std::error_code ec;
    const std::string prefix = "plan-" + host_fingerprint + "-";
    for (const auto& e : std::filesystem::directory_iterator(cache_dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind(prefix, 0) == 0 && name.find("-mla") == std::string::npos && name.size() > 5 &&
            name.compare(name.size() - 5, 5, ".json") == 0)
            return "; " + name + " there is a version 1 plan, keyed by layer counts, which this version does not read";
    }
    return "";
}

}  // namespace

Plan load_plan(const std::filesystem::path& cache_dir, const std::string& host_fingerprint, const ModelShape& shape,
               const std::filesystem::path& explicit_file) {
    std::filesystem::path path = explicit_file;
    if (path.empty()) {
        path = cache_dir / plan_file_name(host_fingerprint, shape);
        if (!std::filesystem::exists(path)) {
            Plan p = default_plan(host_fingerprint, shape);
            p.source = fmt::format("no tuned plan {} for this host and shape: using the documented defaults "
                                   "(run `moeforge tune` to fit the kernels to this machine{})",
                                   path.string(), older_plan_note(cache_dir, host_fingerprint));
            return p;
        }
    }
    Plan p = read_plan_file(path);
    check_plan_matches(p, host_fingerprint, shape, path.string());
    return p;
}

}  // namespace mf
