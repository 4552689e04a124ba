// `moeforge tokenize`: the token ids of a text, optionally through the chat template.
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <sstream>

#include "model/chat_template.hpp"
#include "model/gguf_file.hpp"
#include "model/gguf_vocab.hpp"
#include "model/model.hpp"  // gguf_split_paths
#include "model/tokenizer.hpp"
#include "model/unicode_utf8.hpp"
#include "tools/cache_dir.hpp"
#include "tools/command.hpp"

namespace mf {
namespace {

struct TokenizeOptions {
    std::string model;      // a .gguf (any part of a split one) or a Hugging Face checkpoint directory
    std::string tokenizer;  // tokenizer.json, or a directory holding it
    std::string file;
    std::string text;
    bool json = false;
    bool chat = false;
    bool no_bos = false;
    bool pieces = false;
};

std::filesystem::path find_tokenizer_json(const TokenizeOptions& o) {
    if (!o.tokenizer.empty()) {
        std::filesystem::path p = o.tokenizer;
        if (std::filesystem::is_directory(p)) p /= "tokenizer.json";
        if (!std::filesystem::exists(p))
            throw std::runtime_error(fmt::format("--tokenizer: {} does not exist", p.string()));
        return p;
    }
    const auto p = cache_dir() / "tokenizer" / "deepseek-v3" / "tokenizer.json";
    if (!std::filesystem::exists(p))
        throw std::runtime_error(
            fmt::format("no tokenizer at {}: run tools/fetch_tokenizer.sh to fetch DeepSeek-V3's, or pass "
                        "--tokenizer PATH",
                        p.string()));
    return p;
}

std::string read_text(const TokenizeOptions& o) {
    if (o.file.empty()) return o.text;
    std::ifstream f(o.file, std::ios::binary);
    if (!f) throw std::runtime_error(fmt::format("--file: cannot open {}", o.file));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// A token's text for --pieces: its bytes, with control characters and the bytes of a partial character (a
// token may hold part of one) escaped as \xNN.
std::string printable(std::string_view bytes) {
    std::string out;
    for (size_t i = 0; i < bytes.size();) {
        bool valid = false;
        const Utf8Char c = decode_utf8(bytes.substr(i), &valid);
        if (!valid) {
            for (size_t k = 0; k < c.len; ++k) out += fmt::format("\\x{:02x}", uint8_t(bytes[i + k]));
        } else if (c.cp == '\n') {
            out += "\\n";
        } else if (c.cp == '\t') {
            out += "\\t";
        } else if (c.cp == '\r') {
            out += "\\r";
        } else if (c.cp < 0x20 || c.cp == 0x7F) {
            out += fmt::format("\\x{:02x}", c.cp);
        } else {
            out.append(bytes.substr(i, c.len));
        }
        i += c.len;
    }
    return out;
}

// The vocab of --model (GGUF tokenizer.ggml.* keys, or a checkpoint's tokenizer.json), --tokenizer, or the
// fetched DeepSeek-V3 tokenizer.json.
TokenizerVocab load_vocab(const TokenizeOptions& o) {
    if (o.model.empty()) return load_tokenizer_json(find_tokenizer_json(o));
    const std::filesystem::path p = o.model;
    if (std::filesystem::is_directory(p)) {
        if (!std::filesystem::exists(p / "tokenizer.json"))
            throw std::runtime_error(fmt::format("--model: {} has no tokenizer.json", p.string()));
        return load_tokenizer_json(p / "tokenizer.json");
    }
    if (!std::filesystem::exists(p))
        throw std::runtime_error(fmt::format("--model: {} does not exist", p.string()));
    const GgufFile gguf(gguf_split_paths(p).front());  // the tokenizer keys are in the first part
    return read_gguf_vocab(gguf);
}

void run_tokenize(const TokenizeOptions& o) {
    if (!o.model.empty() && !o.tokenizer.empty())
        throw std::runtime_error("tokenize: give either --model or --tokenizer, not both");
    if (!o.file.empty() && !o.text.empty())
        throw std::runtime_error("tokenize: give either TEXT or --file, not both");
    const TokenizerVocab vocab = load_vocab(o);
    const Tokenizer tok(vocab);
    std::string text = read_text(o);
    EncodeOptions enc;
    if (o.chat) {
        if (!is_deepseek_v3_chat_template(vocab.chat_template))
            throw std::runtime_error("--chat: this tokenizer's chat template is not DeepSeek-V3's");
        const std::string bos = vocab.bos_id >= 0 ? vocab.tokens[size_t(vocab.bos_id)] : "";
        const ChatMessage user{"user", text};
        text = render_deepseek_v3_chat(std::span(&user, 1), bos, /*add_generation_prompt=*/true);
    } else {
        enc.add_bos = tok.add_bos() && !o.no_bos;
    }
    const std::vector<int32_t> ids = tok.encode(text, enc);
    if (o.json) {
        fmt::print("{{\"ids\":[{}]}}\n", fmt::join(ids, ","));  // as nlohmann::json would, without its copy
    } else if (o.pieces) {
        for (int32_t id : ids) fmt::print("{:>7} '{}'\n", id, printable(tok.token_bytes(id)));
    } else {
        fmt::print("{}\n", fmt::join(ids, " "));
    }
}

}  // namespace

void add_tokenize_command(CLI::App& app, const GlobalOptions& g) {
    auto o = std::make_shared<TokenizeOptions>();
    auto* cmd = app.add_subcommand(
        "tokenize",
        "Print the token ids of a text as DeepSeek-V3's tokenizer splits it (byte-level BPE; special\n"
        "tokens such as <｜User｜> written in the text become their ids). The tokenizer is a model's\n"
        "(--model), a tokenizer.json (--tokenizer), or by default DeepSeek-V3's tokenizer.json, fetched\n"
        "once by tools/fetch_tokenizer.sh into the cache dir.");
    auto* text = cmd->add_option("text", o->text, "The text to tokenize (or use --file)");
    cmd->add_option("--file", o->file, "Tokenize the contents of this file instead of TEXT (read as bytes)");
    cmd->add_option("--model", o->model,
                    "Use this model's tokenizer: a .gguf file (its tokenizer.ggml.* keys; any part of a split "
                    "GGUF) or a Hugging Face checkpoint directory (its tokenizer.json)");
    cmd->add_option(
        "--tokenizer", o->tokenizer,
        "A Hugging Face tokenizer.json (or the directory holding it, with tokenizer_config.json). "
        "Default: $XDG_CACHE_HOME/moeforge/tokenizer/deepseek-v3/tokenizer.json (or ~/.cache/...)");
    cmd->add_flag("--json", o->json, "Print {\"ids\": [...]} instead of ids separated by spaces");
    cmd->add_flag(
        "--chat", o->chat,
        "Wrap TEXT as one user message in the chat template first (bos, <｜User｜>TEXT<｜Assistant｜>)");
    cmd->add_flag("--no-bos", o->no_bos, "Do not put the begin-of-sentence token first (added by default)");
    cmd->add_flag("--pieces", o->pieces, "Print one token per line: its id and the text it stands for");
    cmd->callback([o, text] {
        if (text->count() == 0 && o->file.empty())
            throw std::runtime_error("tokenize: give a TEXT or --file FILE");
        run_tokenize(*o);
    });
}

}  // namespace mf
