#include "codegen/cuda/mla_split_policy.hpp"

#include <algorithm>

namespace mf {

std::string mla_split_policy_invalid(const MlaSplitPolicy& p) {
    if (p.sm_fill_pct < 25 || p.sm_fill_pct > 400) return "split_sm_fill_pct must be in 25..400";
    return {};
}

int mla_decode_splits(const MlaDecodeDesc& d, const MlaDecodeConfig& c, const MlaSplitPolicy& p, int batch,
                      int max_seq_len, int sms) {
    if (const int cm = mla_decode_cluster_splits(d, c, batch, max_seq_len, int(int64_t(sms) * p.sm_fill_pct / 100)))
        return cm;  // all splits of a head block in one cluster (config cluster_merge)
    const int blocks = std::max(1, batch) * ((d.heads + c.head_block - 1) / c.head_block);
    const int tiles = std::max(1, (max_seq_len + c.tile_tokens - 1) / c.tile_tokens);
    const int fill = std::max(1, int(int64_t(sms) * p.sm_fill_pct / 100) / blocks);
    const int splits = std::min(fill, std::max(1, tiles / std::max(1, c.min_split_tiles)));
    const int cluster = std::max(1, c.cluster);
    return std::max(cluster, splits / cluster * cluster);
}

}  // namespace mf
