#include "runtime/expert_ffn_weights.hpp"

#include <stdexcept>
#include <string>

#include "codegen/x64/pack_bf16.hpp"
#include "codegen/x64/pack_int4.hpp"

namespace mf {
namespace {

// gate and up interleaved by panel, down on its own, with pack_one / pack_pair of one format.
template <class Pair, class One>
ExpertFfnWeights pack_expert(const char* who, const MatrixSrc& gate, const MatrixSrc& up,
                             const MatrixSrc& down, Pair pack_pair, One pack_one) {
    if (down.n != gate.k || down.k != gate.n)
        throw std::invalid_argument(std::string(who) + ": down must be [" + std::to_string(gate.k) + "][" +
                                    std::to_string(gate.n) + "] to match gate/up [inter][hidden]");
    const MatrixSrc gu[] = {gate, up};
    return {pack_pair(std::span<const MatrixSrc>(gu)), pack_one(down)};
}

}  // namespace

ExpertFfnWeights pack_expert_ffn_int8(const MatrixSrc& gate, const MatrixSrc& up, const MatrixSrc& down) {
    return pack_expert("pack_expert_ffn_int8", gate, up, down, pack_int8_interleaved, pack_int8);
}

ExpertFfnWeights pack_expert_ffn_int4(const MatrixSrc& gate, const MatrixSrc& up, const MatrixSrc& down,
                                      bool super_blocks) {
    return pack_expert(
        "pack_expert_ffn_int4", gate, up, down,
        [&](std::span<const MatrixSrc> s) { return pack_int4_interleaved(s, super_blocks); },
        [&](const MatrixSrc& s) { return pack_int4(s, super_blocks); });
}

ExpertFfnWeights pack_expert_ffn_bf16(const MatrixSrc& gate, const MatrixSrc& up, const MatrixSrc& down) {
    return pack_expert("pack_expert_ffn_bf16", gate, up, down, pack_bf16_interleaved, pack_bf16);
}

bool weights_match(const ExpertFfnWeights& w, const ExpertFfnDesc& d) {
    return w.gate_up.wtype == d.wtype && w.down.wtype == d.wtype && w.gate_up.k == d.hidden &&
           w.gate_up.n == d.inter && w.gate_up.sources == 2 && w.down.k == d.inter && w.down.n == d.hidden;
}

}  // namespace mf
