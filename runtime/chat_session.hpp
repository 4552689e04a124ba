// A multi-turn chat kept within the context: the conversation (optional system message, then user/assistant turns)
// is rendered through DeepSeek-V3's chat template and tokenized for each new user message; when the prompt plus
// the room reserved for the reply does not fit, the oldest turns are dropped (the caller prints a notice).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/chat_template.hpp"
#include "model/tokenizer.hpp"

namespace mf {

class ChatSession {
public:
    ChatSession(const Tokenizer& tokenizer, int64_t ctx, std::string system = {});

    struct Prompt {
        std::vector<int32_t> tokens;
        int dropped_turns = 0;  // user+assistant pairs dropped to fit
    };
    // Appends the user message and returns the prompt for the reply, keeping tokens + reserve <= ctx. Throws
    // std::runtime_error when even the new message alone does not fit.
    Prompt add_user(const std::string& text, int64_t reserve);
    // Records the reply to the last user message.
    void add_assistant(const std::string& text);
    void reset();
    size_t turns() const { return messages_.size(); }

private:
    std::vector<int32_t> render(bool generation_prompt) const;

    const Tokenizer& tok_;
    int64_t ctx_;
    std::string system_;
    std::vector<ChatMessage> messages_;  // user/assistant, alternating, oldest first
};

}  // namespace mf
