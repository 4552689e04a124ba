#include "codegen/cuda/mla_reference.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace mf {
namespace {

std::vector<uint16_t> random_bf16(size_t n, std::mt19937& rng) {
    std::uniform_real_distribution<float> d(-1.f, 1.f);
    std::vector<uint16_t> v(n);
    for (auto& x : v) x = bf16_from_float(d(rng));
    return v;
}

template <class T>
DeviceBuffer upload(const std::vector<T>& v) {
    DeviceBuffer b(v.size() * sizeof(T) + 16);
    b.upload(v.data(), v.size() * sizeof(T));
    return b;
}

}  // namespace

MlaDecodeProblem make_mla_decode_problem(const MlaDecodeDesc& d, const std::vector<int>& lens,
                                         std::mt19937& rng) {
    MlaDecodeProblem p;
    p.d = d;
    p.batch = static_cast<int>(lens.size());
    p.lens = lens;
    const int dim = p.dim();
    int max_pages = 1, total_pages = 0;
    for (int len : lens) {
        max_pages = std::max(max_pages, (len + d.page_size - 1) / d.page_size);
        total_pages += (len + d.page_size - 1) / d.page_size;
    }
    total_pages += 3;  // unused pages hold garbage the kernel must not read
    std::vector<int> ids(static_cast<size_t>(total_pages));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    p.table_stride = max_pages;
    p.table.assign(size_t(p.batch) * max_pages, -1);
    int next = 0;
    for (int b = 0; b < p.batch; ++b)
        for (int i = 0; i < (lens[size_t(b)] + d.page_size - 1) / d.page_size; ++i)
            p.table[size_t(b) * max_pages + i] = ids[size_t(next++)];
    p.cache = random_bf16(size_t(total_pages) * d.page_size * dim, rng);
    for (int i = next; i < total_pages; ++i)  // NaN in pages nobody owns
        std::fill_n(p.cache.begin() + ptrdiff_t(size_t(ids[size_t(i)]) * d.page_size * dim),
                    size_t(d.page_size) * dim, uint16_t(0x7fc0));
    p.q = random_bf16(size_t(p.batch) * d.heads * dim, rng);
    return p;
}

std::vector<double> mla_decode_reference(const MlaDecodeProblem& p) {
    const int dim = p.dim(), lat = p.d.latent_dim;
    std::vector<double> out(size_t(p.batch) * p.d.heads * lat, 0.0);
    std::vector<double> qd(static_cast<size_t>(dim));
    for (int b = 0; b < p.batch; ++b) {
        const int len = p.lens[size_t(b)];
        const int* table = p.table.data() + size_t(b) * p.table_stride;
        auto row = [&](int t) {
            return p.cache.data() +
                   (size_t(table[t / p.d.page_size]) * p.d.page_size + t % p.d.page_size) * dim;
        };
        std::vector<double> s(static_cast<size_t>(len));
        for (int h = 0; h < p.d.heads; ++h) {
            const uint16_t* q = p.q.data() + (size_t(b) * p.d.heads + h) * dim;
            for (int i = 0; i < dim; ++i) qd[size_t(i)] = bf16_to_float32(q[i]);
            double mx = -INFINITY;
            for (int t = 0; t < len; ++t) {
                const uint16_t* k = row(t);
                double acc = 0;
                for (int i = 0; i < dim; ++i) acc += qd[size_t(i)] * bf16_to_float32(k[i]);
                s[size_t(t)] = acc * p.scale;
                mx = std::max(mx, s[size_t(t)]);
            }
            double sum = 0;
            for (int t = 0; t < len; ++t) sum += (s[size_t(t)] = std::exp(s[size_t(t)] - mx));
            double* o = out.data() + (size_t(b) * p.d.heads + h) * lat;
            for (int t = 0; t < len; ++t) {
                const uint16_t* k = row(t);
                const double w = s[size_t(t)] / sum;
                for (int i = 0; i < lat; ++i) o[i] += w * bf16_to_float32(k[i]);
            }
        }
    }
    return out;
}

std::vector<double> mla_decode_run(const MlaAttention& attn, const MlaDecodeProblem& p, int splits) {
    const MlaDecodeDesc& d = p.d;
    DeviceBuffer q = upload(p.q), cache = upload(p.cache), table = upload(p.table), lens = upload(p.lens);
    DeviceBuffer ws(attn.workspace_bytes(p.batch, splits));
    const size_t n_out = size_t(p.batch) * d.heads * d.latent_dim;
    DeviceBuffer out(n_out * 2);
    out.fill_bytes(0xff);  // NaN: every element must be written
    ws.fill_bytes(0xff);
    attn.decode(q.as<uint16_t>(), cache.as<uint16_t>(), table.as<int>(), p.table_stride, lens.as<int>(),
                p.batch, splits, p.scale, ws, out.as<uint16_t>(), nullptr);
    cu_check(cuda_driver().ctx_synchronize(), "MLA decode run");
    std::vector<uint16_t> raw(n_out);
    out.download(raw.data(), n_out * 2);
    std::vector<double> r(n_out);
    for (size_t i = 0; i < n_out; ++i) r[i] = bf16_to_float32(raw[i]);
    return r;
}

double mla_relative_l2(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return INFINITY;
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (std::isnan(a[i])) return INFINITY;
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return std::sqrt(num / (den > 0 ? den : 1));
}

}  // namespace mf
