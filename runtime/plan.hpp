// The plan: what `moeforge tune` chose for one host and one model shape, as plain data. It is the contract between
// tune (which writes it) and the runtime (which loads it and resolves its kernels once, before the hot path).
//
// Stored as JSON in the cache dir as plan-<host fingerprint>-<shape key>.json. Kernel descriptors and configs are
// kept in the kernels' own JSON (codegen/kernel_fields.hpp: fields_to_json / fields_from_json), so the plan never
// has to change when a kernel gains a tuning field. A plan made on another host is refused, naming both
// fingerprints; with no plan the runtime uses default_plan() and says so (Plan::is_default).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/deepseek_v3_config.hpp"

namespace mf {

// What the tuned kernels depend on, and nothing else: the plan's key. The routed experts' widths, experts per token
// (the decode batch of one token routes to top_k experts) and compute format ("int8", "int4" or "bf16"; group_size
// is the int4 group along K, 0 for the other formats) for the CPU kernels; the MLA attention shape (heads, latent
// and rope widths of the cache) for the GPU decode kernel. Layer and expert counts are not part of it: a
// `v3-slice-N` model (DeepSeek-V3's widths, fewer layers) uses the full model's plan. DeepSeek-V3/R1's by default.
struct ModelShape {
    int hidden = 7168;
    int moe_intermediate = 2048;
    int top_k = 8;
    std::string wtype = "int8";
    int group_size = 0;
    int heads = 128;        // MLA attention heads
    int kv_lora_rank = 512; // latent (c_kv) width of the cache
    int qk_rope = 64;       // rope (k_pe) width of the cache

    // "h7168-i2048-k8-int8-mla128x512r64" (int4: "...-int4-g32-mla..."): the shape part of a plan's file name.
    std::string key() const;
    bool operator==(const ModelShape&) const = default;
};

// One tuned kernel: the family ("moe_ffn": the fused expert FFN driver, ExpertFfnDesc/Config, role "expert";
// "gemm_amx" / "gemv_avx512": the GEMMs inside it, roles "gate_up" / "down"), the kernel's own Desc and Config JSON,
// its name (which spells both), and the range of tokens per expert [m_min, m_max] it serves. The runtime takes the
// "moe_ffn" entry whose range holds the batch's tokens per expert; for "gemv_avx512" the Desc's m is the benchmark's
// and the runtime substitutes the actual m. "mla_decode" (role "decode", GPU): the MLA decode kernel's
// MlaDecodeDesc and its MlaDecodeConfig with the MlaSplitPolicy's fields in the same object
// (codegen/cuda/mla_split_policy.hpp); its range is of context tokens at batch 1 (bench_m: the benchmark's context,
// bench_experts: its batch). Figures are from the tune run that chose it:
// seconds per call of the benchmark problem, for the chosen config and for the default config, at bench_m tokens.
struct PlannedKernel {
    std::string family;
    std::string role;  // which GEMM of the expert it serves: "gate_up" or "down"
    std::string name;
    nlohmann::json desc = nlohmann::json::object();
    nlohmann::json config = nlohmann::json::object();
    nlohmann::json default_config = nlohmann::json::object();
    int m_min = 1, m_max = 1 << 30;
    int bench_m = 0;              // tokens per expert of the benchmark problem
    int bench_experts = 1;        // experts in one call of the benchmark problem
    double seconds = 0;           // chosen config, seconds per call of the benchmark problem
    double default_seconds = 0;   // default config, same problem, same run
    double ops = 0;               // multiply-adds x 2 of one call
    double bytes = 0;             // weight bytes streamed by one call
    bool verified = false;        // checked against the scalar reference before it was timed

    double speedup() const { return seconds > 0 ? default_seconds / seconds : 0; }
};

// Threads and NUMA: one worker per listed OS cpu; numa_node_of_worker[i] is the node of worker i. Experts are split
// over workers either threads_per_expert at a time (1 = each worker takes whole experts; workers = every worker
// shares each expert's output channels).
struct ThreadPlacement {
    int workers = 0;  // 0: one per physical core of the host, found at run time
    std::vector<int> cpus;
    std::vector<int> numa_node_of_worker;
    int threads_per_expert = 0;  // 0: all workers on each expert
    bool bind_experts_to_numa = true;  // expert weights on the node of the workers that run them
};

// Where the non-expert work runs. cpu_only: everything on the CPU. gpu_layers: how many of the model's layers keep
// attention, dense layers and shared experts on the GPU (-1 = all that fit).
struct GpuPlacement {
    bool cpu_only = true;
    int device = 0;
    int gpu_layers = -1;
    std::string name;  // the GPU the plan's CUDA kernels were tuned on ("" when none were)
    int sm = 0;        // its compute capability x10
};

// The host figures the plan was tuned against (from the host profile), kept so the report can be re-rendered
// from the plan alone.
struct HostFigures {
    std::string cpu_name;
    int cores = 0;
    double amx_int8_ops = 0;      // ops/s, all cores
    double amx_bf16_flops = 0;
    double avx512_vnni_ops = 0;
    double dram_read_bytes = 0;   // bytes/s, all nodes
    uint64_t llc_bytes = 0;
    double gpu_copy_bytes = 0;    // device-to-device copy, read + write bytes/s (0: no GPU tuned)
};

// One finished trial of the search, for the report's best-so-far curves.
struct PlanTrial {
    std::string family;  // search family, e.g. "gemm_amx k7168 m256"
    std::string config;  // config name part
    double at_seconds = 0;  // wall time since the start of the search when it finished
    double seconds = 0;     // measured seconds per call (0: failed verification or refused)
    int rung = 0;            // -1: verification against the reference; 0..: timing rungs; 100..: confirmation
    bool is_default = false;
    bool failed = false;     // failed verification or refused by the generator (never timed)
};

// An independent check after the search: `moeforge bench kernels`'s fused-FFN benchmark (its own batches, more
// experts per pass) run with the default config and with the plan's, alternately, in the same process.
struct PlanCheck {
    int m = 0;
    int experts = 0;             // distinct experts streamed per pass
    int experts_per_call = 0;    // experts per driver call: the search's benchmark problem (bench_experts)
    double default_seconds = 0;  // best pass
    double tuned_seconds = 0;
    double roofline_ratio = 0;   // tuned ops/s over min(peak, intensity x DRAM bandwidth)

    double speedup() const { return tuned_seconds > 0 ? default_seconds / tuned_seconds : 0; }
};

struct Plan {
    // 2: the shape key holds what the kernels depend on (no layer or expert counts; MLA attention shape added),
    //    checks record experts per call. Version 1 files are refused with a line saying to re-run tune.
    static constexpr int kVersion = 2;
    int version = kVersion;
    std::string host_fingerprint;
    std::string host_description;  // the fingerprint's readable text
    ModelShape shape;
    std::string created_at;        // ISO-8601 UTC
    std::string tool_version;
    double tune_seconds = 0;
    double budget_seconds = 0;
    double tolerance = 0;          // relative timing noise accepted when preferring a tuned config over the default

    int amx_min_tokens = 0;        // tokens per expert from which AMX replaces the AVX-512 GEMV (0: unknown)
    std::vector<PlannedKernel> kernels;
    ThreadPlacement threads;
    GpuPlacement gpu;
    HostFigures host;
    std::vector<PlanTrial> trials;
    std::vector<PlanCheck> checks;
    std::vector<std::string> notes;  // what the search skipped and why (e.g. "GPU search skipped: no CUDA GPU")

    bool is_default = false;  // true: no tuned plan was found; these are the documented defaults
    std::string source;       // file it was read from, or a note on why the defaults are used

    // The kernel of `family` and `role` serving m tokens per expert; nullptr if the plan has none.
    const PlannedKernel* find(const std::string& family, const std::string& role, int m) const;
};

// Documented defaults (used when no plan matches): the fused expert FFN ("moe_ffn", ExpertFfnConfig) and every
// GEMM kernel at their Config's default field values for all token counts, AMX from ExpertFfnConfig's
// gemv_max_m + 1 tokens per expert, one worker per physical core, CPU only.
Plan default_plan(const std::string& host_fingerprint, const ModelShape& shape);

// "plan-<fingerprint>-<shape key>.json"
std::string plan_file_name(const std::string& host_fingerprint, const ModelShape& shape);

// The plan key of a model: its routed experts' and attention's widths with the experts' compute format
// ("int8", "int4" (groups of 32) or "bf16").
ModelShape model_shape_of(const DeepSeekV3Config& c, const std::string& expert_wtype);

nlohmann::json plan_to_json(const Plan& p);
// Throws std::runtime_error naming the missing/bad key or an unsupported version.
Plan plan_from_json(const nlohmann::json& j);
nlohmann::json model_shape_to_json(const ModelShape& s);
ModelShape model_shape_from_json(const nlohmann::json& j);

// Reads a plan file; throws std::runtime_error naming the file on a read/parse error.
Plan read_plan_file(const std::filesystem::path& path);
// Writes through a temporary file and a rename.
void write_plan_file(const std::filesystem::path& path, const Plan& p);

// Thrown when a plan was made for another host or another model shape.
struct PlanMismatch : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Checks that `p` was tuned for this host and shape; throws PlanMismatch naming both fingerprints (or both shapes)
// and what to do.
void check_plan_matches(const Plan& p, const std::string& host_fingerprint, const ModelShape& shape,
                        const std::string& where);

// The runtime's entry point. With an explicit plan file: read it and check it matches (else PlanMismatch). Without
// one: the cache dir's plan-<fingerprint>-<shape>.json if present (checked the same way), else default_plan() with
// is_default set and `source` saying why.
Plan load_plan(const std::filesystem::path& cache_dir, const std::string& host_fingerprint, const ModelShape& shape,
               const std::filesystem::path& explicit_file = {});

}  // namespace mf
