#include "tune/mla_decode_bench.hpp"

#include "codegen/cuda/copy_bandwidth.hpp"

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <stdexcept>
#include <thread>

#include "codegen/cuda/cuda_context.hpp"
#include "codegen/cuda/cuda_stream.hpp"
#include "codegen/cuda/mla_reference.hpp"
#include "codegen/cuda/mla_split_policy.hpp"
#include "codegen/cuda/nvrtc_compiler.hpp"

namespace mf {

using nlohmann::json;

const std::vector<MlaFieldValues>& mla_split_search_space() {
    static const std::vector<MlaFieldValues> v = {
        {"split_sm_fill_pct", {50, 100, 200}},
    };
    return v;
}

std::vector<json> json_grid(const json& base, const std::vector<MlaFieldValues>& space) {
    std::vector<json> out{base};
    for (const MlaFieldValues& f : space) {
        if (!base.contains(f.field))
            throw std::logic_error(fmt::format("{}:{}: the search space names '{}', which the config lacks",
                                               __FILE__, __LINE__, f.field));
        std::vector<json> next;
        for (const json& j : out)
            for (int v : f.values) {
                json k = j;
                k[f.field] = v;
                next.push_back(std::move(k));
            }
        out = std::move(next);
    }
    return out;
}

namespace {

constexpr int kVerifyLong = 3000;                      // one row of this many tokens
const std::vector<int> kVerifyRagged{1, 0, 777, 130};  // a ragged batch with an empty row
constexpr size_t kRotationBytes = size_t(256) << 20;   // distinct cache bytes a timed graph walks through
constexpr float kScale = 0.1352338f;

// The thread may run on any cpu (a thread inherits its creator's pinning; the tuner's caller is a pinned
// worker).
void unpin_current_thread() {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < CPU_SETSIZE; ++i) CPU_SET(i, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

json merged(const MlaDecodeConfig& c, const MlaSplitPolicy& p) {
    json j = fields_to_json(c);
    const json policy = fields_to_json(p);
    for (auto it = policy.begin(); it != policy.end(); ++it) j[it.key()] = it.value();
    return j;
}

}  // namespace

struct MlaDecodeBench::Impl {
    std::unique_ptr<CudaContext> ctx;
    CudaArch arch;
    int sm = 0, sms = 0;
    std::filesystem::path cubin_dir;
    MlaDecodeDesc d;
    std::unique_ptr<CudaStream> stream;
    double copy_bw = 0;
    bool precompiled = false;

    std::map<std::string, std::unique_ptr<MlaAttention>> attn;  // by decode kernel name
    std::map<std::string, std::string> refused;
    std::map<std::string, std::string> verified;  // by config name + split counts of the verify problems
    std::vector<MlaDecodeProblem> problems;
    std::vector<std::vector<double>> refs;

    // Timing data: a pool of random cache pages, per context the tables, q and outputs of `rot` sequences.
    DeviceBuffer pool;
    size_t pool_pages = 0;
    struct Case {
        int rot = 0, pages_per_seq = 0;
        DeviceBuffer table, lens, q, out;
    };
    std::map<int, Case> cases;
    DeviceBuffer workspace;

    int dim() const { return d.latent_dim + d.rope_dim; }
    size_t page_bytes() const { return size_t(d.page_size) * dim() * 2; }

    // Compiles into the CUBIN cache (or finds there) every kernel the candidates need, on all cores at once:
    // NVRTC takes seconds per decode kernel, which would otherwise come out of the search's budget one at a
    // time. Failures are left for the candidate's verification to report.
    void precompile(const std::vector<MlaDecodeConfig>& cfgs) {
        std::vector<CudaKernelSource> srcs{mla_combine_source(d, false), mla_combine_source(d, true),
                                           kv_append_source(d)};
        for (const MlaDecodeConfig& c : cfgs)
            if (mla_decode_unsupported(d, c, sm).empty()) srcs.push_back(mla_decode_source(d, c, sm));
        std::atomic<size_t> next{0};
        const size_t n = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, srcs.size());
        std::vector<std::thread> threads;
        for (size_t i = 0; i < n; ++i)
            threads.emplace_back([&] {
                unpin_current_thread();
                for (size_t k; (k = next.fetch_add(1)) < srcs.size();) {
                    try {
                        compile_cuda_kernel(srcs[k], arch, cubin_dir);
                    } catch (const std::exception&) {
                    }
                }
            });
        for (auto& t : threads) t.join();
    }

    MlaAttention* attention(const MlaDecodeConfig& c, std::string* why) {
        const std::string name = mla_decode_name(d, c);
        if (auto it = attn.find(name); it != attn.end()) return it->second.get();
        if (auto it = refused.find(name); it != refused.end()) {
            *why = it->second;
            return nullptr;
        }
        try {
            ctx->make_current();
            auto a = std::make_unique<MlaAttention>(d, c, arch, cubin_dir);
            return (attn[name] = std::move(a)).get();
        } catch (const std::exception& e) {
            *why = refused[name] = e.what();
            return nullptr;
        }
    }

    std::string verify(const MlaDecodeConfig& c, const MlaSplitPolicy& p) {
        if (std::string why = mla_decode_unsupported(d, c, sm); !why.empty()) return why;
        if (std::string why = mla_split_policy_invalid(p); !why.empty()) return why;
        if (problems.empty()) {
            std::mt19937 rng(2027);
            problems.push_back(make_mla_decode_problem(d, {kVerifyLong}, rng));
            problems.push_back(make_mla_decode_problem(d, kVerifyRagged, rng));
            for (auto& pr : problems) {
                pr.scale = kScale;
                refs.push_back(mla_decode_reference(pr));
            }
        }
        std::vector<int> splits;
        for (const auto& pr : problems)
            splits.push_back(
                mla_decode_splits(d, c, p, pr.batch, *std::max_element(pr.lens.begin(), pr.lens.end()), sms));
        std::string key = mla_decode_name(d, c);
        for (int s : splits) key += fmt::format("_{}", s);
        if (auto it = verified.find(key); it != verified.end()) return it->second;
        std::string err;
        MlaAttention* a = attention(c, &err);
        for (size_t i = 0; a && i < problems.size() && err.empty(); ++i) {
            try {
                const double e = mla_relative_l2(mla_decode_run(*a, problems[i], splits[i]), refs[i]);
                if (!(e <= kMlaDecodeTolerance))
                    err = fmt::format(
                        "{} with {} splits: relative L2 error {:.3g} against the reference (tolerance "
                        "{})",
                        mla_decode_name(d, c), splits[i], e, kMlaDecodeTolerance);
            } catch (const std::exception& e) {  // a launch the driver refuses is a failed candidate
                err = fmt::format("{} with {} splits: {}", mla_decode_name(d, c), splits[i], e.what());
            }
        }
        return verified[key] = err;
    }

    Case& case_for(int context) {
        if (auto it = cases.find(context); it != cases.end()) return it->second;
        ctx->make_current();
        const size_t seq_pages = size_t(context + d.page_size - 1) / size_t(d.page_size);
        if (pool_pages < seq_pages) {  // grows only: the cases' tables index pages, never addresses
            pool_pages =
                std::max((kRotationBytes + page_bytes() - 1) / page_bytes() + 2 * seq_pages, pool_pages);
            pool = DeviceBuffer();
            pool = DeviceBuffer(pool_pages * page_bytes());
            std::mt19937 rng(42);  // one random 16 MiB block replicated over the pool
            const size_t block = size_t(16) << 20;
            std::uniform_real_distribution<float> u(-1.f, 1.f);
            std::vector<uint16_t> r(block / 2);
            for (auto& x : r) x = bf16_from_float(u(rng));
            for (size_t off = 0; off < pool.bytes(); off += block)
                pool.upload(r.data(), std::min(block, pool.bytes() - off), off);
        }
        Case c;
        c.pages_per_seq = (context + d.page_size - 1) / d.page_size;
        const size_t seq_bytes = size_t(c.pages_per_seq) * page_bytes();
        c.rot = int(std::clamp<size_t>((kRotationBytes + seq_bytes - 1) / seq_bytes, 1,
                                       pool_pages / size_t(c.pages_per_seq)));
        std::vector<int> table(size_t(c.rot) * c.pages_per_seq);
        std::iota(table.begin(), table.end(), 0);
        std::mt19937 rng{static_cast<uint32_t>(context)};
        std::shuffle(table.begin(), table.end(), rng);  // scattered pages, each read once per replay
        c.table = DeviceBuffer(table.size() * sizeof(int));
        c.table.upload(table.data(), table.size() * sizeof(int));
        const int len = context;
        c.lens = DeviceBuffer(sizeof(int));
        c.lens.upload(&len, sizeof(int));
        std::uniform_real_distribution<float> u(-1.f, 1.f);
        std::vector<uint16_t> q(size_t(c.rot) * d.heads * dim());
        for (auto& x : q) x = bf16_from_float(u(rng));
        c.q = DeviceBuffer(q.size() * 2);
        c.q.upload(q.data(), q.size() * 2);
        c.out = DeviceBuffer(size_t(c.rot) * d.heads * d.latent_dim * 2);
        return cases[context] = std::move(c);
    }

    // Seconds per decode + combine at batch 1 over `context` tokens, replaying a graph of c.rot of them.
    double time(int context, const MlaDecodeConfig& cfg, const MlaSplitPolicy& pol, double seconds) {
        std::string why;
        MlaAttention* a = attention(cfg, &why);
        if (!a) throw std::runtime_error(why);
        Case& c = case_for(context);
        const int splits = mla_decode_splits(d, cfg, pol, 1, context, sms);
        if (workspace.bytes() < a->workspace_bytes(1, splits))
            workspace = DeviceBuffer(a->workspace_bytes(1, splits));
        const CuStream s = stream->get();
        CudaGraph g;
        g.begin_capture(s);
        for (int r = 0; r < c.rot; ++r)
            a->decode(c.q.as<uint16_t>() + size_t(r) * d.heads * dim(), pool.as<uint16_t>(),
                      c.table.as<int>() + size_t(r) * c.pages_per_seq, c.pages_per_seq, c.lens.as<int>(), 1,
                      splits, kScale, workspace, c.out.as<uint16_t>() + size_t(r) * d.heads * d.latent_dim,
                      s);
        g.end_capture(s);
        g.launch(s);  // warm-up (and the first load of the module's code)
        stream->synchronize();
        CudaEvent e0, e1;
        double best = std::numeric_limits<double>::infinity();
        int n = 1;
        const auto start = std::chrono::steady_clock::now();
        for (int batch = 0; batch < 1000; ++batch) {
            e0.record(s);
            for (int i = 0; i < n; ++i) g.launch(s);
            e1.record(s);
            e1.synchronize();
            const double sec = e1.elapsed_ms_since(e0) * 1e-3;
            best = std::min(best, sec / (double(n) * c.rot));
            const double wall =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (batch >= 2 && wall >= seconds) break;
            n = std::clamp(int(seconds / 4 / std::max(sec / n, 1e-7)), 1, 10000);  // batches of ~seconds / 4
        }
        return best;
    }

    double measure_copy_bandwidth() {
        ctx->make_current();
        return measure_device_copy_bandwidth(stream->get());
    }
};

MlaDecodeBench::MlaDecodeBench(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MlaDecodeBench::~MlaDecodeBench() {
    if (impl_ && impl_->ctx) impl_->ctx->make_current();
}

std::unique_ptr<MlaDecodeBench> MlaDecodeBench::open(const ModelShape& shape,
                                                     const std::filesystem::path& cubin_dir,
                                                     std::string* why) {
    if (!nvrtc_available()) {
        *why = "this build has no NVRTC (CUDA toolkit not found at configure time)";
        return nullptr;
    }
    const GpuQuery q = query_cuda_gpus();
    if (q.gpus.empty()) {
        *why = "no CUDA GPU here (" + q.unavailable + ")";
        return nullptr;
    }
    auto impl = std::make_unique<Impl>();
    impl->d.heads = shape.heads;
    impl->d.latent_dim = shape.kv_lora_rank;
    impl->d.rope_dim = shape.qk_rope;
    impl->sm = q.gpus[0].cc_major * 10 + q.gpus[0].cc_minor;
    impl->sms = q.gpus[0].sms;
    const MlaDecodeConfig def = mla_decode_default_config(impl->d, impl->sm);
    if (std::string w = mla_decode_unsupported(impl->d, def, impl->sm); !w.empty()) {
        *why = fmt::format("the MLA decode kernel does not support this shape on {} (sm_{}): {}",
                           q.gpus[0].name, impl->sm, w);
        return nullptr;
    }
    std::error_code ec;
    std::filesystem::create_directories(cubin_dir, ec);
    impl->cubin_dir = cubin_dir;
    impl->ctx = std::make_unique<CudaContext>(0);
    impl->arch = CudaArch::for_device(q.gpus[0].cc_major, q.gpus[0].cc_minor);
    impl->stream = std::make_unique<CudaStream>();
    return std::unique_ptr<MlaDecodeBench>(new MlaDecodeBench(std::move(impl)));
}

std::vector<Candidate> MlaDecodeBench::candidates(int context) {
    Impl& m = *impl_;
    const MlaDecodeConfig def_cfg = mla_decode_default_config(m.d, m.sm);
    const MlaSplitPolicy def_pol{};
    const json def = merged(def_cfg, def_pol);
    std::vector<json> all{def};
    // The kernel's own list of every config supported here (default first), times the split policies (fused_combine
    // 3 included since session 6: its ready flags hold 31 bits of a 64-bit launch count, no longer 16 of 32).
    std::vector<MlaDecodeConfig> cfgs = mla_decode_candidates(m.d, m.sm);
    for (const MlaDecodeConfig& cfg : cfgs) {
        for (const json& p : json_grid(fields_to_json(def_pol), mla_split_search_space())) {
            const json j = merged(cfg, fields_from_json<MlaSplitPolicy>(p));
            if (std::find(all.begin(), all.end(), j) == all.end()) all.push_back(j);
        }
    }
    if (!m.precompiled) {
        m.precompile(cfgs);
        m.precompiled = true;
    }
    std::vector<Candidate> v;
    for (size_t i = 0; i < all.size(); ++i) {
        const MlaDecodeConfig cfg = fields_from_json<MlaDecodeConfig>(all[i]);
        const MlaSplitPolicy pol = fields_from_json<MlaSplitPolicy>(all[i]);
        Candidate c;
        c.label = fields_name(cfg) + "_" + fields_name(pol);
        c.config = all[i];
        c.is_default = i == 0;
        c.verify = [this, cfg, pol] { return impl_->verify(cfg, pol); };
        c.time = [this, context, cfg, pol](double s) { return impl_->time(context, cfg, pol, s); };
        v.push_back(std::move(c));
    }
    return v;
}

std::string MlaDecodeBench::gpu_name() const {
    return impl_->ctx->info().name;
}
int MlaDecodeBench::sm() const {
    return impl_->sm;
}
int MlaDecodeBench::device() const {
    return impl_->ctx->info().ordinal;
}

double MlaDecodeBench::copy_bandwidth() {
    if (impl_->copy_bw <= 0) impl_->copy_bw = impl_->measure_copy_bandwidth();
    return impl_->copy_bw;
}

json MlaDecodeBench::desc_json() const {
    return fields_to_json(impl_->d);
}

std::string MlaDecodeBench::kernel_name(const json& config) const {
    return mla_decode_name(impl_->d, fields_from_json<MlaDecodeConfig>(config));
}

int MlaDecodeBench::splits(const json& config, int context) const {
    return mla_decode_splits(impl_->d, fields_from_json<MlaDecodeConfig>(config),
                             fields_from_json<MlaSplitPolicy>(config), 1, context, impl_->sms);
}

double MlaDecodeBench::cache_bytes(int context) const {
    return double(context) * impl_->dim() * 2;
}

double MlaDecodeBench::ops(int context) const {
    return 2.0 * impl_->d.heads * double(context) * (impl_->dim() + impl_->d.latent_dim);
}

}  // namespace mf
