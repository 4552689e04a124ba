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
    // Hybrid placement. gpu_layers: wall time from a step's first GPU launch to the hand-off of its last GPU layer,
    // less the CPU's routed experts inside it; cpu_waits_gpu: of that, the CPU blocked on the GPU; gpu_waits_cpu:
    // the GPU idle while the CPU runs routed experts (the routed time not covered by the GPU's shared expert).
    double gpu_layers = 0;
    double cpu_waits_gpu = 0;
    double gpu_waits_cpu = 0;
    uint64_t routed_bytes = 0;  // packed bytes of the routed experts' weights read (each selected expert once per step)
    uint64_t routed_steps = 0;  // forward steps that ran routed experts

    double total() const {
        return embedding + attention + router + routed_experts + shared_expert + dense_ffn + lm_head + sampling +
               gpu_layers;
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
