// DeepSeek-V3's chat template: expected renderings worked out by hand from the Jinja source in
// tokenizer_config.json (the reference test also compares with that template rendered by a Jinja engine).
#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

#include "model/chat_template.hpp"

namespace mf {
namespace {

const std::string kBos = "<｜begin▁of▁sentence｜>";

std::string render(const std::vector<ChatMessage>& m, bool add_generation_prompt) {
    return render_deepseek_v3_chat(m, kBos, add_generation_prompt);
}

}  // namespace

TEST_CASE("chat template: user and assistant turns, generation prompt") {
    CHECK(render({{"user", "Hi"}}, true) == kBos + "<｜User｜>Hi<｜Assistant｜>");
    CHECK(render({{"user", "Hi"}}, false) == kBos + "<｜User｜>Hi");
    CHECK(render({{"user", "Hi"}, {"assistant", "Hello"}, {"user", "Bye"}}, true) ==
          kBos + "<｜User｜>Hi<｜Assistant｜>Hello<｜end▁of▁sentence｜><｜User｜>Bye<｜Assistant｜>");
    CHECK(render({}, true) == kBos + "<｜Assistant｜>");
}

TEST_CASE("chat template: system messages are joined by blank lines and put first") {
    CHECK(render({{"system", "S1"}, {"user", "U"}}, true) == kBos + "S1<｜User｜>U<｜Assistant｜>");
    CHECK(render({{"user", "U"}, {"system", "S1"}, {"assistant", "A"}, {"system", "S2"}}, false) ==
          kBos + "S1\n\nS2<｜User｜>U<｜Assistant｜>A<｜end▁of▁sentence｜>");
}

TEST_CASE("chat template: tool outputs") {
    CHECK(render({{"user", "q"}, {"tool", "r1"}, {"tool", "r2"}, {"assistant", "a"}}, true) ==
          kBos +
              "<｜User｜>q<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>r1<｜tool▁output▁end｜>"
              "\n<｜tool▁output▁begin｜>r2<｜tool▁output▁end｜><｜tool▁outputs▁end｜>a<｜end▁of▁sentence｜>"
              "<｜Assistant｜>");
    // Ending inside tool outputs closes them and adds no generation prompt.
    CHECK(render({{"user", "q"}, {"tool", "r"}}, true) ==
          kBos +
              "<｜User｜>q<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>r<｜tool▁output▁end｜>"
              "<｜tool▁outputs▁end｜>");
    CHECK_THROWS_AS(render({{"robot", "x"}}, true), std::invalid_argument);
}

TEST_CASE("chat template: recognising DeepSeek-V3's Jinja source") {
    CHECK(is_deepseek_v3_chat_template(""));
    CHECK(is_deepseek_v3_chat_template("{{'<｜User｜>' + message['content']}}{{'<｜Assistant｜>'}}"));
    CHECK_FALSE(is_deepseek_v3_chat_template("{{'<|im_start|>user'}}"));
    // DeepSeek-R1's generation prompt opens a reasoning block: a different template.
    CHECK_FALSE(is_deepseek_v3_chat_template("{{'<｜User｜>'}}{{'<｜Assistant｜><think>\\n'}}"));
}

}  // namespace mf
