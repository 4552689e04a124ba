#include "tune/expert_gemm_bench.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

namespace mf {

std::vector<GemmRole> expert_gemm_roles(const ModelShape& s) {
    return {{"gate_up", s.hidden, 2 * s.moe_intermediate}, {"down", s.moe_intermediate, s.hidden}};
}

std::vector<GemvConfig> gemv_config_grid(int m) {
    std::vector<GemvConfig> v;
    GemvConfig def{};
    def.panels = gemv_panels_for(m, def);
    v.push_back(def);
    for (int np : {1, 2, 4})
        for (int pf : {0, 4, 8, 16, 32})
            for (int ku : {1, 2, 4, 8, 16}) {
                GemvConfig c{np, pf, ku};
                if (m * np + np > 32) continue;
                if (std::find(v.begin(), v.end(), c) == v.end()) v.push_back(c);
            }
    return v;
}

std::vector<AmxGemmConfig> amx_config_grid() {
    std::vector<AmxGemmConfig> v{AmxGemmConfig{}};
    for (int mt : {1, 2, 3})
        for (int nt : {1, 2, 4})
            for (LoopOrder o : {LoopOrder::nm, LoopOrder::mn})
                for (int pf : {0, 2, 4, 8, 16}) {
                    if (mt * nt + mt + nt > 8) continue;
                    AmxGemmConfig c{mt, nt, o, pf};
                    if (std::find(v.begin(), v.end(), c) == v.end()) v.push_back(c);
                }
    return v;
}

struct ExpertGemmBench::Bound {
    const CachedKernel* entry = nullptr;
    int m = 0;             // valid rows
    int rows = 0;          // rows of A the kernel reads (m rounded up to its row step)
    int64_t m_steps = 0;   // AMX row groups (0 for the GEMV)
    int step_panels = 1;   // panels per kernel step
};

namespace {

void fill_random(uint8_t* p, size_t bytes, uint64_t seed) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::memcpy(p + i, &x, 8);
    }
    for (; i < bytes; ++i) p[i] = uint8_t(i * 131);
}

// The small ragged verification problem of one role: 3 experts of 80 output channels with the role's real K, and
// 96 rows of activations; references computed once per K.
struct VerifyData {
    static constexpr int kExperts = 3, kN = 80, kRows = 96;
    std::vector<std::vector<int8_t>> w;
    std::vector<PackedMatrix> packed;
    std::vector<int8_t> a;  // kRows rows of k_pad
    int64_t k_pad = 0;
    std::vector<std::vector<int32_t>> ref;  // [expert][row * kN + n]
};

const VerifyData& verify_data(int k) {
    static std::map<int, std::unique_ptr<VerifyData>> cache;  // used from the tuning thread only
    auto& slot = cache[k];
    if (slot) return *slot;
    auto d = std::make_unique<VerifyData>();
    std::mt19937 rng(uint32_t(k) * 2654435761u);
    std::uniform_int_distribution<int> dist(-127, 127);
    std::vector<float> scale(VerifyData::kN, 1.0f);
    for (int e = 0; e < VerifyData::kExperts; ++e) {
        std::vector<int8_t> w(size_t(VerifyData::kN) * k);
        for (auto& v : w) v = int8_t(dist(rng));
        d->packed.push_back(pack_int8(MatrixSrc{SrcType::int8, VerifyData::kN, k, w.data(), 0, scale.data()}));
        d->w.push_back(std::move(w));
    }
    d->k_pad = d->packed[0].k_pad;
    d->a.assign(size_t(VerifyData::kRows) * size_t(d->k_pad), 0);
    for (int r = 0; r < VerifyData::kRows; ++r)
        for (int kk = 0; kk < k; ++kk) d->a[size_t(r * d->k_pad + kk)] = int8_t(dist(rng));
    for (int e = 0; e < VerifyData::kExperts; ++e) {
        std::vector<int32_t> c(size_t(VerifyData::kRows) * VerifyData::kN);
        for (int r = 0; r < VerifyData::kRows; ++r)
            for (int n = 0; n < VerifyData::kN; ++n) {
                int32_t s = 0;
                const int8_t* ar = &d->a[size_t(r * d->k_pad)];
                const int8_t* wr = &d->w[size_t(e)][size_t(n) * k];
                for (int kk = 0; kk < k; ++kk) s += int32_t(ar[kk]) * (int32_t(wr[kk]) + 128);
                c[size_t(r * VerifyData::kN + n)] = s;
            }
        d->ref.push_back(std::move(c));
    }
    slot = std::move(d);
    return *slot;
}

// Calls the kernel for `experts` experts on all workers: groups of threads_per_expert workers take experts round
// robin; inside a group each worker takes a contiguous share of the expert's panels (in units of 4 panels).
void dispatch(ThreadPool& pool, const JitKernel& kern, int64_t m_steps, int step_panels, const int8_t* a,
              const uint8_t* const* w, int32_t* const* c, int experts, int64_t panels, int64_t panel_bytes,
              int64_t ldc, int threads_per_expert) {
    const int workers = pool.size();
    const int tpe = threads_per_expert > 0 ? threads_per_expert : workers;
    const int groups = workers / tpe;
    const int64_t units = panels / 4;
    pool.run([&](int wk) {
        const int g = wk / tpe, lane = wk % tpe;
        if (g >= groups) return;
        const int64_t u0 = units * lane / tpe, u1 = units * (lane + 1) / tpe;
        if (u1 <= u0) return;
        for (int e = g; e < experts; e += groups) {
            const ExpertGemmArgs args{a, w[e] + u0 * 4 * panel_bytes,
                                      reinterpret_cast<int32_t*>(reinterpret_cast<uint8_t*>(c[e]) + u0 * 4 * 64), ldc,
                                      m_steps, (u1 - u0) * 4 / step_panels};
            kern(&args);
        }
    });
}

}  // namespace

ExpertGemmBench::ExpertGemmBench(ThreadPool& pool, KernelCache& cache, const HostFigures& host, uint64_t pool_bytes)
    : pool_(pool), cache_(cache), host_(host), weights_(pool_bytes) {
    // Distinct bytes per worker slice, written by the workers so pages land on their nodes.
    const size_t slice = round_up(int64_t(pool_bytes / size_t(pool.size()) + 1), 4096);
    pool_.run([&](int wk) {
        const size_t b0 = std::min(pool_bytes, size_t(wk) * slice), b1 = std::min(pool_bytes, b0 + slice);
        fill_random(weights_.data() + b0, b1 - b0, uint64_t(wk) + 1);
    });
}

int ExpertGemmBench::pool_experts(const GemmRole& r) const {
    return std::max(1, int(double(weights_.size()) / weight_bytes(r)));
}

void ExpertGemmBench::ensure_buffers(const GemmRole& r, int rows, int experts) {
    const int64_t k_pad = round_up(r.k, kKAlign), ldc = round_up(r.n, kNAlign) * 4;
    const size_t a_bytes = size_t(rows) * size_t(k_pad);
    if (act_.size() < a_bytes) {
        act_ = AlignedBytes(a_bytes);
        fill_random(act_.data(), a_bytes, 99);
    }
    if (int(out_.size()) < experts) out_.resize(size_t(experts));
    for (int e = 0; e < experts; ++e)
        if (out_[size_t(e)].size() < size_t(rows) * size_t(ldc)) out_[size_t(e)] = AlignedBytes(size_t(rows) * size_t(ldc));
}

ExpertGemmBench::Bound ExpertGemmBench::bind_gemv(const GemmRole& r, int m, const GemvConfig& c) {
    Bound b;
    b.entry = &cache_.get(GemvDesc{WeightType::int8, r.k, m}, c);
    b.m = b.rows = m;
    b.step_panels = c.panels;
    return b;
}

ExpertGemmBench::Bound ExpertGemmBench::bind_amx(const GemmRole& r, int m, const AmxGemmConfig& c) {
    Bound b;
    b.entry = &cache_.get(AmxGemmDesc{WeightType::int8, r.k}, c);
    b.m = m;
    const int step = 16 * c.m_tiles;
    b.m_steps = (m + step - 1) / step;
    b.rows = int(b.m_steps) * step;
    b.step_panels = c.n_tiles;
    return b;
}

std::string ExpertGemmBench::verify_bound(const GemmRole& r, const Bound& b, int experts, int tpe) {
    const CachedKernel& e = *b.entry;
    if (e.status != JitStatus::ok) return fmt::format("{}: {} {}", e.name, jit_status_name(e.status), e.error);
    const VerifyData& d = verify_data(r.k);
    if (b.rows > VerifyData::kRows) return fmt::format("{}: verification needs more than {} rows", e.name, b.rows);
    experts = std::min(experts, VerifyData::kExperts);
    const int64_t ldc = d.packed[0].panels() * 64;
    std::vector<std::vector<int32_t>> c(size_t(experts), std::vector<int32_t>(size_t(b.rows) * size_t(ldc / 4), -7));
    std::vector<const uint8_t*> w;
    std::vector<int32_t*> cp;
    for (int x = 0; x < experts; ++x) {
        w.push_back(d.packed[size_t(x)].panel(0));
        cp.push_back(c[size_t(x)].data());
    }
    dispatch(pool_, *e.kernel, b.m_steps, b.step_panels, d.a.data(), w.data(), cp.data(), experts,
             d.packed[0].panels(), d.packed[0].panel_bytes(), ldc, tpe);
    for (int x = 0; x < experts; ++x)
        for (int i = 0; i < b.m; ++i)
            for (int j = 0; j < VerifyData::kN; ++j) {
                const int32_t got = c[size_t(x)][size_t(i) * size_t(ldc / 4) + size_t(j)];
                const int32_t want = d.ref[size_t(x)][size_t(i * VerifyData::kN + j)];
                if (got != want)
                    return fmt::format("{}: expert {} row {} column {}: {} != reference {}", e.name, x, i, j, got, want);
            }
    return {};
}

void ExpertGemmBench::run(const GemmRole& r, const Bound& b, int experts, int tpe, uint64_t& next) {
    const int64_t panels = round_up(r.n, kNAlign) / kPanelCols, panel_bytes = round_up(r.k, kKAlign) * kPanelCols;
    const int64_t ldc = panels * 64;
    const int pool_n = pool_experts(r);
    const uint8_t* w[64];
    int32_t* c[64];
    for (int e = 0; e < experts; ++e) {
        w[e] = weights_.data() + size_t((next + uint64_t(e)) % uint64_t(pool_n)) * size_t(weight_bytes(r));
        c[e] = reinterpret_cast<int32_t*>(out_[size_t(e)].data());
    }
    next += uint64_t(experts);
    dispatch(pool_, *b.entry->kernel, b.m_steps, b.step_panels, reinterpret_cast<const int8_t*>(act_.data()), w, c,
             experts, panels, panel_bytes, ldc, tpe);
}

double ExpertGemmBench::time_bound(const GemmRole& r, const Bound& b, int experts, int tpe, double seconds) {
    if (b.entry->status != JitStatus::ok) throw std::logic_error(b.entry->name + ": timing a refused kernel");
    if (experts < 1 || experts > 64) throw std::logic_error("time_bound: 1..64 experts");
    ensure_buffers(r, b.rows, experts);
    return time_best_of([&] { run(r, b, experts, tpe, next_); }, seconds);
}

double ExpertGemmBench::bound_seconds(const GemmRole& r, int m_computed, bool amx) const {
    const double peak = amx ? host_.amx_int8_ops : host_.avx512_vnni_ops;
    double t = 0;
    if (peak > 0) t = std::max(t, ops(r, m_computed) / peak);
    if (host_.dram_read_bytes > 0) t = std::max(t, weight_bytes(r) / host_.dram_read_bytes);
    return 0.9 * t;  // measured peaks are best-of estimates: leave room for noise
}

double ExpertGemmBench::time_gemv(const GemmRole& r, int m, const GemvConfig& c0, double seconds) {
    GemvConfig c = c0;
    c.panels = gemv_panels_for(m, c0);  // a config tuned at another m may hold too many panels for this one
    return time_bound(r, bind_gemv(r, m, c), 1, 0, seconds);
}

double ExpertGemmBench::time_amx(const GemmRole& r, int m, const AmxGemmConfig& c, double seconds) {
    return time_bound(r, bind_amx(r, m, c), 1, 0, seconds);
}

std::vector<Candidate> ExpertGemmBench::gemv_candidates(const GemmRole& r, int m) {
    std::vector<Candidate> v;
    const auto grid = gemv_config_grid(m);
    for (size_t i = 0; i < grid.size(); ++i) {
        const GemvConfig c = grid[i];
        Candidate cand;
        cand.label = fields_name_part(c, false);
        cand.config = fields_to_json(c);
        cand.is_default = i == 0;
        cand.bound_seconds = bound_seconds(r, m, false);
        cand.verify = [this, r, m, c] { return verify_bound(r, bind_gemv(r, m, c), 1, 0); };
        cand.time = [this, r, m, c](double s) { return time_gemv(r, m, c, s); };
        v.push_back(std::move(cand));
    }
    return v;
}

std::vector<Candidate> ExpertGemmBench::amx_candidates(const GemmRole& r, int m) {
    std::vector<Candidate> v;
    const auto grid = amx_config_grid();
    for (size_t i = 0; i < grid.size(); ++i) {
        const AmxGemmConfig c = grid[i];
        Candidate cand;
        cand.label = fields_name_part(c, false);
        cand.config = fields_to_json(c);
        cand.is_default = i == 0;
        const int step = 16 * c.m_tiles;
        cand.bound_seconds = bound_seconds(r, (m + step - 1) / step * step, true);
        // Verified on a ragged row count of two row groups (the last partial), independent of the timed m.
        const int mv = 16 * c.m_tiles + 5;
        cand.verify = [this, r, mv, c] {
            const std::string key = kernel_name(AmxGemmDesc{WeightType::int8, r.k}, c);
            if (!verified_.count(key)) verified_[key] = verify_bound(r, bind_amx(r, mv, c), 1, 0);
            return verified_[key];
        };
        cand.time = [this, r, m, c](double s) { return time_amx(r, m, c, s); };
        v.push_back(std::move(cand));
    }
    return v;
}

}  // namespace mf
