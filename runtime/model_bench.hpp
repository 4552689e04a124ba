// The model part of `moeforge bench --model`: prefill tok/s for each prompt length (random token ids, one
// prefill from an empty cache), decode tok/s (greedy tokens after the first prompt), time per stage, and the
// routed experts' share of DRAM bandwidth during decode: packed bytes of the selected experts read per second of
// routed-expert time, over the host's measured DRAM read bandwidth (and the same bytes per second of the whole
// decode step).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/model_runner.hpp"

namespace mf {

struct ModelBenchOptions {
    std::vector<int64_t> prompt_lens{512, 2048};
    int64_t gen = 64;
    uint64_t seed = 1;
    double dram_bytes_per_s = 0;  // measured read bandwidth of the host (0: unknown, no share reported)
};

struct ModelBenchResult {
    struct Prefill {
        int64_t tokens = 0;
        double seconds = 0;
        double tok_s = 0;
        StageTimes stages;
    };
    std::vector<Prefill> prefill;
    int64_t decode_context = 0;  // prompt length the decode ran after
    int64_t decode_tokens = 0;
    double decode_seconds = 0;
    double decode_tok_s = 0;
    StageTimes decode_stages;
    double routed_bytes_per_token = 0;
    double routed_bytes_per_s = 0;       // during the routed-expert stage
    double routed_bytes_per_s_step = 0;  // over the whole decode step
    double dram_bytes_per_s = 0;
    std::string runtime;  // ModelRunner::describe()
};

// The model's cache must hold max(prompt_lens) + gen positions (throws std::runtime_error naming --ctx otherwise).
ModelBenchResult run_model_bench(ModelRunner& model, const ModelBenchOptions& opt,
                                 const std::function<void(const std::string&)>& progress = {});

// JSON keys: "prefill_tok_s" ({"512": x, ...}), "decode_tok_s", "stages" ({"prefill_<n>": {stage: ms/token},
// "decode": {stage: ms/token}}), "routed_dram_share", "routed_dram_share_of_step", and the raw figures.
nlohmann::json model_bench_json(const ModelBenchResult& r);
std::string render_model_bench(const ModelBenchResult& r);

}  // namespace mf
