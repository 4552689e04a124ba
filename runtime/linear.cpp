#include "runtime/linear.hpp"

#include <immintrin.h>

// gcc 12's _mm512_reduce_add_ps reads an intentionally undefined register half: a false -Wmaybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "codegen/isa.hpp"
#include "codegen/x64/pack_bf16.hpp"
#include "codegen/kernel_cache.hpp"
#include "runtime/numa_memory.hpp"
#include "runtime/thread_pool.hpp"

namespace mf {

std::string compute_type_name(ComputeType t) {
    switch (t) {
        case ComputeType::f32: return "f32";
        case ComputeType::bf16: return "bf16";
        case ComputeType::int8: return "int8";
        case ComputeType::int4: return "int4";
    }
    return "?";
}

ComputeType parse_compute_type(const std::string& s) {
    if (s == "f32") return ComputeType::f32;
    if (s == "bf16") return ComputeType::bf16;
    if (s == "int8") return ComputeType::int8;
    if (s == "int4") return ComputeType::int4;
    throw std::invalid_argument("unknown compute type '" + s + "' (expected f32, bf16, int8 or int4)");
}

namespace {

constexpr int64_t kFloatKAlign = 32;
// Reduction block of the f32/bf16 projections over several rows: 64 activation rows of a block take 256 KiB in bf16.
constexpr int64_t kFloatKBlock = 2048;

// MR activation rows x NR weight rows over kp columns, at compile-time sizes so the MR x NR accumulators stay in
// registers (runtime sizes left branches and spills in the inner loop).
template <int MR, int NR>
__attribute__((target("avx512f,avx512bw,avx512bf16,avx512vl"))) void bf16_tile(
    const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t ldw, int64_t kp, float* y, int64_t ldy, bool add) {
    __m512 acc[MR][NR];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < kp; kk += 32) {
        __m512i wv[NR], xv[MR];
        for (int j = 0; j < NR; ++j) wv[j] = _mm512_loadu_si512(w + j * ldw + kk);
        for (int i = 0; i < MR; ++i) xv[i] = _mm512_loadu_si512(x + i * ldx + kk);
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j)
                acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)xv[i], (__m512bh)wv[j]);
    }
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) y[i * ldy + j] = (add ? y[i * ldy + j] : 0.0f) + _mm512_reduce_add_ps(acc[i][j]);
}

template <int MR, int NR>
__attribute__((target("avx512f"))) void f32_tile(const float* x, int64_t ldx, const float* w, int64_t ldw, int64_t kp,
                                                  float* y, int64_t ldy, bool add) {
    __m512 acc[MR][NR];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
    for (int64_t kk = 0; kk < kp; kk += 16) {
        __m512 wv[NR], xv[MR];
        for (int j = 0; j < NR; ++j) wv[j] = _mm512_loadu_ps(w + j * ldw + kk);
        for (int i = 0; i < MR; ++i) xv[i] = _mm512_loadu_ps(x + i * ldx + kk);
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_fmadd_ps(xv[i], wv[j], acc[i][j]);
    }
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) y[i * ldy + j] = (add ? y[i * ldy + j] : 0.0f) + _mm512_reduce_add_ps(acc[i][j]);
}

template <class T>
using TileFn = void (*)(const T*, int64_t, const T*, int64_t, int64_t, float*, int64_t, bool);

template <class T, template <int, int> class Pick, int MR>
constexpr TileFn<T> tile_for_rows(int nr) {
    return nr == 1 ? Pick<MR, 1>::fn : nr == 2 ? Pick<MR, 2>::fn : nr == 3 ? Pick<MR, 3>::fn : Pick<MR, 4>::fn;
}
template <int MR, int NR>
struct PickBf16 {
    static constexpr TileFn<uint16_t> fn = bf16_tile<MR, NR>;
};
template <int MR, int NR>
struct PickF32 {
    static constexpr TileFn<float> fn = f32_tile<MR, NR>;
};
template <class T, template <int, int> class Pick>
TileFn<T> tile_fn(int mr, int nr) {
    return mr == 1 ? tile_for_rows<T, Pick, 1>(nr)
           : mr == 2 ? tile_for_rows<T, Pick, 2>(nr)
           : mr == 3 ? tile_for_rows<T, Pick, 3>(nr)
                     : tile_for_rows<T, Pick, 4>(nr);
}

void bf16_block(const uint16_t* x, int64_t ldx, int mr, const uint16_t* w, int64_t ldw, int nr, int64_t kp, float* y,
                int64_t ldy, bool add) {
    tile_fn<uint16_t, PickBf16>(mr, nr)(x, ldx, w, ldw, kp, y, ldy, add);
}

void f32_block(const float* x, int64_t ldx, int mr, const float* w, int64_t ldw, int nr, int64_t kp, float* y,
               int64_t ldy, bool add) {
    tile_fn<float, PickF32>(mr, nr)(x, ldx, w, ldw, kp, y, ldy, add);
}

// Activations prepared once per call, shared read-only by the workers.
struct ActBuffers {
    std::vector<uint16_t> bf16;
    std::vector<float> f32;
    std::vector<int8_t> i8;
    std::vector<float> scale;
    std::vector<int32_t> sum;
};

ActBuffers& act_buffers() {
    thread_local ActBuffers b;
    return b;
}

std::vector<int32_t>& worker_scratch() {
    thread_local std::vector<int32_t> s;
    return s;
}

void require_isa(ComputeType t) {
    static const IsaSet isa = detect_cpu_isa();
    const bool ok = t == ComputeType::f32    ? isa.has(IsaFeature::avx512f)
                    : t == ComputeType::bf16 ? isa.has(IsaFeature::avx512_bf16)
                                             : isa.has(IsaFeature::avx512_vnni);
    if (!ok)
        throw std::runtime_error("this CPU lacks the AVX-512 features the " + compute_type_name(t) +
                                 " projections need (AVX-512F, BF16 or VNNI); moeforge's CPU path needs them");
}

Int8Kernels resolve_int8_kernels(KernelCache& cache, int64_t k) {
    Int8Kernels ks;
    for (int m = 1; m <= 16; ++m) {
        GemvDesc d;
        d.wtype = WeightType::int8;
        d.k = int(k);
        d.m = m;
        GemvConfig c;
        c.panels = gemv_panels_for(m, c);
        ks.gemv[m] = &cache.require(d, c);
    }
    static const bool amx = detect_cpu_isa().has(IsaFeature::amx_int8) && request_amx_permission();
    if (amx) {
        AmxGemmDesc d;
        d.wtype = WeightType::int8;
        d.k = int(k);
        AmxGemmConfig c;  // 2 x 2 tiles: 32 rows x 32 channels per block
        ks.amx = &cache.require(d, c);
        ks.amx_rows = 16 * c.m_tiles;
        ks.amx_panels = c.n_tiles;
    }
    return ks;
}

}  // namespace

Linear Linear::pack(const MatrixSrc& src, ComputeType type, KernelCache* cache, int numa_node) {
    if (src.n <= 0 || src.k <= 0 || !src.data)
        throw std::invalid_argument("Linear::pack: empty weight matrix");
    if (type == ComputeType::int4)
        throw std::invalid_argument("Linear::pack: int4 runs only in the fused expert FFN (routed experts)");
    require_isa(type);
    Linear l;
    l.type_ = type;
    l.n_ = src.n;
    l.k_ = src.k;
    if (type == ComputeType::int8) {
        if (!cache) throw std::invalid_argument("Linear::pack: int8 needs a kernel cache");
        l.packed_ = std::make_shared<PackedMatrix>(pack_int8(src));
        l.k_pad_ = l.packed_->k_pad;
        l.kernels_ = resolve_int8_kernels(*cache, src.k);
        bind_to_numa_node(l.packed_->data.data(), l.packed_->data.size(), numa_node);
        return l;
    }
    l.k_pad_ = round_up(src.k, kFloatKAlign);
    const size_t elem = type == ComputeType::f32 ? 4 : 2;
    l.rows_ = AlignedBytes(size_t(src.n * l.k_pad_) * elem);
    for (int64_t r = 0; r < src.n; ++r) {
        if (type == ComputeType::f32) {
            float* dst = reinterpret_cast<float*>(l.rows_.data()) + r * l.k_pad_;
            if (src.type == SrcType::f32)
                std::memcpy(dst, static_cast<const float*>(src.data) + r * (src.ld ? src.ld : src.k), size_t(src.k) * 4);
            else
                for (int64_t c = 0; c < src.k; ++c) dst[c] = matrix_src_value(src, r, c);
        } else {
            uint16_t* dst = reinterpret_cast<uint16_t*>(l.rows_.data()) + r * l.k_pad_;
            if (src.type == SrcType::bf16)
                std::memcpy(dst, static_cast<const uint16_t*>(src.data) + r * (src.ld ? src.ld : src.k), size_t(src.k) * 2);
            else
                for (int64_t c = 0; c < src.k; ++c) dst[c] = float_to_bf16(matrix_src_value(src, r, c));
        }
    }
    bind_to_numa_node(l.rows_.data(), l.rows_.size(), numa_node);
    return l;
}

size_t Linear::weight_bytes() const {
    if (type_ == ComputeType::int8) return packed_ ? packed_->data.size() : 0;
    return size_t(n_ * k_) * (type_ == ComputeType::f32 ? 4 : 2);
}

void Linear::forward(const float* x, int64_t ldx, int64_t m, float* y, int64_t ldy, ThreadPool* pool,
                     WorkerRange workers) const {
    if (m <= 0) return;
    ActBuffers& ab = act_buffers();
    const void* act = nullptr;
    if (type_ == ComputeType::f32) {
        ab.f32.assign(size_t(m * k_pad_), 0.0f);
        for (int64_t i = 0; i < m; ++i) std::memcpy(&ab.f32[size_t(i * k_pad_)], x + i * ldx, size_t(k_) * 4);
        act = ab.f32.data();
    } else if (type_ == ComputeType::bf16) {
        ab.bf16.assign(size_t(m * k_pad_), 0);
        for (int64_t i = 0; i < m; ++i)
            for (int64_t c = 0; c < k_; ++c) ab.bf16[size_t(i * k_pad_ + c)] = float_to_bf16(x[i * ldx + c]);
        act = ab.bf16.data();
    } else {
        const int64_t rows = m <= 16 || !kernels_.amx ? m : round_up(m, kernels_.amx_rows);
        ab.i8.assign(size_t(rows * k_pad_), 0);
        ab.scale.resize(size_t(m));
        ab.sum.resize(size_t(m));
        for (int64_t i = 0; i < m; ++i) {
            int8_t* q = &ab.i8[size_t(i * k_pad_)];
            ab.scale[size_t(i)] = quantize_row_int8(x + i * ldx, k_, q);
            int32_t s = 0;
            for (int64_t c = 0; c < k_; ++c) s += q[c];
            ab.sum[size_t(i)] = s;
        }
        act = ab.i8.data();
    }
    const int64_t units = linear_units(n_);
    const float* scale = ab.scale.data();
    const int32_t* sum = ab.sum.data();
    // Below ~256K multiply-adds a dispatch to the workers costs more than the work (small models, tests).
    constexpr int64_t kSerialMacs = int64_t(1) << 18;
    if (!pool || pool->size() == 1 || m * n_ * k_ < kSerialMacs) {
        run_units(act, scale, sum, m, y, ldy, 0, units, nullptr);
        return;
    }
    const int first = workers.count ? workers.first : 0;
    const int count = workers.count ? workers.count : pool->size();
    pool->run([&](int w) {
        const int i = w - first;
        if (i < 0 || i >= count) return;
        const int64_t u0 = units * i / count, u1 = units * (i + 1) / count;
        if (u0 < u1) run_units(act, scale, sum, m, y, ldy, u0, u1, nullptr);
    });
}

void Linear::run_units(const void* act, const float* act_scale, const int32_t* act_sum, int64_t m, float* y,
                       int64_t ldy, int64_t unit0, int64_t unit1, int32_t*) const {
    const int64_t n0 = unit0 * 64, n1 = std::min(n_, unit1 * 64);
    if (type_ == ComputeType::f32 || type_ == ComputeType::bf16) {
        // Several rows (prefill chunks): k blocks of kFloatKBlock, weight tiles outermost within a block, so each
        // 4-row weight tile is read from memory once and meets every activation row while the block of activations
        // stays in L2 (not once per 4 activation rows); later blocks add to y. One to four rows: one block, as the
        // weights stream through once either way.
        const size_t elem = type_ == ComputeType::f32 ? 4 : 2;
        const int64_t kb = m > 4 ? kFloatKBlock : k_pad_;
        for (int64_t k0 = 0; k0 < k_pad_; k0 += kb) {
            const int64_t kn = std::min(kb, k_pad_ - k0);
            for (int64_t j0 = n0; j0 < n1; j0 += 4) {
                const int nr = int(std::min<int64_t>(4, n1 - j0));
                const uint8_t* w = rows_.data() + size_t(j0 * k_pad_ + k0) * elem;
                for (int64_t i0 = 0; i0 < m; i0 += 4) {
                    const int mr = int(std::min<int64_t>(4, m - i0));
                    const uint8_t* x = static_cast<const uint8_t*>(act) + size_t(i0 * k_pad_ + k0) * elem;
                    if (type_ == ComputeType::f32)
                        f32_block(reinterpret_cast<const float*>(x), k_pad_, mr, reinterpret_cast<const float*>(w),
                                  k_pad_, nr, kn, y + i0 * ldy + j0, ldy, k0 > 0);
                    else
                        bf16_block(reinterpret_cast<const uint16_t*>(x), k_pad_, mr,
                                   reinterpret_cast<const uint16_t*>(w), k_pad_, nr, kn, y + i0 * ldy + j0, ldy, k0 > 0);
                }
            }
        }
        return;
    }
    // int8: C (int32) for panels [4 unit0, 4 unit1) into this worker's scratch, then dequantise into y.
    const PackedMatrix& pm = *packed_;
    const int64_t p0 = unit0 * 4, panels = (unit1 - unit0) * 4, cols = panels * kPanelCols;
    const bool use_amx = m > 16 && kernels_.amx;
    const int64_t rows = use_amx ? round_up(m, kernels_.amx_rows) : m;
    std::vector<int32_t>& c = worker_scratch();
    if (c.size() < size_t(rows * cols)) c.resize(size_t(rows * cols));
    const auto* a = static_cast<const int8_t*>(act);
    if (use_amx) {
        ExpertGemmArgs args{a, pm.panel(p0), c.data(), cols * 4, rows / kernels_.amx_rows, panels / kernels_.amx_panels};
        (*kernels_.amx)(&args);
    } else {
        for (int64_t i0 = 0; i0 < m; i0 += 16) {
            const int mr = int(std::min<int64_t>(16, m - i0));
            GemvConfig cfg;
            const int np = gemv_panels_for(mr, cfg);
            ExpertGemmArgs args{a + i0 * k_pad_, pm.panel(p0), c.data() + i0 * cols, cols * 4, 0, panels / np};
            (*kernels_.gemv[mr])(&args);
        }
    }
    for (int64_t i = 0; i < m; ++i) {
        const float sa = act_scale[i];
        const int32_t corr = 128 * act_sum[i];
        const int32_t* ci = c.data() + i * cols;
        float* yi = y + i * ldy;
        const float* sw = pm.scale.data() + p0 * kPanelCols;
        for (int64_t j = n0; j < n1; ++j) yi[j] = float(ci[j - n0] - corr) * sa * sw[j - n0];
    }
}

}  // namespace mf
