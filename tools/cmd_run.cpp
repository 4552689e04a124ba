// `moeforge run`: chat with a model on the CPU (streaming, DeepSeek-V3 chat template, history within --ctx), or
// answer one prompt (--prompt / --prompt-file). Without --model: the random-weight demo model.
#include <CLI/CLI.hpp>
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <optional>

#include "runtime/chat_session.hpp"
#include "runtime/generation.hpp"
#include "runtime/logits_file.hpp"
#include "tools/command.hpp"
#include "tools/interrupt_flag.hpp"
#include "tools/model_loading.hpp"

namespace mf {
namespace {

struct RunOptions {
    std::string model;
    std::string prompt;
    std::string prompt_file;
    std::string system;
    std::string logits_out;
    int64_t max_tokens = 512;
    bool raw = false;
    bool no_stats = false;
    RuntimeOptions runtime;
    SamplerParams sampling;
};

enum class LineStatus { line, eof, interrupted };

// A line of stdin through read(2), so that Ctrl-C (EINTR) can be told apart from the end of input.
LineStatus read_line(std::string& line) {
    static std::string buffered;
    line.clear();
    for (;;) {
        const size_t nl = buffered.find('\n');
        if (nl != std::string::npos) {
            line = buffered.substr(0, nl);
            buffered.erase(0, nl + 1);
            return LineStatus::line;
        }
        char buf[4096];
        const ssize_t n = ::read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR) return LineStatus::interrupted;
        if (n <= 0) {
            if (buffered.empty()) return LineStatus::eof;
            line.swap(buffered);
            buffered.clear();
            return LineStatus::line;
        }
        buffered.append(buf, size_t(n));
    }
}

class ChatRunner {
public:
    ChatRunner(const RunOptions& o, ModelRunner& model, const Tokenizer& tok)
        : o_(o), model_(model), tok_(tok), gen_(model, o.sampling), chat_(tok, model.capacity(), o.system) {
        stop_ids_ = {tok.eos_id()};
        if (!o.logits_out.empty()) logits_ = std::make_unique<LogitsWriter>(o.logits_out, model.vocab());
    }

    // Generates a reply to `context`, streaming it to stdout; returns its text.
    std::string reply(const std::vector<int32_t>& context, const InterruptFlag& irq) {
        TokenStreamDecoder dec(tok_);
        std::string text;
        const int64_t room = model_.capacity() - int64_t(context.size());
        const GenerationStats st = gen_.generate(
            context, std::min(o_.max_tokens, room), stop_ids_, irq.flag(), [&](int32_t t, std::span<const float> l) {
                if (logits_) logits_->append(l);
                if (t == tok_.eos_id()) return;
                const std::string piece = dec.push(t);
                text += piece;
                std::fwrite(piece.data(), 1, piece.size(), stdout);
                std::fflush(stdout);
            });
        const std::string tail = dec.flush();
        text += tail;
        std::fwrite(tail.data(), 1, tail.size(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
        if (st.reason == StopReason::interrupted) fmt::print(stderr, "[interrupted]\n");
        if (st.reason == StopReason::context_full) fmt::print(stderr, "[context full: --ctx {}]\n", model_.capacity());
        if (!o_.no_stats)
            fmt::print(stderr,
                       "[prefill {} tokens ({} reused) at {:.1f} tok/s | decode {} tokens at {:.2f} tok/s | {}]\n",
                       st.prompt_tokens - st.reused_tokens, st.reused_tokens, st.prefill_tok_s(), st.generated,
                       st.decode_tok_s(), stop_reason_name(st.reason));
        return text;
    }

    void one_shot(const std::string& prompt, const InterruptFlag& irq) {
        std::vector<int32_t> ctx;
        if (o_.raw) {
            ctx = tok_.encode(prompt, EncodeOptions{tok_.add_bos(), true});
        } else {
            ctx = chat_.add_user(prompt, std::min<int64_t>(o_.max_tokens, model_.capacity() / 2)).tokens;
        }
        reply(ctx, irq);
    }

    void repl(InterruptFlag& irq) {
        const bool tty = isatty(0);
        fmt::print(stderr, "Type a message and press Enter. /reset clears the history, /exit (or Ctrl-D) quits; "
                           "Ctrl-C stops a reply.\n");
        std::string line;
        for (;;) {
            fmt::print(stderr, "> ");
            std::fflush(stderr);
            irq.clear();
            const LineStatus s = read_line(line);
            if (s == LineStatus::eof) {
                if (tty) fmt::print(stderr, "\n");
                return;
            }
            if (s == LineStatus::interrupted) {
                fmt::print(stderr, "\n(Ctrl-C stops a reply; type /exit or press Ctrl-D to quit)\n");
                continue;
            }
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (line.empty()) continue;
            if (line == "/exit" || line == "/quit") return;
            if (line == "/reset") {
                chat_.reset();
                gen_.reset();
                fmt::print(stderr, "[history cleared]\n");
                continue;
            }
            ChatSession::Prompt p;
            try {
                p = chat_.add_user(line, std::min<int64_t>(o_.max_tokens, model_.capacity() / 2));
            } catch (const std::runtime_error& e) {
                fmt::print(stderr, "[{}]\n", e.what());
                continue;
            }
            if (p.dropped_turns)
                fmt::print(stderr, "[dropped the {} oldest turn{} to stay within --ctx {}]\n", p.dropped_turns,
                           p.dropped_turns > 1 ? "s" : "", model_.capacity());
            chat_.add_assistant(reply(p.tokens, irq));
        }
    }

    void finish() {
        if (logits_) {
            logits_->close();
            fmt::print(stderr, "moeforge: wrote {} rows of logits to {}\n", logits_->rows(), o_.logits_out);
        }
    }

private:
    const RunOptions& o_;
    ModelRunner& model_;
    const Tokenizer& tok_;
    Generator gen_;
    ChatSession chat_;
    std::vector<int32_t> stop_ids_;
    std::unique_ptr<LogitsWriter> logits_;
};

void run_run(RunOptions& o) {
    if (!o.prompt.empty() && !o.prompt_file.empty()) throw std::runtime_error("give --prompt or --prompt-file, not both");
    o.sampling.validate();
    std::filesystem::path path = o.model;
    if (o.model.empty()) {
        path = demo_model_path();
        fmt::print(stderr, "moeforge: no --model given: using the demo model {}.\n"
                           "moeforge: it is a RANDOM-WEIGHT demo (mkmodel preset 'small'): expect gibberish, not "
                           "answers.\n",
                   path.string());
    }
    auto model = load_model_for_cli(path, o.runtime);
    const auto tok = load_model_tokenizer(model->file());
    ChatRunner runner(o, *model, *tok);
    InterruptFlag irq;
    if (!o.prompt_file.empty()) o.prompt = read_text_file(o.prompt_file, "--prompt-file");
    if (!o.prompt.empty())
        runner.one_shot(o.prompt, irq);
    else
        runner.repl(irq);
    runner.finish();
}

}  // namespace

void add_run_command(CLI::App& app, const GlobalOptions&) {
    auto o = std::make_shared<RunOptions>();
    auto* cmd = app.add_subcommand(
        "run",
        "Chat with a DeepSeek-V3/R1 model: routed experts on the CPU, attention, dense layers and the KV cache on a\n"
        "CUDA GPU when one is usable (see --gpu-layers; else all on the CPU). Tokens stream as they are sampled, the\n"
        "conversation (DeepSeek-V3 chat template) is kept within --ctx (the oldest turns are dropped, with a notice),\n"
        "and prefill/decode tok/s follow each reply. In the chat: /reset clears the history, /exit or Ctrl-D quits, Ctrl-C stops the current\n"
        "reply. --prompt/--prompt-file answer once and exit. Without --model, a small random-weight demo model is\n"
        "generated in the cache dir on first use.");
    cmd->add_option("--model", o->model, "Model: a .gguf file (any part of a split GGUF) or an HF checkpoint directory");
    cmd->add_option("--prompt", o->prompt, "Answer this message and exit");
    cmd->add_option("--prompt-file", o->prompt_file, "Answer the message in this file and exit");
    cmd->add_option("--system", o->system, "System message put before the conversation");
    cmd->add_flag("--raw", o->raw, "With --prompt: feed the text as is (bos + text), without the chat template");
    cmd->add_option("--max-tokens", o->max_tokens, "Most tokens per reply")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 24))
        ->capture_default_str();
    cmd->add_option("--temperature", o->sampling.temperature, "Sampling temperature; 0 = greedy (always the most likely)")
        ->capture_default_str();
    cmd->add_option("--top-k", o->sampling.top_k, "Sample among the k most likely tokens only (0 = off)")
        ->capture_default_str();
    cmd->add_option("--top-p", o->sampling.top_p, "Nucleus sampling: the smallest set with this much probability (1 = off)")
        ->capture_default_str();
    cmd->add_option("--min-p", o->sampling.min_p, "Drop tokens less likely than min-p x the most likely one (0 = off)")
        ->capture_default_str();
    cmd->add_option("--repeat-penalty", o->sampling.repetition_penalty,
                    "Divide the logits of recently seen tokens by this (1 = off)")
        ->capture_default_str();
    cmd->add_option("--seed", o->sampling.seed, "Sampler seed: the same seed, prompt and model give the same reply")
        ->capture_default_str();
    cmd->add_option("--logits-out", o->logits_out,
                    "Write the logits each generated token was sampled from to this .npy file (float32, rows x vocab)");
    cmd->add_flag("--no-stats", o->no_stats, "Do not print the tok/s line after each reply");
    add_runtime_options(cmd, o->runtime);
    cmd->callback([o] { run_run(*o); });
}

}  // namespace mf
