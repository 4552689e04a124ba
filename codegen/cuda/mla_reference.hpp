// A scalar reference of MLA decode in double (softmax(scale q.k) over the paged latent cache, times the
// latent part), the random problems it is checked on, and one decode + combine run on the GPU for comparison.
// Shared by the GPU tests (tests/codegen) and the tuner's verification of every MLA decode candidate (tune/).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "codegen/cuda/mla_attention.hpp"

namespace mf {

struct MlaDecodeProblem {
    MlaDecodeDesc d;
    int batch = 0;
    std::vector<uint16_t> q;      // bf16 [batch][heads][latent + rope]
    std::vector<uint16_t> cache;  // bf16 [pages][page_size][latent + rope]
    std::vector<int> table;  // [batch or 1][table_stride] page ids (stride 0: one table shared by all rows)
    int table_stride = 0;
    std::vector<int> lens;     // [batch] tokens of context per row
    float scale = 0.1352338f;  // softmax scale (DeepSeek-V3's 1/sqrt(192) with YaRN's mscale)
    int dim() const { return d.latent_dim + d.rope_dim; }
};

// Random bf16 q and cache in [-1, 1). Pages of every row are drawn shuffled from one pool so a wrong page
// lookup shows, and three pages nobody owns hold NaN.
MlaDecodeProblem make_mla_decode_problem(const MlaDecodeDesc& d, const std::vector<int>& lens,
                                         std::mt19937& rng);

// out[b][h][0:latent]; rows without context give zeros.
std::vector<double> mla_decode_reference(const MlaDecodeProblem& p);

// Decode + combine of p through attn with `splits` splits (needs a current CudaContext); the bf16 output as
// double. The output and workspace start as NaN, so an element the kernels do not write shows.
std::vector<double> mla_decode_run(const MlaAttention& attn, const MlaDecodeProblem& p, int splits);

// ||a - b|| / ||b||; NaN anywhere in a gives infinity.
double mla_relative_l2(const std::vector<double>& a, const std::vector<double>& b);

// Tolerance of mla_relative_l2 against the reference: bf16 P and bf16 output give about 3e-3.
inline constexpr double kMlaDecodeTolerance = 1e-2;

}  // namespace mf
