// Packing of row-major [N][K] weights ("out x in": each output channel's row contiguous along K) into the
// int8 panel layout both expert kernels stream (see expert_gemm_desc.hpp). Done once at load.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "codegen/x64/aligned_bytes.hpp"
#include "codegen/x64/expert_gemm_desc.hpp"

namespace mf {

enum class SrcType { f32, bf16, int8, u4_group };

// A generic weight source; codegen knows no file format. int8 comes with one fp32 scale per row (w = scale *
// q). u4_group: one byte per weight holding 0..15, with per row and group of 32 along k an fp32 scale and
// min: w = scale * q - min (Q4_K's sub-block: scale = d * sc, min = dmin * m, both exact in fp32).
struct MatrixSrc {
    SrcType type = SrcType::f32;
    int64_t n = 0, k = 0;          // rows (output channels) x columns (reduction)
    const void* data = nullptr;    // float, uint16_t (bf16 bits) or int8_t, row r at data + r * ld elements
    int64_t ld = 0;                // elements between rows; 0 means k
    const float* scale = nullptr;  // int8: n scales; u4_group: n * ceil(k / 32) scales, row-major
    const float* min = nullptr;    // u4_group: n * ceil(k / 32) mins
};

// Element (r, c) of the source as float (int8 scaled, u4_group scaled minus its min): packers' slow path.
float matrix_src_value(const MatrixSrc& s, int64_t r, int64_t c);

struct PackedMatrix {
    WeightType wtype = WeightType::int8;
    int64_t n = 0, k = 0;          // logical shape of each source
    int64_t n_pad = 0, k_pad = 0;  // per source, padded to kNAlign / kKAlign
    int sources = 1;    // interleaved sources: packed panel P holds panel P / sources of source P % sources
    AlignedBytes data;  // int8: panels of k_pad * 16 bytes, each byte w + 128;
                        // int4: panels of k_pad / 32 groups of kInt4GroupBytes (see pack_int4.hpp)
                        // bf16: panels of k_pad / 2 rows of 16 channels x 2 k (see pack_bf16.hpp)
    std::vector<float> scale;  // int8: per packed column (panel * 16 + lane), 0 in the padding
    AlignedBytes sb;           // int4: the Q4_K super-block form (pack_int4_sb.hpp), empty where it does not hold

    int64_t panels() const { return n_pad / kPanelCols * sources; }
    int64_t panel_bytes() const {
        return wtype == WeightType::int4   ? k_pad / kInt4Group * kInt4GroupBytes
               : wtype == WeightType::bf16 ? k_pad * kPanelCols * 2
                                           : k_pad * kPanelCols;
    }
    const uint8_t* panel(int64_t p) const { return data.data() + p * panel_bytes(); }
    size_t weight_bytes() const { return data.size(); }
    PackedMatrix clone() const;  // a deep copy (new buffer)
    // The stored integer weight (w + 128 - 128) of packed column col at k, for tests and references.
    int8_t q(int64_t col, int64_t kk) const;
};

// The common first step of every packer: checks that `srcs` share one positive shape with ld >= k and data
// (std::invalid_argument naming `packer` otherwise) and allocates the panels of `wtype` for them, uninitialised.
PackedMatrix allocate_packed(std::span<const MatrixSrc> srcs, WeightType wtype, const char* packer);

// Float sources are quantised per output channel (scale = max|w| / 127, round to nearest); int8 is taken as
// is.
PackedMatrix pack_int8(const MatrixSrc& src);
// Several sources of one shape interleaved by panel (e.g. gate and up, so one GEMM pass yields both for the
// same channels): packed panel 2p is gate panel p, 2p + 1 up panel p.
PackedMatrix pack_int8_interleaved(std::span<const MatrixSrc> srcs);

// Per-channel int8 quantisation of one row (the packer's rule, shared by references): returns the scale.
float quantize_row_int8(const float* src, int64_t k, int8_t* dst);

}  // namespace mf
