#include "codegen/kernel_cache.hpp"

#include <chrono>
#include <stdexcept>

#include "codegen/x64/gemm_amx.hpp"
#include "codegen/x64/gemv_avx512.hpp"
#include "codegen/x64/gemv_avx512_int4.hpp"

namespace mf {

std::unique_ptr<JitKernel> make_kernel(const AmxGemmDesc& d, const AmxGemmConfig& c) {
    return make_gemm_amx(d, c);
}
std::unique_ptr<JitKernel> make_kernel(const GemvDesc& d, const GemvConfig& c) {
    return d.wtype == WeightType::int4 ? make_gemv_avx512_int4(d, c) : make_gemv_avx512(d, c);
}

const CachedKernel& KernelCache::get_impl(const std::string& name, const Maker& make) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(name);
    if (it != entries_.end()) return *it->second;
    const auto t0 = std::chrono::steady_clock::now();
    auto e = make();
    e->name = name;
    e->status = e->kernel->create();
    e->error = e->kernel->error();
    e->emit_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return *(entries_[name] = std::move(e));
}

void KernelCache::throw_refused(const CachedKernel& e) {
    throw std::runtime_error("kernel " + e.name + " cannot be built: " + jit_status_name(e.status) +
                             (e.error.empty() ? "" : " (" + e.error + ")") + "; choose another config");
}

std::vector<const CachedKernel*> KernelCache::entries() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<const CachedKernel*> out;
    for (const auto& [name, e] : entries_) out.push_back(e.get());
    return out;
}

double KernelCache::total_emit_seconds() const {
    std::lock_guard<std::mutex> lock(mu_);
    double s = 0;
    for (const auto& [name, e] : entries_) s += e->emit_seconds;
    return s;
}

}  // namespace mf
