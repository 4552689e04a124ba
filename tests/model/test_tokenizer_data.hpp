// Where the tests find DeepSeek-V3's tokenizer fetched by tools/fetch_tokenizer.sh (never committed).
#pragma once
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

namespace mf::test {

// The fetch destination: $XDG_CACHE_HOME/moeforge/tokenizer, else ~/.cache/moeforge/tokenizer.
inline std::filesystem::path tokenizer_fetch_dir() {
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
        return std::filesystem::path(x) / "moeforge/tokenizer";
    if (const char* h = std::getenv("HOME"); h && *h)
        return std::filesystem::path(h) / ".cache/moeforge/tokenizer";
    return {};
}

// deepseek-v3/tokenizer.json when it has been fetched.
inline std::optional<std::filesystem::path> fetched_tokenizer_json() {
    const auto p = tokenizer_fetch_dir() / "deepseek-v3" / "tokenizer.json";
    if (tokenizer_fetch_dir().empty() || !std::filesystem::exists(p)) return std::nullopt;
    return p;
}

inline const std::string kFetchHint = "run tools/fetch_tokenizer.sh to fetch DeepSeek-V3's tokenizer";

}  // namespace mf::test
