#include "tune/expert_ffn_bench.hpp"

#include "codegen/x64/pack_int4.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

namespace mf {

int ffn_bench_experts(const ModelShape& s, int m) {
    return std::max(1, m <= 64 ? s.top_k : m <= 256 ? 4 : 1);
}

namespace {

// Weights of one expert in the layout of `wtype`: int8 from random int8 sources with one scale per row, int4 from
// random 4-bit sources with a scale and a min per group of 32 (both exact in their packed form). The kernels' speed
// does not depend on the values; the reference reads them back through dequant().
struct ExpertSources {
    int64_t n = 0, k = 0, groups = 0;  // groups along k (1 for int8)
    std::vector<int8_t> q;             // int8: -127..127; int4: 0..15
    std::vector<float> scale, min;     // [n][groups]
    MatrixSrc src(WeightType t) const {
        return t == WeightType::int4 ? MatrixSrc{SrcType::u4_group, n, k, q.data(), 0, scale.data(), min.data()}
                                     : MatrixSrc{SrcType::int8, n, k, q.data(), 0, scale.data()};
    }
    // Row r dequantised: w = scale * q (- min for int4).
    void dequant_row(int64_t r, std::vector<double>& dst) const {
        dst.resize(size_t(k));
        for (int64_t c = 0; c < k; ++c) {
            const size_t g = size_t(r * groups + (groups > 1 ? c / kInt4Group : 0));
            dst[size_t(c)] = double(scale[g]) * q[size_t(r * k + c)] - double(min[g]);
        }
    }
};

ExpertSources random_sources(WeightType t, int64_t n, int64_t k, float scale_range, std::mt19937& rng) {
    ExpertSources e;
    e.n = n;
    e.k = k;
    e.groups = t == WeightType::int4 ? (k + kInt4Group - 1) / kInt4Group : 1;
    std::uniform_int_distribution<int> q8(-127, 127), q4(0, 15);
    std::uniform_real_distribution<float> sd(0.5f, 2.0f), md(0.0f, 1.0f);
    e.q.resize(size_t(n * k));
    for (auto& b : e.q) b = int8_t(t == WeightType::int4 ? q4(rng) : q8(rng));
    e.scale.resize(size_t(n * e.groups));
    e.min.assign(size_t(n * e.groups), 0.0f);
    const float unit = t == WeightType::int4 ? scale_range * 127 / 15 : scale_range;
    for (auto& f : e.scale) f = sd(rng) * unit;
    if (t == WeightType::int4) {  // Q4_K's form: per 256 k one d (an fp16's 11 bits), sc 16..63 (pack_int4_sb.hpp)
        std::uniform_int_distribution<int> six(16, 63);
        int e2;
        std::frexp(unit / 32, &e2);
        for (int64_t r = 0; r < n; ++r)
            for (int64_t b = 0; b < (e.groups + 7) / 8; ++b) {
                const float d = std::ldexp(std::nearbyint(std::ldexp(sd(rng) * unit / 32, 11 - e2)), e2 - 11);
                for (int64_t g = b * 8; g < std::min<int64_t>(e.groups, b * 8 + 8); ++g)
                    e.scale[size_t(r * e.groups + g)] = d * float(six(rng));
            }
    }
    if (t == WeightType::int4)
        for (size_t i = 0; i < e.min.size(); ++i) e.min[i] = md(rng) * e.scale[i] * 15;
    return e;
}

ExpertFfnWeights pack_expert(WeightType t, const ExpertSources& g, const ExpertSources& u, const ExpertSources& d) {
    return t == WeightType::int4 ? pack_expert_ffn_int4(g.src(t), u.src(t), d.src(t))
                                 : pack_expert_ffn_int8(g.src(t), u.src(t), d.src(t));
}

}  // namespace

// One expert of the verification batch with its int8 weights and scales kept for the reference.
struct ExpertFfnBench::VerifyProblem {
    struct Expert {
        ExpertSources g, u, d;  // gate, up [inter][hidden]; down [hidden][inter]
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
    const ExpertFfnDesc d = desc();
    ExpertFfnWeights first;
    {
        std::mt19937 rng(11);
        const ExpertSources g = random_sources(d.wtype, d.inter, d.hidden, 1e-3f, rng);
        const ExpertSources u = random_sources(d.wtype, d.inter, d.hidden, 1e-3f, rng);
        const ExpertSources dn = random_sources(d.wtype, d.hidden, d.inter, 1e-3f, rng);
        first = pack_expert(d.wtype, g, u, dn);
    }
    const double per_expert = double(first.gate_up.weight_bytes() + first.down.weight_bytes());
    const int n = std::max(2, int(double(pool_bytes) / per_expert));
    pool_.resize(size_t(n));
    // Each worker copies its own experts, so the pages land on its NUMA node.
    threads_.run([&](int w) {
        for (int e = w + 1; e < n; e += threads_.size()) pool_[size_t(e)] = {first.gate_up.clone(), first.down.clone()};
    });
    pool_[0] = std::move(first);
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
    const auto& w = pool_.front();
    return double(w.gate_up.weight_bytes() + w.down.weight_bytes()) * ffn_bench_experts(shape_, m);
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
    const ExpertFfnDesc fd = desc();
    const int H = shape_.hidden, I = shape_.moe_intermediate;
    std::mt19937 rng(2027);
    std::uniform_real_distribution<float> xd(-1, 1), gd(0.1f, 1);
    // Routes: token 0 to experts 0, 1 and 2; expert 0 has 1 token, 1 has 3, 2 has 21, 3 none (ragged M).
    const int counts[] = {1, 3, 21, 0};
    int next_token = 1;
    for (int e = 0; e < 4; ++e) {
        VerifyProblem::Expert x;
        x.g = random_sources(fd.wtype, I, H, 1.0f / 127 / std::sqrt(float(H)), rng);
        x.u = random_sources(fd.wtype, I, H, 1.0f / 127 / std::sqrt(float(H)), rng);
        x.d = random_sources(fd.wtype, H, I, 1.0f / 127 / std::sqrt(float(I)), rng);
        x.packed = pack_expert(fd.wtype, x.g, x.u, x.d);
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
    // Scalar reference in double over the dequantised weights: quantise x per row to int8 (the packer's rule),
    // gate and up, SiLU(gate) * up, requantise, down, router-weighted accumulate.
    v->ref.assign(size_t(v->n_tokens) * H, 0.0f);
    std::vector<double> wg, wu, wd;
    for (size_t e = 0; e < v->experts.size(); ++e) {
        const auto& ex = v->experts[e];
        const size_t nt = v->tokens[e].size();
        if (!nt) continue;
        std::vector<std::vector<double>> xa(nt, std::vector<double>(static_cast<size_t>(H)));
        std::vector<std::vector<float>> h(nt, std::vector<float>(static_cast<size_t>(I)));
        std::vector<int8_t> q8(static_cast<size_t>(std::max(H, I)));
        for (size_t i = 0; i < nt; ++i) {
            const float sx = quantize_row_int8(&v->x[size_t(v->tokens[e][i]) * H], H, q8.data());
            for (int k = 0; k < H; ++k) xa[i][size_t(k)] = double(sx) * q8[size_t(k)];
        }
        for (int n = 0; n < I; ++n) {
            ex.g.dequant_row(n, wg);
            ex.u.dequant_row(n, wu);
            for (size_t i = 0; i < nt; ++i) {
                double g = 0, u = 0;
                for (int k = 0; k < H; ++k) {
                    g += xa[i][size_t(k)] * wg[size_t(k)];
                    u += xa[i][size_t(k)] * wu[size_t(k)];
                }
                h[i][size_t(n)] = float(g / (1 + std::exp(-g)) * u);
            }
        }
        std::vector<std::vector<double>> ha(nt, std::vector<double>(static_cast<size_t>(I)));
        for (size_t i = 0; i < nt; ++i) {
            const float sh = quantize_row_int8(h[i].data(), I, q8.data());
            for (int k = 0; k < I; ++k) ha[i][size_t(k)] = double(sh) * q8[size_t(k)];
        }
        for (int n = 0; n < H; ++n) {
            ex.d.dequant_row(n, wd);
            for (size_t i = 0; i < nt; ++i) {
                double acc = 0;
                for (int k = 0; k < I; ++k) acc += ha[i][size_t(k)] * wd[size_t(k)];
                v->ref[size_t(v->tokens[e][i]) * H + size_t(n)] += float(v->gates[e][i] * acc);
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
    const int n_tokens = m;  // every expert of the call takes the same m tokens (see the header)
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
            routes[size_t(e)] = {&pool_[size_t((next_ + uint64_t(e)) % pool_.size())], tokens_, gates_};
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
