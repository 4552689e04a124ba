// Perplexity in llama.cpp's llama-perplexity windowing, so the two can be compared on the same GGUF: the tokens
// (bos first when the vocab adds it) are cut into n_chunk = n_tokens / ctx windows of ctx tokens; each window runs
// from an empty cache with its first token replaced by bos; the logits of positions ctx/2 .. ctx-2 are scored
// against the next token (the second half of the window, ctx - 1 - ctx/2 tokens per window).
// ppl = exp(mean nll); its uncertainty is ppl * sqrt(var(nll) / (N - 1)), as llama-perplexity prints it.
#pragma once
#include <cstdint>
#include <functional>
#include <span>

#include "runtime/model_runner.hpp"
#include "runtime/logits_file.hpp"

namespace mf {

struct PerplexityOptions {
    int64_t ctx = 512;
    int32_t bos_id = 0;
    bool replace_first_with_bos = true;
    int64_t max_chunks = 0;  // 0 = all
};

struct PerplexityChunk {
    int64_t index = 0;
    double nll_sum = 0;      // this window
    int64_t scored = 0;
    double running_ppl = 0;  // over the windows so far
};

struct PerplexityResult {
    double ppl = 0, ppl_error = 0, mean_nll = 0;
    int64_t chunks = 0, scored = 0, tokens = 0;
    double seconds = 0;
    std::vector<PerplexityChunk> per_chunk;
};

// Throws std::runtime_error when the text has fewer than 2 * ctx tokens (llama-perplexity's minimum) or ctx does not
// fit the model's cache.
PerplexityResult compute_perplexity(ModelRunner& model, std::span<const int32_t> tokens, const PerplexityOptions& opt,
                                    const std::function<void(const PerplexityChunk&)>& on_chunk = {},
                                    LogitsWriter* logits_out = nullptr);

// -log softmax(logits)[target], in double.
double token_nll(std::span<const float> logits, int32_t target);

}  // namespace mf
