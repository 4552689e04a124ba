#include "runtime/chat_session.hpp"

#include <stdexcept>

namespace mf {

ChatSession::ChatSession(const Tokenizer& tokenizer, int64_t ctx, std::string system)
    : tok_(tokenizer), ctx_(ctx), system_(std::move(system)) {}

std::vector<int32_t> ChatSession::render(bool generation_prompt) const {
    std::vector<ChatMessage> all;
    if (!system_.empty()) all.push_back({"system", system_});
    all.insert(all.end(), messages_.begin(), messages_.end());
    const std::string bos = tok_.token_bytes(tok_.bos_id());
    return tok_.encode(render_deepseek_v3_chat(all, bos, generation_prompt), EncodeOptions{false, true});
}

ChatSession::Prompt ChatSession::add_user(const std::string& text, int64_t reserve) {
    messages_.push_back({"user", text});
    Prompt p;
    for (;;) {
        p.tokens = render(true);
        if (int64_t(p.tokens.size()) + reserve <= ctx_) return p;
        if (messages_.size() <= 1) {
            messages_.clear();
            throw std::runtime_error("the message (" + std::to_string(p.tokens.size()) + " tokens, plus " +
                                     std::to_string(reserve) + " reserved for the reply) does not fit --ctx " +
                                     std::to_string(ctx_));
        }
        // Drop the oldest user turn and its reply.
        messages_.erase(messages_.begin());
        if (!messages_.empty() && messages_.front().role == "assistant") messages_.erase(messages_.begin());
        ++p.dropped_turns;
    }
}

void ChatSession::add_assistant(const std::string& text) { messages_.push_back({"assistant", text}); }

void ChatSession::reset() { messages_.clear(); }

}  // namespace mf
