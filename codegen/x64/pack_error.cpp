#include "codegen/x64/pack_error.hpp"

#include <cmath>
#include <stdexcept>

#include "codegen/x64/pack_bf16.hpp"
#include "codegen/x64/pack_int4.hpp"

namespace mf {

float packed_value(const PackedMatrix& pm, int64_t col, int64_t k) {
    switch (pm.wtype) {
        case WeightType::int8:
            return pm.scale[size_t(col)] * float(pm.q(col, k));
        case WeightType::int4:
            return int4_scale(pm, col, k / kInt4Group) * float(int4_q(pm, col, k)) -
                   int4_min(pm, col, k / kInt4Group);
        case WeightType::bf16:
            return packed_bf16(pm, col, k);
    }
    return 0;
}

PackError pack_error(const PackedMatrix& pm, const float* reference) {
    if (pm.sources != 1) throw std::invalid_argument("pack_error: compare one source at a time");
    PackError e;
    double sum2 = 0, ref2 = 0;
    for (int64_t r = 0; r < pm.n; ++r)
        for (int64_t k = 0; k < pm.k; ++k) {
            const double ref = reference[r * pm.k + k], d = double(packed_value(pm, r, k)) - ref;
            e.max_abs = std::max(e.max_abs, std::fabs(d));
            sum2 += d * d;
            ref2 += ref * ref;
        }
    const double n = double(pm.n) * double(pm.k);
    e.rms = std::sqrt(sum2 / n);
    e.rms_source = std::sqrt(ref2 / n);
    return e;
}

}  // namespace mf
