// Wall time per stage of the forward pass, accumulated until reset (bench prints them; run does not pay for more
// than a clock read per stage).
#pragma once
#include <chrono>
#include <cstdint>

namespace mf {

struct StageTimes {
    double embedding = 0;
    double attention = 0;       // norms, projections, rope, cache append, softmax attention, output projection
    double router = 0;
    double routed_experts = 0;
    double shared_expert = 0;
    double dense_ffn = 0;       // the leading dense layers' FFN
    double lm_head = 0;         // final norm and the vocabulary projection
    double sampling = 0;        // filled by the generation loop
    uint64_t routed_bytes = 0;  // packed bytes of the routed experts' weights read (each selected expert once per step)
    uint64_t routed_steps = 0;  // forward steps that ran routed experts

    double total() const {
        return embedding + attention + router + routed_experts + shared_expert + dense_ffn + lm_head + sampling;
    }
};

class StageClock {
public:
    explicit StageClock(double& dst) : dst_(dst), t0_(std::chrono::steady_clock::now()) {}
    ~StageClock() { dst_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }
    StageClock(const StageClock&) = delete;
    StageClock& operator=(const StageClock&) = delete;

private:
    double& dst_;
    std::chrono::steady_clock::time_point t0_;
};

}  // namespace mf
