#include "tune/peak_bench.hpp"

#include <numa.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <stdexcept>
#include <vector>

#include "codegen/x64/stream_read.hpp"

namespace mf {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

Measured summarize(const std::vector<double>& rates) {
    Measured m;
    if (rates.empty()) return m;
    const auto [lo, hi] = std::minmax_element(rates.begin(), rates.end());
    m.value = *hi;
    m.spread = *hi > 0 ? (*hi - *lo) / *hi : 0;
    m.repeats = int(rates.size());
    return m;
}

// Runs `kernel` with per-thread buffers on `workers` threads of the pool (worker 0 only, or all), `t.repeats`
// times, after calibrating iterations so one run lasts about t.seconds_per_run.
template <class Args>
Measured time_compute_loop(ThreadPool& pool, const JitKernel& kernel, uint64_t ops_per_iter, bool all,
                           const BenchTiming& t, const std::vector<Args>& args_per_worker) {
    auto run_iters = [&](uint64_t iters) {
        std::vector<Args> args = args_per_worker;
        for (auto& a : args) a.iters = iters;
        const auto t0 = Clock::now();
        pool.run([&](int w) {
            if (all || w == 0) kernel(&args[w]);
        });
        return seconds_since(t0);
    };
    uint64_t iters = 256;
    for (double s = run_iters(iters); s < t.seconds_per_run / 4; s = run_iters(iters)) iters *= 4;
    const double probe = run_iters(iters);
    iters = std::max<uint64_t>(1, uint64_t(double(iters) * t.seconds_per_run / std::max(probe, 1e-6)));
    run_iters(iters);  // one untimed run at full length: clocks settle after the switch into AMX/AVX-512 work
    std::vector<double> rates;
    const double threads = all ? pool.size() : 1;
    for (int r = 0; r < t.repeats; ++r) rates.push_back(threads * double(iters * ops_per_iter) / run_iters(iters));
    return summarize(rates);
}

struct AlignedBuffer {
    explicit AlignedBuffer(size_t n) : p(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 63) / 64 * 64))) {
        std::memset(p, 0, n);
    }
    ~AlignedBuffer() { std::free(p); }
    uint8_t* p;
};

}  // namespace

PeakSet measure_amx_peak(ThreadPool& pool, AmxPeakDtype dtype, const BenchTiming& t, AmxPeakOperands operands) {
    const bool random_reload = operands == AmxPeakOperands::random_reload;
    const bool random = operands != AmxPeakOperands::zero;
    const PeakAmxDesc desc{dtype, random_reload};
    auto k = make_peak_amx_kernel(desc);
    if (k->create() != JitStatus::ok) throw std::runtime_error("cannot emit " + k->name() + ": " + k->error());
    // Zero operands (the TMUL's best case) or random ones: int8 any byte (the int32 sums wrap; only the time
    // matters), bf16 values in [-1, 1] (fp32 sums stay finite).
    std::vector<std::unique_ptr<AlignedBuffer>> bufs;
    std::vector<PeakAmxArgs> args;
    std::mt19937 rng(17);
    std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
    const size_t operand_bytes = random_reload ? 8192 : 2048;
    for (int w = 0; w < pool.size(); ++w) {
        auto a = std::make_unique<AlignedBuffer>(operand_bytes), b = std::make_unique<AlignedBuffer>(operand_bytes),
             c = std::make_unique<AlignedBuffer>(4096);
        if (random)
            for (uint8_t* p : {a->p, b->p}) {
                if (dtype == AmxPeakDtype::int8) {
                    for (size_t i = 0; i < operand_bytes; ++i) p[i] = uint8_t(rng());
                } else {
                    for (size_t i = 0; i < operand_bytes; i += 2) {
                        const float f = unit(rng);
                        uint32_t u;
                        std::memcpy(&u, &f, 4);
                        const uint16_t h = uint16_t(u >> 16);
                        std::memcpy(p + i, &h, 2);
                    }
                }
            }
        args.push_back({a->p, b->p, c->p, 0});
        bufs.push_back(std::move(a)), bufs.push_back(std::move(b)), bufs.push_back(std::move(c));
    }
    const uint64_t ops = desc.ops_per_iter();
    return {time_compute_loop(pool, *k, ops, false, t, args), time_compute_loop(pool, *k, ops, true, t, args)};
}

PeakSet measure_avx512_peak(ThreadPool& pool, Avx512PeakOp op, const BenchTiming& t) {
    const PeakAvx512Desc desc{op, 16};
    auto k = make_peak_avx512_kernel(desc);
    if (k->create() != JitStatus::ok) throw std::runtime_error("cannot emit " + k->name() + ": " + k->error());
    std::vector<std::unique_ptr<AlignedBuffer>> bufs;
    std::vector<PeakAvx512Args> args;
    for (int w = 0; w < pool.size(); ++w) {
        auto a = std::make_unique<AlignedBuffer>(64), b = std::make_unique<AlignedBuffer>(64),
             c = std::make_unique<AlignedBuffer>(64 * desc.accumulators);
        args.push_back({a->p, b->p, c->p, 0});
        bufs.push_back(std::move(a)), bufs.push_back(std::move(b)), bufs.push_back(std::move(c));
    }
    return {time_compute_loop(pool, *k, desc.ops_per_iter(), false, t, args),
            time_compute_loop(pool, *k, desc.ops_per_iter(), true, t, args)};
}

DramReadResult measure_dram_read(const CpuTopology& topo, uint64_t buffer_bytes, const BenchTiming& t) {
    // Variants, best of all kept: software prefetch distances (on some hosts, VMs among them, the hardware
    // prefetchers alone do not reach the bandwidth the expert kernels get), and half the buffer where that is
    // still far beyond the LLC.
    const StreamReadDesc desc{1024};
    std::vector<std::unique_ptr<JitKernel>> kernels;
    for (int pf : {0, 1024, 4096}) {
        kernels.push_back(make_stream_read_kernel({desc.unroll_bytes, pf}));
        JitKernel& k = *kernels.back();
        if (k.create() != JitStatus::ok) throw std::runtime_error("cannot emit " + k.name() + ": " + k.error());
    }
    std::vector<int> halvings{0};
    if (buffer_bytes / 2 >= std::max<uint64_t>(1ull << 30, 4 * topo.llc_bytes_total())) halvings.push_back(1);

    // Worker w belongs to node_of[w] and reads slice slot_of[w] of that node's buffer.
    const int nodes = int(topo.numa_nodes.size());
    std::vector<int> cpus, node_of, slot_of, per_node_workers(nodes, 0);
    for (int n = 0; n < nodes; ++n)
        for (int cpu : topo.one_pu_per_core(topo.numa_nodes[n].id)) {
            cpus.push_back(cpu);
            node_of.push_back(n);
            slot_of.push_back(per_node_workers[n]++);
        }
    ThreadPool pool(cpus);
    const uint64_t unit = uint64_t(desc.unroll_bytes);
    std::vector<uint8_t*> buffers(nodes, nullptr);
    std::vector<uint64_t> slice(nodes, 0);
    const bool have_numa = numa_available() >= 0;
    for (int n = 0; n < nodes; ++n) {
        if (per_node_workers[n] == 0) continue;
        slice[n] = buffer_bytes / per_node_workers[n] / unit * unit;
        const size_t bytes = slice[n] * per_node_workers[n];
        void* p = have_numa ? numa_alloc_onnode(bytes, topo.numa_nodes[n].id) : std::aligned_alloc(4096, bytes);
        if (!p) throw std::runtime_error("cannot allocate the bandwidth test buffer on NUMA node " +
                                         std::to_string(topo.numa_nodes[n].id));
        buffers[n] = static_cast<uint8_t*>(p);
    }
    // First touch from the reading thread itself places each page where it will be read.
    pool.run([&](int w) {
        const int n = node_of[w];
        std::memset(buffers[n] + slice[n] * slot_of[w], int(w + 1), slice[n]);
    });

    // Each worker reads the first slice >> halving bytes of its slice (a multiple of the unroll).
    auto run = [&](int only_node, const JitKernel& k, int halving) {
        std::vector<uint64_t> out(8 * cpus.size());
        const auto t0 = Clock::now();
        pool.run([&](int w) {
            const int n = node_of[w];
            if (only_node >= 0 && n != only_node) return;
            StreamReadArgs a{buffers[n] + slice[n] * slot_of[w], (slice[n] >> halving) / unit * unit, &out[8 * w]};
            k(&a);
        });
        const double s = seconds_since(t0);
        uint64_t bytes = 0;
        for (int n = 0; n < nodes; ++n)
            if (only_node < 0 || only_node == n) bytes += (slice[n] >> halving) / unit * unit * per_node_workers[n];
        return double(bytes) / s;
    };
    auto measure = [&](int only_node) {
        Measured best;
        for (const auto& k : kernels)
            for (int halving : halvings) {
                run(only_node, *k, halving);  // warm the TLB and the prefetchers
                std::vector<double> rates;
                for (int r = 0; r < t.repeats; ++r) rates.push_back(run(only_node, *k, halving));
                const Measured m = summarize(rates);
                if (m.value > best.value) best = m;
            }
        return best;
    };

    DramReadResult res;
    res.buffer_bytes = buffer_bytes;
    for (int n = 0; n < nodes; ++n) res.per_node.push_back(per_node_workers[n] ? measure(n) : Measured{});
    res.total = nodes == 1 ? res.per_node[0] : measure(-1);
    for (int n = 0; n < nodes; ++n) {
        if (!buffers[n]) continue;
        if (have_numa)
            numa_free(buffers[n], slice[n] * per_node_workers[n]);
        else
            std::free(buffers[n]);
    }
    return res;
}

}  // namespace mf
