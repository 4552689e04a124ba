// Benchmark problems and candidates for the MLA decode kernel on the GPU (codegen/cuda/mla_kernels.hpp): one
// layer's absorbed decode + split combine at batch 1 over `context` cached tokens, for the model's attention
// shape. A candidate is one of mla_decode_candidates() (tile, stages, cluster, wgmma, min_split_tiles, bf16
// partials) with an MlaSplitPolicy (how much of the GPU a launch's splits aim to fill). Each is verified
// against the scalar reference (codegen/cuda/mla_reference) on a batch of one long row and on a ragged batch
// before it is timed; timing replays a CUDA graph of decode + combine over enough distinct cache pages (>=
// 256 MiB) that the L2 does not hold them, between CUDA events.
//
// The header holds no CUDA type, so the tuner's CPU code includes it freely; everything CUDA is inside.
#pragma once
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/plan.hpp"
#include "tune/search.hpp"

namespace mf {

class MlaDecodeBench {
  public:
    // Null, with *why saying so, when there is no NVRTC, no GPU, or the kernel does not support the shape.
    // CUBINs go to cubin_dir (created).
    static std::unique_ptr<MlaDecodeBench> open(const ModelShape& shape,
                                                const std::filesystem::path& cubin_dir, std::string* why);
    ~MlaDecodeBench();

    // Candidates at batch 1 and `context` tokens: the default (the largest-tile config that fits, the
    // SM-filling split count) first, then every supported combination of the config fields' and split
    // policy's values.
    std::vector<Candidate> candidates(int context);

    std::string gpu_name() const;
    int sm() const;
    int device() const;
    // Device-to-device copy bandwidth (read + write bytes per second), measured once on first use.
    double copy_bandwidth();

    nlohmann::json desc_json() const;
    // The kernel name of a candidate's config JSON (the decode kernel; its combine has no tuning fields).
    std::string kernel_name(const nlohmann::json& config) const;
    // Splits a candidate's config + policy JSON uses at batch 1 over `context` tokens.
    int splits(const nlohmann::json& config, int context) const;
    double cache_bytes(int context) const;  // latent cache bytes one decode reads
    double ops(int context) const;          // multiply-adds x 2 of one decode (q.k and p.v over every head)

  private:
    struct Impl;
    explicit MlaDecodeBench(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The values the search tries per split-policy field (codegen/cuda/mla_split_policy.hpp), over the default's
// JSON; the kernel configs come from mla_decode_candidates(). A policy field added later is one more entry (a
// field the policy lacks is refused, so the list cannot drift silently).
struct MlaFieldValues {
    const char* field;
    std::vector<int> values;
};
const std::vector<MlaFieldValues>& mla_split_search_space();

// Every combination of `space`'s values over `base` (base's other keys kept), in a stable order.
std::vector<nlohmann::json> json_grid(const nlohmann::json& base, const std::vector<MlaFieldValues>& space);

}  // namespace mf
