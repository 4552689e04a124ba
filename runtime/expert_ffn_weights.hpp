// One routed expert's weights in the expert kernels' packed layouts (codegen/x64/pack_*.hpp), packed once at
// load.
#pragma once
#include "codegen/x64/expert_ffn_desc.hpp"
#include "codegen/x64/pack_int8.hpp"

namespace mf {

// Both matrices in the ExpertFfnDesc's wtype.
struct ExpertFfnWeights {
    PackedMatrix gate_up;  // gate [inter][hidden] and up [inter][hidden], interleaved by panel
    PackedMatrix down;     // [hidden][inter]
};

// gate, up: [inter][hidden]; down: [hidden][inter] (row-major "out x in"); a down of another shape throws
// std::invalid_argument. int8: any SrcType but u4_group; int4: u4_group (exact, e.g. decoded Q4_K) or
// float/bf16 (quantised per group of 32); `super_blocks`: keep the Q4_K super-block form where it holds
// (pack_int4.hpp), for drivers that run that kernel (ExpertFfnSet::uses_int4_super_blocks).
ExpertFfnWeights pack_expert_ffn_int8(const MatrixSrc& gate, const MatrixSrc& up, const MatrixSrc& down);
ExpertFfnWeights pack_expert_ffn_int4(const MatrixSrc& gate, const MatrixSrc& up, const MatrixSrc& down,
                                      bool super_blocks = true);
// bf16: f32 (rounded) or bf16 sources.
ExpertFfnWeights pack_expert_ffn_bf16(const MatrixSrc& gate, const MatrixSrc& up, const MatrixSrc& down);

// Whether w was packed for d: its wtype, gate/up [inter][hidden] interleaved, down [hidden][inter].
bool weights_match(const ExpertFfnWeights& w, const ExpertFfnDesc& d);

}  // namespace mf
