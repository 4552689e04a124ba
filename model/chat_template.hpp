// DeepSeek-V3's chat template (tokenizer_config.json's Jinja "chat_template"), implemented directly in C++.
#pragma once
#include <span>
#include <string>
#include <string_view>

namespace mf {

struct ChatMessage {
    std::string role;  // "system", "user", "assistant" or "tool" (a tool's output)
    std::string content;
};

// The text DeepSeek-V3's Jinja template renders for `messages`: bos, then every system message's content
// (joined by blank lines, wherever they occur), then each turn -- "<｜User｜>" + content;
// "<｜Assistant｜>" + content + "<｜end▁of▁sentence｜>"; tool outputs between "<｜tool▁outputs▁begin｜>" and
// "<｜tool▁outputs▁end｜>" -- and, with add_generation_prompt, a final "<｜Assistant｜>" for the reply.
// Assistant turns that are tool calls are not supported. Throws std::invalid_argument for an unknown role.
std::string render_deepseek_v3_chat(std::span<const ChatMessage> messages, std::string_view bos_token,
                                    bool add_generation_prompt);

// Whether a Jinja chat template is DeepSeek-V3's (the one render_deepseek_v3_chat implements): it uses its
// role markers and no <think> handling. DeepSeek-R1's templates, which open a <think> block for the reply and
// drop the reasoning of earlier replies, are not it. An empty template (a file without one) counts as V3's.
bool is_deepseek_v3_chat_template(std::string_view jinja_source);

}  // namespace mf
