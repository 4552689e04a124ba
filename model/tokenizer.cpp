#include "model/tokenizer.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <queue>
#include <stdexcept>

#include "model/tokenizer_pretokenize.hpp"
#include "model/unicode_utf8.hpp"

namespace mf {
namespace {

// Words longer than this are not cached: they rarely repeat.
constexpr size_t kMaxCachedWord = 256;
// The cache is emptied when it reaches this many words, which bounds its memory (~100 MB).
constexpr size_t kMaxCachedWords = size_t(1) << 20;

// GPT-2's byte-to-unicode map: printable Latin-1 bytes stand for themselves, the other 68 bytes (controls,
// space, DEL, NBSP, soft hyphen...) for U+0100 onwards in byte order, so every token is printable text.
std::array<uint32_t, 256> byte_to_unicode() {
    std::array<uint32_t, 256> map{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
        const bool printable =
            (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        map[b] = printable ? b : next++;
    }
    return map;
}

bool is_special_type(int32_t type) {
    return type == int32_t(TokenType::control) || type == int32_t(TokenType::user_defined);
}

}  // namespace

// Special tokens as a byte trie, for the longest match at a position (what the reference's splitter does).
struct Tokenizer::SpecialTrie {
    std::vector<int32_t> token;                    // node -> the token ending there, or -1
    std::unordered_map<uint32_t, uint32_t> edges;  // node << 8 | byte -> child node
    std::array<bool, 256> first_byte{};

    SpecialTrie() : token{-1} {}
    void add(const std::string& text, int32_t id) {
        uint32_t node = 0;
        for (unsigned char c : text) {
            auto [it, inserted] = edges.try_emplace(node << 8 | c, uint32_t(token.size()));
            if (inserted) token.push_back(-1);
            node = it->second;
        }
        token[node] = id;
        first_byte[(unsigned char)text[0]] = true;
    }
    // The longest special token at the start of s: {id, length}, or {-1, 0}.
    std::pair<int32_t, size_t> match(std::string_view s) const {
        std::pair<int32_t, size_t> best{-1, 0};
        uint32_t node = 0;
        for (size_t j = 0; j < s.size(); ++j) {
            auto it = edges.find(node << 8 | (unsigned char)s[j]);
            if (it == edges.end()) break;
            node = it->second;
            if (token[node] >= 0) best = {token[node], j + 1};
        }
        return best;
    }
};

Tokenizer::Tokenizer(const TokenizerVocab& v) : special_(std::make_unique<SpecialTrie>()) {
    if (v.model != "gpt2")
        throw std::runtime_error(
            fmt::format("tokenizer model \"{}\" is not supported (only byte-level BPE, \"gpt2\")", v.model));
    if (v.pre != "deepseek-v3")
        throw std::runtime_error(fmt::format(
            "pre-tokenizer \"{}\" is not supported (only DeepSeek-V3's, \"deepseek-v3\")", v.pre));
    const size_t n = v.tokens.size();
    if (n == 0 || n > size_t(INT32_MAX)) throw std::runtime_error(fmt::format("tokenizer has {} tokens", n));
    if (!v.token_types.empty() && v.token_types.size() != n)
        throw std::runtime_error(
            fmt::format("tokenizer has {} tokens but {} token types", n, v.token_types.size()));
    for (int32_t id : {v.bos_id, v.eos_id})
        if (id < -1 || id >= int32_t(n))
            throw std::runtime_error(fmt::format("bos/eos id {} is out of range", id));
    bos_id_ = v.bos_id;
    eos_id_ = v.eos_id;
    add_bos_ = v.add_bos && v.bos_id >= 0;
    types_ = v.token_types.empty() ? std::vector<int32_t>(n, int32_t(TokenType::normal)) : v.token_types;

    // Spelling -> id, as the reference looks tokens up: a special token wins over a normal one spelled alike.
    std::unordered_map<std::string_view, int32_t> ids;
    ids.reserve(n);
    for (size_t id = 0; id < n; ++id)
        if (!is_special_type(types_[id])) ids.emplace(v.tokens[id], int32_t(id));
    for (size_t id = 0; id < n; ++id)
        if (is_special_type(types_[id]) && !v.tokens[id].empty()) {
            ids[v.tokens[id]] = int32_t(id);
            special_->add(v.tokens[id], int32_t(id));
        }

    const std::array<uint32_t, 256> to_unicode = byte_to_unicode();
    std::array<int32_t, 512> to_byte;  // code point -> byte; every mapped code point is below 512
    to_byte.fill(-1);
    for (uint32_t b = 0; b < 256; ++b) {
        to_byte[to_unicode[b]] = int32_t(b);
        std::string spelling;
        append_utf8(spelling, to_unicode[b]);
        auto it = ids.find(spelling);
        if (it == ids.end())
            throw std::runtime_error(
                fmt::format("tokenizer has no token for byte 0x{:02X} (\"{}\")", b, spelling));
        byte_token_[b] = it->second;
    }

    bytes_.resize(n);
    for (size_t id = 0; id < n; ++id) {
        const std::string& s = v.tokens[id];
        if (is_special_type(types_[id])) {
            bytes_[id] = s;
        } else if (types_[id] != int32_t(TokenType::unused)) {
            std::string& dst = bytes_[id];
            for (size_t i = 0; i < s.size();) {
                const Utf8Char c = decode_utf8(std::string_view(s).substr(i));
                if (c.cp < to_byte.size() && to_byte[c.cp] >= 0)
                    dst += char(to_byte[c.cp]);
                else
                    dst.append(s, i, c.len);  // not a byte-level spelling: keep the text
                i += c.len;
            }
        }
    }

    merges_.reserve(v.merges.size());
    for (size_t rank = 0; rank < v.merges.size(); ++rank) {
        const std::string& m = v.merges[rank];
        const size_t sp = m.find(' ');
        if (sp == std::string::npos)
            throw std::runtime_error(fmt::format("tokenizer merge {} \"{}\" is not \"left right\"", rank, m));
        const std::string_view left(m.data(), sp), right(m.data() + sp + 1, m.size() - sp - 1);
        const std::string joined = std::string(left) + std::string(right);
        auto l = ids.find(left), r = ids.find(right), j = ids.find(joined);
        if (l == ids.end() || r == ids.end() || j == ids.end()) {
            ++unusable_merges_;
            continue;
        }
        // A pair listed twice keeps its first (best) rank.
        merges_.try_emplace(uint64_t(uint32_t(l->second)) << 32 | uint32_t(r->second),
                            MergeResult{int32_t(rank), j->second});
    }
}

Tokenizer::~Tokenizer() = default;

bool Tokenizer::is_special(int32_t id) const {
    return id >= 0 && id < vocab_size() && is_special_type(types_[size_t(id)]);
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
    if (id < 0 || id >= vocab_size())
        throw std::out_of_range(
            fmt::format("token id {} is outside the vocab (0..{})", id, vocab_size() - 1));
    return bytes_[size_t(id)];
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
    std::string dst;
    for (int32_t id : ids) dst += token_bytes(id);
    return dst;
}

// Byte-level BPE of one word: start from one token per byte and keep applying the best-ranked merge of two
// neighbours (the leftmost one among equals) until none applies.
void Tokenizer::bpe(std::string_view word, std::vector<int32_t>& dst) const {
    struct Symbol {
        int32_t id;
        int32_t next;  // index of the next live symbol, -1 at the end
        int32_t prev;
    };
    struct Candidate {
        int32_t rank, left, left_id, right_id;
        bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    const int32_t n = int32_t(word.size());
    std::vector<Symbol> sym(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i)
        sym[size_t(i)] = {byte_token_[(unsigned char)word[size_t(i)]], i + 1 < n ? i + 1 : -1, i - 1};

    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
    const auto consider = [&](int32_t left) {
        if (left < 0) return;
        const int32_t right = sym[size_t(left)].next;
        if (right < 0) return;
        const int32_t a = sym[size_t(left)].id, b = sym[size_t(right)].id;
        auto it = merges_.find(uint64_t(uint32_t(a)) << 32 | uint32_t(b));
        if (it != merges_.end()) queue.push({it->second.rank, left, a, b});
    };
    for (int32_t i = 0; i + 1 < n; ++i) consider(i);

    while (!queue.empty()) {
        const Candidate c = queue.top();
        queue.pop();
        Symbol& left = sym[size_t(c.left)];
        // Stale when either side has changed since it was queued (a symbol's id changes with every merge it
        // takes part in, and a merged token is never one of its parts).
        if (left.id != c.left_id || left.next < 0 || sym[size_t(left.next)].id != c.right_id) continue;
        Symbol& right = sym[size_t(left.next)];
        left.id = merges_.at(uint64_t(uint32_t(c.left_id)) << 32 | uint32_t(c.right_id)).id;
        right.id = -1;
        left.next = right.next;
        if (right.next >= 0) sym[size_t(right.next)].prev = c.left;
        consider(left.prev);
        consider(c.left);
    }
    for (int32_t i = 0; i >= 0; i = sym[size_t(i)].next) dst.push_back(sym[size_t(i)].id);
}

void Tokenizer::encode_word(std::string_view word, std::vector<int32_t>& dst) const {
    if (word.size() > kMaxCachedWord) return bpe(word, dst);
    {
        std::lock_guard lock(cache_mutex_);
        auto it = cache_.find(word);
        if (it != cache_.end()) {
            dst.insert(dst.end(), it->second.begin(), it->second.end());
            return;
        }
    }
    std::vector<int32_t> ids;
    bpe(word, ids);
    dst.insert(dst.end(), ids.begin(), ids.end());
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() >= kMaxCachedWords) cache_.clear();
    cache_.emplace(std::string(word), std::move(ids));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
    // The reference holds text as a JavaScript string: ill-formed bytes are U+FFFD by then.
    std::string sanitized;
    if (complete_utf8_prefix(text).complete != text.size()) {
        sanitized = sanitize_utf8(text);
        text = sanitized;
    }
    std::vector<int32_t> dst;
    if (options.add_bos && bos_id_ >= 0) dst.push_back(bos_id_);
    std::vector<std::string_view> words;
    const auto encode_chunk = [&](std::string_view chunk) {
        if (chunk.size() >= (size_t(1) << 32))
            throw std::length_error("tokenizer: 4 GiB or more of text without a line break");
        words.clear();
        pretokenize_deepseek_v3(chunk, words);
        for (std::string_view w : words) encode_word(w, dst);
    };
    const auto encode_section = [&](std::string_view section) {
        while (!section.empty()) {
            const size_t cut = section.size() > options.chunk_bytes
                                   ? next_pretokenize_cut(section, std::max<size_t>(options.chunk_bytes, 1))
                                   : std::string_view::npos;
            encode_chunk(section.substr(0, cut));
            section = cut == std::string_view::npos ? std::string_view() : section.substr(cut);
        }
    };
    size_t start = 0;
    if (options.parse_special) {
        for (size_t i = 0; i < text.size();) {
            if (special_->first_byte[(unsigned char)text[i]]) {
                const auto [id, len] = special_->match(text.substr(i));
                if (id >= 0) {
                    encode_section(text.substr(start, i - start));
                    dst.push_back(id);
                    i += len;
                    start = i;
                    continue;
                }
            }
            ++i;
        }
    }
    encode_section(text.substr(start));
    return dst;
}

std::string TokenStreamDecoder::push(int32_t id) {
    pending_ += tokenizer_.token_bytes(id);
    std::string out;
    size_t done = 0;
    while (done < pending_.size()) {
        const std::string_view rest = std::string_view(pending_).substr(done);
        const Utf8Prefix p = complete_utf8_prefix(rest);
        out.append(rest.data(), p.complete);
        done += p.complete;
        if (done == pending_.size() || p.rest_incomplete) break;  // hold back a character still arriving
        out += "\xEF\xBF\xBD";                                    // bytes that can never be a character
        done += decode_utf8(rest.substr(p.complete)).len;
    }
    pending_.erase(0, done);
    return out;
}

std::string TokenStreamDecoder::flush() {
    std::string out = sanitize_utf8(pending_);
    pending_.clear();
    return out;
}

}  // namespace mf
