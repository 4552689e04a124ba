#include "runtime/perplexity.hpp"

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <vector>

#include <fmt/core.h>

namespace mf {

double token_nll(std::span<const float> logits, int32_t target) {
    float mx = logits[0];
    for (float v : logits) mx = std::max(mx, v);
    double sum = 0;
    for (float v : logits) sum += std::exp(double(v) - mx);
    return std::log(sum) - (double(logits[size_t(target)]) - mx);
}

PerplexityResult compute_perplexity(ModelRunner& model, std::span<const int32_t> tokens, const PerplexityOptions& opt,
                                    const std::function<void(const PerplexityChunk&)>& on_chunk,
                                    LogitsWriter* logits_out) {
    const int64_t ctx = opt.ctx;
    if (ctx < 4) throw std::runtime_error("--ctx must be at least 4");
    if (ctx > model.capacity()) throw std::logic_error("compute_perplexity: ctx exceeds the model's cache");
    const int64_t n = int64_t(tokens.size());
    if (n < 2 * ctx)
        throw std::runtime_error(fmt::format("the text has {} tokens; perplexity with --ctx {} needs at least {} "
                                             "(2 x ctx, as llama-perplexity): give a longer file or a smaller --ctx",
                                             n, ctx, 2 * ctx));
    int64_t chunks = n / ctx;
    if (opt.max_chunks > 0) chunks = std::min(chunks, opt.max_chunks);
    const int64_t first = ctx / 2, vocab = model.vocab();
    const auto t0 = std::chrono::steady_clock::now();
    PerplexityResult r;
    r.tokens = n;
    double nll = 0, nll2 = 0;
    std::vector<int32_t> window(static_cast<size_t>(ctx));
    std::vector<float> logits(static_cast<size_t>((ctx - first) * vocab));
    for (int64_t c = 0; c < chunks; ++c) {
        const int64_t start = c * ctx;
        std::copy(tokens.begin() + start, tokens.begin() + start + ctx, window.begin());
        if (opt.replace_first_with_bos) window[0] = opt.bos_id;
        model.reset();
        // Logits of positions first .. ctx-1 (the last is unused, as in llama-perplexity).
        model.forward(window, logits.data(), ctx - first);
        PerplexityChunk ch;
        ch.index = c;
        for (int64_t j = first; j < ctx - 1; ++j) {
            const std::span<const float> row(logits.data() + (j - first) * vocab, size_t(vocab));
            const double v = token_nll(row, tokens[size_t(start + j + 1)]);
            ch.nll_sum += v;
            nll += v;
            nll2 += v * v;
            ++ch.scored;
            if (logits_out) logits_out->append(row);
        }
        r.scored += ch.scored;
        ch.running_ppl = std::exp(nll / double(r.scored));
        r.per_chunk.push_back(ch);
        if (on_chunk) on_chunk(ch);
    }
    model.reset();
    r.chunks = chunks;
    r.mean_nll = nll / double(r.scored);
    r.ppl = std::exp(r.mean_nll);
    double var = nll2 / double(r.scored) - r.mean_nll * r.mean_nll;
    r.ppl_error = var > 0 && r.scored > 1 ? r.ppl * std::sqrt(var / double(r.scored - 1)) : 0;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace mf
