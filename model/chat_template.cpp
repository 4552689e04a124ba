#include "model/chat_template.hpp"

#include <stdexcept>

namespace mf {
namespace {

constexpr std::string_view kUser = "<｜User｜>";
constexpr std::string_view kAssistant = "<｜Assistant｜>";
constexpr std::string_view kEndOfSentence = "<｜end▁of▁sentence｜>";
constexpr std::string_view kOutputsBegin = "<｜tool▁outputs▁begin｜>";
constexpr std::string_view kOutputsEnd = "<｜tool▁outputs▁end｜>";
constexpr std::string_view kOutputBegin = "<｜tool▁output▁begin｜>";
constexpr std::string_view kOutputEnd = "<｜tool▁output▁end｜>";

}  // namespace

std::string render_deepseek_v3_chat(std::span<const ChatMessage> messages, std::string_view bos_token,
                                    bool add_generation_prompt) {
    std::string out(bos_token);
    // All system messages go first, whatever their position.
    bool first_system = true;
    for (const ChatMessage& m : messages) {
        if (m.role != "system") continue;
        if (!first_system) out += "\n\n";
        out += m.content;
        first_system = false;
    }
    // The template's namespace flags: inside a run of tool outputs, and whether one has been written yet (the
    // template never resets the latter, so only the first run opens with the outputs-begin marker).
    bool in_tool_outputs = false, first_output = true;
    for (const ChatMessage& m : messages) {
        if (m.role == "system") continue;
        if (m.role == "user") {
            in_tool_outputs = false;
            (out += kUser) += m.content;
        } else if (m.role == "assistant") {
            // After tool outputs the reply closes them instead of opening an assistant turn.
            out += in_tool_outputs ? kOutputsEnd : kAssistant;
            (out += m.content) += kEndOfSentence;
            in_tool_outputs = false;
        } else if (m.role == "tool") {
            in_tool_outputs = true;
            if (first_output) {
                out += kOutputsBegin;
                first_output = false;
            } else {
                out += "\n";
            }
            ((out += kOutputBegin) += m.content) += kOutputEnd;
        } else {
            throw std::invalid_argument("chat message role \"" + m.role +
                                        "\" is not one of system, user, assistant, tool");
        }
    }
    if (in_tool_outputs)
        out += kOutputsEnd;
    else if (add_generation_prompt)
        out += kAssistant;
    return out;
}

bool is_deepseek_v3_chat_template(std::string_view jinja_source) {
    const auto has = [&](std::string_view s) { return jinja_source.find(s) != std::string_view::npos; };
    return jinja_source.empty() || (has(kUser) && has(kAssistant) && !has("<think>") && !has("</think>"));
}

}  // namespace mf
