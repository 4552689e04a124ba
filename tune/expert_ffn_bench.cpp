#include "tune/expert_ffn_bench.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

namespace mf {

int ffn_bench_experts(const ModelShape& s, int m) {
    const int e = m <= 64 ? s.top_k : m <= 256 ? 4 : 1;
    return std::max(1, std::min(e, s.experts));
}

namespace {

void fill_bytes(uint8_t* p, size_t bytes, uint64_t seed) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 12345;
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::memcpy(p + i, &x, 8);
    }
}

// A packed matrix with random bytes in the layout the packer produces (no quantisation pass: timing only).
PackedMatrix random_packed(int64_t n, int64_t k, int sources, uint64_t seed) {
    PackedMatrix m;
    m.n = n;
    m.k = k;
    m.n_pad = round_up(n, kNAlign);
    m.k_pad = round_up(k, kKAlign);
    m.sources = sources;
    m.data = AlignedBytes(size_t(m.panels() * m.panel_bytes()));
    fill_bytes(m.data.data(), m.data.size(), seed);
    m.scale.assign(size_t(m.panels() * kPanelCols), 1.0f / 4096);
    return m;
}

}  // namespace

// One expert of the verification batch with its int8 weights and scales kept for the reference.
struct ExpertFfnBench::VerifyProblem {
    struct Expert {
        std::vector<int8_t> g, u, d;  // [inter][hidden], [inter][hidden], [hidden][inter]
        std::vector<float> gs, us, ds;
        ExpertFfnWeights packed;
    };
    std::vector<Expert> experts;
    std::vector<std::vector<int32_t>> tokens;  // per expert
    std::vector<std::vector<float>> gates;
    int n_tokens = 0;
    std::vector<float> x;    // [n_tokens][hidden]
    std::vector<float> ref;  // [n_tokens][hidden]
};

ExpertFfnBench::ExpertFfnBench(ThreadPool& pool, KernelCache& cache, const ModelShape& shape, uint64_t pool_bytes)
    : threads_(pool), cache_(cache), shape_(shape) {
    const double per_expert = 3.0 * double(round_up(shape.hidden, kNAlign)) * double(round_up(shape.moe_intermediate, kNAlign));
    const int n = std::max(2, int(double(pool_bytes) / per_expert));
    pool_.resize(size_t(n));
    // Each worker fills its own experts, so the pages land on its NUMA node.
    threads_.run([&](int w) {
        for (int e = w; e < n; e += threads_.size()) {
            pool_[size_t(e)].gate_up = random_packed(shape.moe_intermediate, shape.hidden, 2, uint64_t(2 * e + 1));
            pool_[size_t(e)].down = random_packed(shape.hidden, shape.moe_intermediate, 1, uint64_t(2 * e + 2));
        }
    });
}

ExpertFfnBench::~ExpertFfnBench() = default;

ExpertFfnDesc ExpertFfnBench::desc() const {
    ExpertFfnDesc d;
    enum_parse(shape_.wtype, d.wtype);
    d.hidden = shape_.hidden;
    d.inter = shape_.moe_intermediate;
    return d;
}

double ExpertFfnBench::ops(int m) const {
    return 2.0 * 3.0 * double(shape_.hidden) * shape_.moe_intermediate * m * ffn_bench_experts(shape_, m);
}

double ExpertFfnBench::weight_bytes(int m) const {
    return 3.0 * double(round_up(shape_.hidden, kNAlign)) * double(round_up(shape_.moe_intermediate, kKAlign)) *
           ffn_bench_experts(shape_, m);
}

ExpertFfn& ExpertFfnBench::driver(const ExpertFfnConfig& c) {
    for (size_t i = 0; i < driver_cfgs_.size(); ++i)
        if (driver_cfgs_[i] == c) return *drivers_[i];
    drivers_.push_back(std::make_unique<ExpertFfn>(desc(), c, cache_, threads_.size()));
    driver_cfgs_.push_back(c);
    return *drivers_.back();
}

const ExpertFfnBench::VerifyProblem& ExpertFfnBench::verify_problem() {
    if (verify_) return *verify_;
    auto v = std::make_unique<VerifyProblem>();
    const int H = shape_.hidden, I = shape_.moe_intermediate;
    std::mt19937 rng(2027);
    std::uniform_int_distribution<int> q(-127, 127);
    std::uniform_real_distribution<float> s(0.5f / 127, 2.0f / 127), xd(-1, 1), gd(0.1f, 1);
    // Routes: token 0 to experts 0, 1 and 2; expert 0 has 1 token, 1 has 3, 2 has 21, 3 none (ragged M).
    const int counts[] = {1, 3, 21, 0};
    int next_token = 1;
    for (int e = 0; e < 4; ++e) {
        VerifyProblem::Expert x;
        for (auto* w : {&x.g, &x.u}) {
            w->resize(size_t(I) * H);
            for (auto& b : *w) b = int8_t(q(rng));
        }
        x.d.resize(size_t(H) * I);
        for (auto& b : x.d) b = int8_t(q(rng));
        for (auto* sc : {&x.gs, &x.us}) {
            sc->resize(size_t(I));
            for (auto& f : *sc) f = s(rng) / std::sqrt(float(H));
        }
        x.ds.resize(size_t(H));
        for (auto& f : x.ds) f = s(rng) / std::sqrt(float(I));
        x.packed = pack_expert_ffn_int8(MatrixSrc{SrcType::int8, I, H, x.g.data(), 0, x.gs.data()},
                                        MatrixSrc{SrcType::int8, I, H, x.u.data(), 0, x.us.data()},
                                        MatrixSrc{SrcType::int8, H, I, x.d.data(), 0, x.ds.data()});
        v->experts.push_back(std::move(x));
        std::vector<int32_t> toks;
        if (counts[e] > 0) toks.push_back(0);
        while (int(toks.size()) < counts[e]) toks.push_back(next_token++);
        std::vector<float> g(toks.size());
        for (auto& f : g) f = gd(rng);
        v->tokens.push_back(std::move(toks));
        v->gates.push_back(std::move(g));
    }
    v->n_tokens = next_token;
    v->x.resize(size_t(v->n_tokens) * H);
    for (auto& f : v->x) f = xd(rng);
    // Scalar reference: quantise x per row (the packer's rule), int32 dots, SiLU(gate) * up, requantise, down,
    // router-weighted accumulate.
    v->ref.assign(size_t(v->n_tokens) * H, 0.0f);
    std::vector<int8_t> xq(static_cast<size_t>(H)), hq(static_cast<size_t>(I));
    std::vector<float> h(static_cast<size_t>(I));
    for (size_t e = 0; e < v->experts.size(); ++e) {
        const auto& ex = v->experts[e];
        for (size_t i = 0; i < v->tokens[e].size(); ++i) {
            const int t = v->tokens[e][i];
            const float sx = quantize_row_int8(&v->x[size_t(t) * H], H, xq.data());
            for (int n = 0; n < I; ++n) {
                int32_t gi = 0, ui = 0;
                const int8_t* gw = &ex.g[size_t(n) * H];
                const int8_t* uw = &ex.u[size_t(n) * H];
                for (int k = 0; k < H; ++k) {
                    gi += int32_t(xq[size_t(k)]) * gw[k];
                    ui += int32_t(xq[size_t(k)]) * uw[k];
                }
                const double g = double(sx) * ex.gs[size_t(n)] * gi, u = double(sx) * ex.us[size_t(n)] * ui;
                h[size_t(n)] = float(g / (1 + std::exp(-g)) * u);
            }
            const float sh = quantize_row_int8(h.data(), I, hq.data());
            for (int n = 0; n < H; ++n) {
                int32_t di = 0;
                const int8_t* dw = &ex.d[size_t(n) * I];
                for (int k = 0; k < I; ++k) di += int32_t(hq[size_t(k)]) * dw[k];
                v->ref[size_t(t) * H + size_t(n)] += float(v->gates[e][i] * double(sh) * ex.ds[size_t(n)] * di);
            }
        }
    }
    verify_ = std::move(v);
    return *verify_;
}

std::string ExpertFfnBench::verify(const ExpertFfnConfig& c) {
    for (const auto& [cfg, result] : verified_)
        if (cfg == c) return result;
    ExpertFfn* d = nullptr;
    try {
        d = &driver(c);
    } catch (const std::exception& e) {
        verified_.emplace_back(c, e.what());
        return e.what();  // a Config no kernel accepts: refused, not timed
    }
    const VerifyProblem& v = verify_problem();
    const int H = shape_.hidden;
    std::vector<float> y(size_t(v.n_tokens) * H, 0.0f);
    std::vector<ExpertRoute> routes;
    for (size_t e = 0; e < v.experts.size(); ++e) routes.push_back({&v.experts[e].packed, v.tokens[e], v.gates[e]});
    d->run(threads_, ExpertFfnBatch{v.x.data(), H, y.data(), H, routes});
    double ymax = 0;
    for (float f : v.ref) ymax = std::max(ymax, double(std::fabs(f)));
    // The kernels accumulate in int32 exactly; what differs is float rounding in the epilogues (vector exp, scale
    // order), which can move a requantised intermediate by one step: about 7e-4 of max|y| at these widths.
    const double tol = 2e-3 * ymax + 1e-30;
    std::string err;
    for (size_t i = 0; i < y.size() && err.empty(); ++i)
        if (!(std::fabs(double(y[i]) - v.ref[i]) <= tol))
            err = fmt::format("{}: token {} channel {}: {} vs reference {} (tolerance {:.3g})", kernel_name(desc(), c),
                               i / size_t(H), i % size_t(H), y[i], v.ref[i], tol);
    verified_.emplace_back(c, err);
    return err;
}

double ExpertFfnBench::time(int m, const ExpertFfnConfig& c, double seconds) {
    ExpertFfn& d = driver(c);
    const int experts = ffn_bench_experts(shape_, m), H = shape_.hidden;
    const int n_tokens = m * experts;
    if (int(x_.size()) < n_tokens * H) {
        x_.resize(size_t(n_tokens) * H);
        std::mt19937 rng(5);
        std::uniform_real_distribution<float> xd(-1, 1);
        for (auto& f : x_) f = xd(rng);
        y_.assign(x_.size(), 0.0f);
    }
    tokens_.resize(size_t(n_tokens));
    for (int t = 0; t < n_tokens; ++t) tokens_[size_t(t)] = t;
    gates_.assign(size_t(n_tokens), 0.125f);
    std::vector<ExpertRoute> routes(static_cast<size_t>(experts));
    auto call = [&] {
        for (int e = 0; e < experts; ++e)
            routes[size_t(e)] = {&pool_[size_t((next_ + uint64_t(e)) % pool_.size())],
                                 std::span<const int32_t>(tokens_).subspan(size_t(e) * size_t(m), size_t(m)),
                                 std::span<const float>(gates_).subspan(size_t(e) * size_t(m), size_t(m))};
        next_ += uint64_t(experts);
        d.run(threads_, ExpertFfnBatch{x_.data(), H, y_.data(), H, routes});
    };
    return time_best_of(call, seconds);
}

std::vector<Candidate> ExpertFfnBench::candidates(int m, const std::vector<ExpertFfnConfig>& cfgs, int default_index) {
    std::vector<Candidate> v;
    for (size_t i = 0; i < cfgs.size(); ++i) {
        const ExpertFfnConfig c = cfgs[i];
        Candidate cand;
        cand.label = fields_name_part(c, false);
        cand.config = fields_to_json(c);
        cand.is_default = int(i) == default_index;
        cand.verify = [this, c] { return verify(c); };
        cand.time = [this, m, c](double s) { return time(m, c, s); };
        v.push_back(std::move(cand));
    }
    return v;
}

}  // namespace mf
