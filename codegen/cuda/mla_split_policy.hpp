// How many splits of the context an MLA decode launch uses (MlaDecodeParams::num_splits), as a tunable
// policy beside the config's own min_split_tiles:
//     splits = min(max(1, sms * sm_fill_pct / 100 / blocks), max(1, tiles / c.min_split_tiles))
// with blocks = batch x head blocks and tiles = cache tiles of the longest row, then rounded down to a
// multiple of the config's cluster (at least one cluster); with config cluster_merge C, C where the context fits
// one cluster (mla_decode_cluster_splits, the clusters within the same share of the SMs). The default (100) is mla_decode_num_splits():
// fill the SMs once. Fewer splits (a lower fill) shorten the combine and the partial-output traffic; more (a
// fill above 100) run a second wave. The tuner searches it with the MlaDecodeConfig; the plan stores both in
// one JSON object (the policy's keys are prefixed "split_").
#pragma once
#include "codegen/cuda/kernel_fields.hpp"
#include "codegen/cuda/mla_kernels.hpp"

namespace mf {

struct MlaSplitPolicy {
    int sm_fill_pct = 100;  // splits x blocks aim at this share of the SMs (25..400)

    template <class S, class F>
    static void fields(S& s, F&& f) {
        f("split_sm_fill_pct", "f", s.sm_fill_pct);
    }
    bool operator==(const MlaSplitPolicy& o) const { return fields_equal(*this, o); }
};

// Empty when the policy is usable, else why not.
std::string mla_split_policy_invalid(const MlaSplitPolicy& p);

int mla_decode_splits(const MlaDecodeDesc& d, const MlaDecodeConfig& c, const MlaSplitPolicy& p, int batch,
                      int max_seq_len, int sms);

}  // namespace mf
