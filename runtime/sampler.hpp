// Picks the next token from a row of logits: greedy, or temperature with top-k, top-p and min-p filtering, after a
// repetition penalty over recent tokens. Seeded, so a run can be repeated exactly.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace mf {

struct SamplerParams {
    float temperature = 0.6f;        // 0 = greedy (argmax)
    int top_k = 0;                   // 0 = off
    float top_p = 0.95f;             // 1 = off
    float min_p = 0.0f;              // 0 = off; keep tokens with p >= min_p * p_max
    float repetition_penalty = 1.0f; // 1 = off; >1 discourages tokens in the last repetition_window tokens
    int repetition_window = 64;
    uint64_t seed = 0;

    // Throws std::invalid_argument naming the first out-of-range field.
    void validate() const;
};

class Sampler {
public:
    explicit Sampler(const SamplerParams& p);
    // `recent`: the tokens generated so far (and the prompt); only the last repetition_window count.
    int32_t sample(std::span<const float> logits, std::span<const int32_t> recent);

private:
    SamplerParams p_;
    std::mt19937_64 rng_;
    std::vector<std::pair<float, int32_t>> candidates_;
};

}  // namespace mf
