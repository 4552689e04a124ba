// oneDNN beside moeforge in `bench kernels --peer onednn`: per expert three int8 matmuls (gate, up:
// [m][hidden] x [hidden][inter]; down: [m][inter] x [inter][hidden]) with per-channel output scales and fp32
// results, weights reordered once into oneDNN's preferred (AMX/VNNI) layout. No SiLU and no scatter: that
// favours oneDNN.
#include <dlfcn.h>

#include <chrono>
#include <functional>
#include <vector>

#include "tools/bench_kernels.hpp"

#ifdef MOEFORGE_HAVE_DNNL
#include <sched.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace mf {

#ifdef MOEFORGE_HAVE_DNNL
namespace {

struct PeerMatmul {
    dnnl::matmul prim;
    dnnl::memory src, dst;
    std::vector<dnnl::memory> weights;  // one per expert, in the primitive's layout
};

PeerMatmul make_matmul(const dnnl::engine& eng, dnnl::stream& st, int m, int k, int n, int experts) {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const dnnl::memory::desc src_md({m, k}, dt::s8, tag::ab), dst_md({m, n}, dt::f32, tag::ab);
    const dnnl::memory::desc any_w({k, n}, dt::s8, tag::any), plain_w({k, n}, dt::s8, tag::ba);
    dnnl::primitive_attr attr;
    attr.set_output_scales(1 << 1, std::vector<float>(size_t(n), 1e-3f));
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, any_w, dst_md), attr, eng);
    PeerMatmul mm{dnnl::matmul(pd), dnnl::memory(pd.src_desc(), eng), dnnl::memory(pd.dst_desc(), eng), {}};
    std::vector<int8_t> plain(size_t(k) * n);
    for (size_t i = 0; i < plain.size(); ++i) plain[i] = int8_t(int(i * 2654435761u >> 24) - 128);
    dnnl::memory src_w(plain_w, eng, plain.data());
    for (int e = 0; e < experts; ++e) {
        mm.weights.emplace_back(pd.weights_desc(), eng);
        dnnl::reorder(src_w, mm.weights.back()).execute(st, src_w, mm.weights.back());
    }
    auto* s = static_cast<int8_t*>(mm.src.get_data_handle());
    for (size_t i = 0; i < size_t(m) * k; ++i) s[i] = int8_t(i % 251 - 125);
    st.wait();
    return mm;
}

}  // namespace

double onednn_expert_pass_seconds(int hidden, int inter, int experts, int m, int threads, int repeats,
                                  const std::function<void()>& tick) {
    // OpenMP threads inherit the affinity of the thread that starts them, and ours is pinned to one core (it is our
    // pool's worker 0): widen it to every CPU while oneDNN runs (device run: 16 OpenMP threads on one core, 1000x
    // slower), then pin it back.
    cpu_set_t pinned, all;
    const bool have_mask = sched_getaffinity(0, sizeof(pinned), &pinned) == 0;
    CPU_ZERO(&all);
    for (int c = 0; c < CPU_SETSIZE && c < int(sysconf(_SC_NPROCESSORS_ONLN)); ++c) CPU_SET(c, &all);
    if (have_mask) sched_setaffinity(0, sizeof(all), &all);
    struct RestoreMask {
        bool on;
        cpu_set_t mask;
        ~RestoreMask() {
            if (on) sched_setaffinity(0, sizeof(mask), &mask);
        }
    } restore{have_mask, pinned};
    // libdnnl uses OpenMP; set its thread count without linking libgomp ourselves.
    if (auto* set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"))) set(threads);
    dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    dnnl::stream st(eng);
    PeerMatmul gate = make_matmul(eng, st, m, hidden, inter, experts);
    PeerMatmul up = make_matmul(eng, st, m, hidden, inter, experts);
    PeerMatmul down = make_matmul(eng, st, m, inter, hidden, experts);
    auto pass = [&] {
        const auto t0 = std::chrono::steady_clock::now();
        for (int e = 0; e < experts; ++e)
            for (PeerMatmul* mm : {&gate, &up, &down})
                mm->prim.execute(st, {{DNNL_ARG_SRC, mm->src},
                                      {DNNL_ARG_WEIGHTS, mm->weights[size_t(e)]},
                                      {DNNL_ARG_DST, mm->dst}});
        st.wait();
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    tick();
    pass();
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) tick(), best = std::min(best, pass());
    return best;
}

#else

double onednn_expert_pass_seconds(int, int, int, int, int, int, const std::function<void()>&) {
    return -1;
}

#endif

}  // namespace mf
