// The generation loop: make the KV cache hold a context (reusing the longest common prefix with what it already
// holds, so a chat turn only prefills what is new), then sample token by token, streaming each one, until a stop
// token, the token limit, a full context, or a stop request (Ctrl-C) ends the reply.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "runtime/model_runner.hpp"
#include "runtime/sampler.hpp"

namespace mf {

enum class StopReason { stop_token, max_tokens, context_full, interrupted };
const char* stop_reason_name(StopReason r);

struct GenerationStats {
    int64_t prompt_tokens = 0;    // tokens of the context
    int64_t reused_tokens = 0;    // of those, already in the cache
    int64_t generated = 0;        // sampled tokens (including a final stop token)
    double prefill_seconds = 0;   // from the start to the first sampled token
    double decode_seconds = 0;    // from the first sampled token to the last
    StopReason reason = StopReason::max_tokens;

    double prefill_tok_s() const;  // prefilled (not reused) tokens per second
    double decode_tok_s() const;   // (generated - 1) per decode second
};

// Called for each sampled token with the logits it was sampled from.
using TokenSink = std::function<void(int32_t token, std::span<const float> logits)>;

class Generator {
public:
    Generator(ModelRunner& model, const SamplerParams& params);

    GenerationStats generate(std::span<const int32_t> context, int64_t max_tokens, std::span<const int32_t> stop_ids,
                             const std::atomic<bool>* stop, const TokenSink& sink);

    // Tokens whose rows are in the KV cache, in order.
    const std::vector<int32_t>& cached() const { return cached_; }
    void reset();

private:
    ModelRunner& model_;
    Sampler sampler_;
    std::vector<int32_t> cached_;
    std::vector<float> logits_;
};

}  // namespace mf
