// How far a packed matrix is from the float weights it was made from, for reporting lossy requantisation
// (e.g. GGUF Q5_K / Q6_K / Q8_0 dequantised to fp32, then packed as int8 per channel).
#pragma once
#include "codegen/x64/pack_int8.hpp"

namespace mf {

struct PackError {
    double max_abs = 0;     // max |packed - source|
    double rms = 0;         // root mean square of (packed - source)
    double rms_source = 0;  // root mean square of the source
    double relative() const { return rms_source > 0 ? rms / rms_source : 0; }  // rms / rms_source
};

// The packed value of column col, row k (any wtype; sources = 1 or the index's own panel order).
float packed_value(const PackedMatrix& pm, int64_t col, int64_t k);

// Compares pm (packed from one source) with `reference`, a float [n][k] row-major matrix (ld = k).
PackError pack_error(const PackedMatrix& pm, const float* reference);

}  // namespace mf
