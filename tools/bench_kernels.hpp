// `moeforge bench kernels`: the fused expert FFN on model-sized shapes, per tokens-per-expert M, against the
// roofline min(AMX peak, arithmetic intensity x DRAM bandwidth) of the host profile (AMX peak: measured on random
// operands held in tiles); optionally oneDNN beside it.
#pragma once
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/x64/expert_ffn_desc.hpp"
#include "runtime/expert_ffn.hpp"
#include "tune/host_profile.hpp"

namespace mf {

struct KernelBenchOptions {
    std::vector<int> ms{1, 4, 16, 64, 256, 1024};
    WeightType wtype = WeightType::int8;
    int hidden = 7168, inter = 2048;  // DeepSeek-V3 routed expert
    int threads = 0;                  // 0: one per physical core
    int experts = 0;                  // 0: enough for 4x the LLC, within half the available memory
    int experts_per_call = 0;         // experts per driver call; 0: as many as hold ~8k routed rows
    int repeats = 3;                  // timed passes per M; the best is kept
    bool peer_onednn = false;
    ExpertFfnConfig cfg;
    // More configs timed in the same process, on the same experts and inputs, their passes interleaved with cfg's
    // (cfg, alt 1, alt 2, ..., cfg, alt 1, ...): rows "alt1", "alt2", ... beside "moeforge".
    std::vector<ExpertFfnConfig> alts;
    // The output rows y on 2 MiB pages instead of a vector's 4 KiB ones (the accumulate's y rows are one per token,
    // 28 KiB apart: on 4 KiB pages each is a TLB miss).
    bool y_huge = false;
};

struct KernelBenchRow {
    std::string impl;  // "moeforge" or "onednn"
    int m = 0;
    WeightType wtype = WeightType::int8;
    int experts = 0;
    double seconds = 0;         // best pass over all experts
    double ops_per_s = 0;       // 2 per multiply-add
    double bytes_per_s = 0;     // weight bytes streamed per second
    double roofline = 0;        // ops/s bound
    double roofline_ratio = 0;  // ops_per_s / roofline
    const char* bound = "";     // "memory" or "compute": which side of the roofline binds
    double zero_peak_ratio = 0;  // ops_per_s / the zero-operand AMX peak (the ratio earlier versions reported)
    ExpertFfnTimes passes{};     // moeforge: where one pass's time went (mean over the timed passes)
};

using BenchProgress = std::function<void(std::string_view stage, int done, int total)>;

// Picks the expert count for opt (see KernelBenchOptions::experts); throws if memory cannot hold two experts.
int default_bench_experts(const KernelBenchOptions& opt, const HostProfile& hp);

std::vector<KernelBenchRow> run_kernel_bench(const KernelBenchOptions& opt, const HostProfile& hp,
                                             const BenchProgress& progress);

nlohmann::json kernel_bench_json(const std::vector<KernelBenchRow>& rows);
std::string render_kernel_bench(const std::vector<KernelBenchRow>& rows, const HostProfile& hp, int threads);
// Per M, the moeforge driver's passes (ms per pass over all experts) and the kernels' share of the GEMM passes.
std::string render_kernel_passes(const std::vector<KernelBenchRow>& rows, int threads);

// The oneDNN side (tools/bench_onednn_peer.cpp): int8 matmuls gate, up, down per expert with the same shapes
// and weight bytes. Returns the best pass time in seconds, or a negative value when oneDNN is not built in.
double onednn_expert_pass_seconds(int hidden, int inter, int experts, int m, int threads, int repeats,
                                  const std::function<void()>& tick);

}  // namespace mf
