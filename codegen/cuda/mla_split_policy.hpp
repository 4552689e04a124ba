// How many splits of the context an MLA decode launch uses (MlaDecodeParams::num_splits), as a tunable
// policy:
//     splits = min(max(1, sms * sm_fill_pct / 100 / blocks), tiles / min_tiles_per_split)
// with blocks = batch x head blocks and tiles = cache tiles of the longest row, then rounded down to a
// multiple of the config's cluster (at least one cluster). The default {100, 1} is mla_decode_num_splits():
// fill the SMs once, at least one tile per split. Fewer splits (a lower fill, more tiles per split) shorten
// the combine; more (a fill above 100) overlap two waves. The tuner searches it with the MlaDecodeConfig; the
// plan stores both.
#pragma once
#include "codegen/cuda/kernel_fields.hpp"
#include "codegen/cuda/mla_kernels.hpp"

namespace mf {

struct MlaSplitPolicy {
    int sm_fill_pct = 100;        // splits x blocks aim at this share of the SMs (25..400)
    int min_tiles_per_split = 1;  // every split gets at least this many cache tiles where the context allows

    template <class S, class F>
    static void fields(S& s, F&& f) {
        f("split_sm_fill_pct", "f", s.sm_fill_pct);
        f("split_min_tiles", "mt", s.min_tiles_per_split);
    }
    bool operator==(const MlaSplitPolicy& o) const { return fields_equal(*this, o); }
};

// Empty when the policy is usable, else why not.
std::string mla_split_policy_invalid(const MlaSplitPolicy& p);

int mla_decode_splits(const MlaDecodeDesc& d, const MlaDecodeConfig& c, const MlaSplitPolicy& p, int batch,
                      int max_seq_len, int sms);

}  // namespace mf
