// Thread-safe in-memory cache of JIT kernels keyed by (Desc, Config). Kernels are resolved once, before the
// hot path; entries live as long as the cache and record their emission time for kernel-dump and the tuner.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "codegen/kernel_fields.hpp"
#include "codegen/x64/expert_gemm_desc.hpp"
#include "codegen/x64/jit_kernel.hpp"

namespace mf {

struct CachedKernel {
    std::string name;         // kernel_name(desc, config)
    std::string desc_text;    // fields_to_string(desc)
    std::string config_text;  // fields_to_string(config)
    nlohmann::json desc_json, config_json;
    JitStatus status = JitStatus::emit_failed;
    std::string error;
    double emit_seconds = 0;
    std::unique_ptr<JitKernel> kernel;  // callable iff status == ok
};

// The generator for each (Desc, Config) pair; one overload per kernel family.
std::unique_ptr<JitKernel> make_kernel(const AmxGemmDesc& d, const AmxGemmConfig& c);
std::unique_ptr<JitKernel> make_kernel(const GemvDesc& d, const GemvConfig& c);

class KernelCache {
  public:
    // The entry for (d, c), emitting it on first use. Check entry.status before calling entry.kernel.
    template <class D, class C>
    const CachedKernel& get(const D& d, const C& c) {
        return get_impl(kernel_name(d, c), [&] {
            auto e = std::make_unique<CachedKernel>();
            e->desc_text = fields_to_string(d);
            e->config_text = fields_to_string(c);
            e->desc_json = fields_to_json(d);
            e->config_json = fields_to_json(c);
            e->kernel = make_kernel(d, c);
            return e;
        });
    }

    // Like get(), but throws std::runtime_error naming the kernel when it cannot be built.
    template <class D, class C>
    const JitKernel& require(const D& d, const C& c) {
        const CachedKernel& e = get(d, c);
        if (e.status != JitStatus::ok) throw_refused(e);
        return *e.kernel;
    }

    // Snapshot of all entries in name order (pointers stay valid while the cache lives).
    std::vector<const CachedKernel*> entries() const;
    double total_emit_seconds() const;

  private:
    using Maker = std::function<std::unique_ptr<CachedKernel>()>;
    const CachedKernel& get_impl(const std::string& name, const Maker& make);
    [[noreturn]] static void throw_refused(const CachedKernel& e);

    mutable std::mutex mu_;
    std::map<std::string, std::unique_ptr<CachedKernel>> entries_;
};

}  // namespace mf
