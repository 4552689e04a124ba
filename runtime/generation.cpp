#include "runtime/generation.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace mf {

const char* stop_reason_name(StopReason r) {
    switch (r) {
        case StopReason::stop_token: return "stop token";
        case StopReason::max_tokens: return "token limit";
        case StopReason::context_full: return "context full";
        case StopReason::interrupted: return "interrupted";
    }
    return "?";
}

double GenerationStats::prefill_tok_s() const {
    return prefill_seconds > 0 ? double(prompt_tokens - reused_tokens) / prefill_seconds : 0;
}

double GenerationStats::decode_tok_s() const {
    return decode_seconds > 0 && generated > 1 ? double(generated - 1) / decode_seconds : 0;
}

Generator::Generator(ModelRunner& model, const SamplerParams& params) : model_(model), sampler_(params) {
    cached_.reserve(size_t(model.capacity()));
}

void Generator::reset() {
    cached_.clear();
    model_.reset();
}

GenerationStats Generator::generate(std::span<const int32_t> context, int64_t max_tokens,
                                    std::span<const int32_t> stop_ids, const std::atomic<bool>* stop,
                                    const TokenSink& sink) {
    using clock = std::chrono::steady_clock;
    if (context.empty()) throw std::invalid_argument("generate: empty context");
    if (int64_t(context.size()) > model_.capacity())
        throw std::runtime_error("the prompt (" + std::to_string(context.size()) + " tokens) does not fit --ctx " +
                                 std::to_string(model_.capacity()));
    GenerationStats st;
    st.prompt_tokens = int64_t(context.size());
    const auto t0 = clock::now();

    // Keep the common prefix; at least the last context token is run again to get its logits.
    if (int64_t(cached_.size()) != model_.n_past()) cached_.clear(), model_.reset();
    size_t keep = 0;
    while (keep < cached_.size() && keep < context.size() && cached_[keep] == context[keep]) ++keep;
    keep = std::min(keep, context.size() - 1);
    model_.truncate(int64_t(keep));
    cached_.resize(keep);
    st.reused_tokens = int64_t(keep);
    const int64_t vocab = model_.vocab();
    logits_.resize(size_t(vocab));
    model_.forward(context.subspan(keep), logits_.data(), 1);
    cached_.insert(cached_.end(), context.begin() + int64_t(keep), context.end());

    std::vector<int32_t> recent(context.begin(), context.end());
    clock::time_point first{}, last{};
    for (int64_t i = 0; i < max_tokens; ++i) {
        if (stop && stop->load(std::memory_order_relaxed)) {
            st.reason = StopReason::interrupted;
            break;
        }
        int32_t tok;
        {
            StageClock sc(model_.times().sampling);
            tok = sampler_.sample(logits_, recent);
        }
        last = clock::now();
        if (st.generated == 0) first = last;
        ++st.generated;
        recent.push_back(tok);
        if (sink) sink(tok, logits_);
        if (std::find(stop_ids.begin(), stop_ids.end(), tok) != stop_ids.end()) {
            st.reason = StopReason::stop_token;
            break;
        }
        if (i + 1 == max_tokens) {
            st.reason = StopReason::max_tokens;
            break;
        }
        if (model_.n_past() + 1 > model_.capacity()) {
            st.reason = StopReason::context_full;
            break;
        }
        if (stop && stop->load(std::memory_order_relaxed)) {
            st.reason = StopReason::interrupted;
            break;
        }
        const int32_t one[1] = {tok};
        model_.forward(one, logits_.data(), 1);
        cached_.push_back(tok);
    }
    if (st.generated == 0) first = last = clock::now();
    st.prefill_seconds = std::chrono::duration<double>(first - t0).count();
    st.decode_seconds = std::chrono::duration<double>(last - first).count();
    return st;
}

}  // namespace mf
