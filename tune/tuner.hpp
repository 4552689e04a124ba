// `moeforge tune` after the host profile: searches the expert kernels' tuning parameters for a model shape on this
// host and returns the plan. Three CPU stages share the time budget (less the GPU's share when a GPU is searched):
//   1. kernels (35%): the AVX-512 GEMV Config at decode-sized m and the AMX GEMM Config at prefill-sized m, for each
//      GEMM of an expert (gate+up, down);
//   2. hand-over (5%): the tokens per expert from which the tuned AMX GEMM beats the tuned GEMV;
//   3. fused FFN (60%): the driver's Config (work blocks, m block, the best two kernel configs of each stage-1
//      search, and at m <= 16 both the GEMV and the AMX path) on batches of m tokens per expert for each benchmark
//      m: these are the plan's "moe_ffn" entries;
//   4. GPU (gpu_share of the budget, when a CUDA GPU is present and not cpu_only): the MLA decode kernel's Config and
//      split policy at batch 1 for each of mla_contexts (tune/mla_decode_bench.hpp): the plan's "mla_decode"
//      entries. Without a GPU the plan's notes say why it was skipped.
// Each stage runs search_family() (verify, roofline pruning, successive halving, confirmed selection); trials are
// persisted, so an interrupted run resumes.
#pragma once
#include <atomic>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/plan.hpp"
#include "tune/host_profile.hpp"

namespace mf {

struct TuneSettings {
    double budget_seconds = 240;
    std::vector<int> gemv_ms{1, 4, 16};
    std::vector<int> amx_ms{64, 256};
    std::vector<int> handover_ms{1, 2, 4, 8, 12, 16};
    std::vector<int> ffn_ms{1, 4, 16, 64, 256, 1024};
    std::vector<int> mla_contexts{1024, 8192, 32768};  // GPU: MLA decode at batch 1 over these contexts
    double gpu_share = 0.15;                            // of the budget, for the GPU search when a GPU is present
    std::filesystem::path cubin_dir;                    // CUBIN cache of the GPU search (empty: no GPU search)
    uint64_t pool_bytes = 0;  // weight pool per benchmark; 0: 4 x LLC within [256 MiB, 4 GiB], <= 1/4 of free RAM
    double tolerance = 0.03;
    std::filesystem::path trials_file;  // empty: in memory only (no resume)
    bool fresh = false;                 // discard the trials of earlier runs
    bool cpu_only = true;
    int gpu_layers = -1;
    std::string tool_version;
    const std::atomic<bool>* stop = nullptr;
    // Called after every trial: fraction of the budget used (0..1) and what ran.
    std::function<void(double fraction, const std::string& what)> progress;
};

// Thrown when settings.stop was set: the finished trials are in the trial file.
struct TuneInterrupted : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The trial store context: trials of another tool version, host or shape are not reused.
std::string tune_context(const HostProfile& hp, const ModelShape& s, const std::string& tool_version);

Plan tune_plan(const HostProfile& hp, const ModelShape& s, const TuneSettings& t);

// Splits [1, inf) between sorted benchmark points at their geometric midpoints: point i serves [lo_i, hi_i].
std::vector<std::pair<int, int>> m_ranges(const std::vector<int>& points);

}  // namespace mf
