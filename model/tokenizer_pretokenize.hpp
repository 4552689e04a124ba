// DeepSeek-V3's pre-tokenizer: how text is cut into words before byte-level BPE runs on each word.
#pragma once
#include <string_view>
#include <vector>

namespace mf {

// Appends to `pieces` the words of `text` (well-formed UTF-8, special tokens already split off), in order;
// the pieces are views into `text` and concatenate back to it. The rules are those of DeepSeek-V3's
// tokenizer.json, three Split pre-tokenizers with behaviour Isolated applied one after the other (each to
// every piece of the one before), matched with JavaScript regex semantics (leftmost match, alternatives tried
// in order):
//   1. \p{N}{1,3}                     runs of numbers, cut into groups of up to three from the left
//   2. [\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+   runs of CJK ideographs, hiragana and katakana
//   3. [ASCII punct][A-Za-z]+ | [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ | ' '?[\p{P}\p{S}]+[\r\n]* |
//      \s*[\r\n]+ | \s+(?!\S) | \s+
// Text between matches becomes a piece of its own.
void pretokenize_deepseek_v3(std::string_view text, std::vector<std::string_view>& pieces);

// The first position p >= from where `text` may be cut without changing its pieces -- pieces of text[0, p)
// followed by those of text[p, end) are the pieces of text -- or std::string_view::npos. Such a p follows a
// '\n' and starts a character that is not \s: every rule-3 match that reaches a '\n' ends there (punctuation
// runs take [\r\n]* and stop at a non-CR/LF; whitespace runs holding a '\n' are matched by \s*[\r\n]+ up to
// the last one), and no number or CJK run contains a '\n'. Lets long texts be pre-tokenized in chunks.
size_t next_pretokenize_cut(std::string_view text, size_t from);

}  // namespace mf
