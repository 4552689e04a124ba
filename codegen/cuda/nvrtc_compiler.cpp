#include "codegen/cuda/nvrtc_compiler.hpp"

#include <cstring>
#include <stdexcept>

#include "codegen/cuda/cubin_cache.hpp"
#include "codegen/cuda/embedded_headers.hpp"

#if MOEFORGE_HAVE_CUDA
#include <nvrtc.h>
#endif

namespace mf {

std::string CudaArch::sm_name() const {
    return "sm_" + std::to_string(major) + std::to_string(minor) + (arch_specific ? "a" : "");
}

std::string CudaArch::compute_name() const {
    return "compute_" + std::to_string(major) + std::to_string(minor) + (arch_specific ? "a" : "");
}

CudaArch CudaArch::for_device(int cc_major, int cc_minor) {
    // Hopper gets the arch-specific target (wgmma, setmaxnreg); everything else the portable one.
    return CudaArch{cc_major, cc_minor, cc_major == 9 && cc_minor == 0};
}

std::vector<std::string> nvrtc_options(const CudaArch& arch) {
    std::vector<std::string> o = {"--gpu-architecture=" + arch.sm_name(), "-std=c++17", "-lineinfo",
                                  "-DMOEFORGE_NVRTC=1"};
#ifdef MOEFORGE_CUDA_INCLUDE_DIR
    o.push_back(std::string("-I") + MOEFORGE_CUDA_INCLUDE_DIR);
#endif
    return o;
}

bool cubin_has_symbol(const std::string& cubin, const std::string& name) {
    // The symbol string table holds "\0name\0"; a prefix of a longer name does not match.
    const std::string needle = std::string(1, '\0') + name + std::string(1, '\0');
    return cubin.size() > 4 &&
           cubin.compare(0, 4,
                         "\x7f"
                         "ELF") == 0 &&
           cubin.find(needle) != std::string::npos;
}

#if MOEFORGE_HAVE_CUDA

namespace {

void nvrtc_check(nvrtcResult r, const char* what, const std::string& name) {
    if (r != NVRTC_SUCCESS)
        throw std::runtime_error(std::string("NVRTC: ") + what + " failed for " + name + ": " +
                                 nvrtcGetErrorString(r));
}

// Compiles; returns the program (caller destroys) or throws with the log.
nvrtcProgram compile_program(const CudaKernelSource& src, const std::vector<std::string>& opts,
                             std::string& log) {
    const auto& headers = embedded_cuda_headers();
    std::vector<std::string> texts, names;
    for (const auto& h : headers) {
        texts.emplace_back(h.text);
        names.emplace_back(h.name);
    }
    std::vector<const char*> tp, np, op;
    for (size_t i = 0; i < headers.size(); ++i) {
        tp.push_back(texts[i].c_str());
        np.push_back(names[i].c_str());
    }
    for (const auto& o : opts) op.push_back(o.c_str());
    nvrtcProgram prog = nullptr;
    nvrtc_check(nvrtcCreateProgram(&prog, src.source.c_str(), (src.name + ".cu").c_str(),
                                   static_cast<int>(tp.size()), tp.data(), np.data()),
                "nvrtcCreateProgram", src.name);
    const nvrtcResult r = nvrtcCompileProgram(prog, static_cast<int>(op.size()), op.data());
    size_t n = 0;
    nvrtcGetProgramLogSize(prog, &n);
    log.assign(n, '\0');
    if (n) nvrtcGetProgramLog(prog, log.data());
    while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
    if (r != NVRTC_SUCCESS) {
        nvrtcDestroyProgram(&prog);
        std::string opt_text;
        for (const auto& o : opts) opt_text += " " + o;
        throw std::runtime_error("NVRTC could not compile CUDA kernel " + src.name + " (options:" + opt_text +
                                 "): " + nvrtcGetErrorString(r) + "\n" + log);
    }
    return prog;
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + "\n";
    return s;
}

}  // namespace

bool nvrtc_available() {
    return true;
}

int nvrtc_version() {
    int major = 0, minor = 0;
    if (nvrtcVersion(&major, &minor) != NVRTC_SUCCESS) return 0;
    return major * 1000 + minor * 10;
}

CudaBinary compile_cuda_kernel(const CudaKernelSource& src, const CudaArch& arch,
                               const std::filesystem::path& cache_dir) {
    CudaBinary bin;
    bin.name = src.name;
    bin.block_threads = src.block_threads;
    bin.dynamic_smem_bytes = src.dynamic_smem_bytes;
    const auto opts = nvrtc_options(arch);
    std::filesystem::path file;
    if (!cache_dir.empty()) {
        file = cubin_cache_path(cache_dir, src.name,
                                cubin_cache_key(src.source, join(opts), arch.sm_name(), nvrtc_version()));
        if (auto cached = read_cached_cubin(file); cached && cubin_has_symbol(*cached, src.name)) {
            bin.cubin = std::move(*cached);
            bin.from_cache = true;
            return bin;
        }
    }
    nvrtcProgram prog = compile_program(src, opts, bin.log);
    size_t n = 0;
    nvrtcResult r = nvrtcGetCUBINSize(prog, &n);
    if (r == NVRTC_SUCCESS && n > 0) {
        bin.cubin.resize(n);
        r = nvrtcGetCUBIN(prog, bin.cubin.data());
    }
    nvrtcDestroyProgram(&prog);
    nvrtc_check(r, "nvrtcGetCUBIN", src.name);
    if (bin.cubin.empty())
        throw std::runtime_error("NVRTC produced no CUBIN for " + src.name + " (" + arch.sm_name() +
                                 "): a compute_ target gives PTX only");
    if (!file.empty()) write_cached_cubin(file, bin.cubin);
    return bin;
}

std::string compile_cuda_ptx(const CudaKernelSource& src, const CudaArch& arch) {
    auto opts = nvrtc_options(arch);
    opts[0] = "--gpu-architecture=" + arch.compute_name();
    std::string log;
    nvrtcProgram prog = compile_program(src, opts, log);
    size_t n = 0;
    std::string ptx;
    nvrtcResult r = nvrtcGetPTXSize(prog, &n);
    if (r == NVRTC_SUCCESS) {
        ptx.resize(n);
        r = nvrtcGetPTX(prog, ptx.data());
    }
    nvrtcDestroyProgram(&prog);
    nvrtc_check(r, "nvrtcGetPTX", src.name);
    while (!ptx.empty() && ptx.back() == '\0') ptx.pop_back();
    return ptx;
}

#else  // built without the CUDA toolkit

bool nvrtc_available() {
    return false;
}
int nvrtc_version() {
    return 0;
}

CudaBinary compile_cuda_kernel(const CudaKernelSource& src, const CudaArch&, const std::filesystem::path&) {
    throw std::runtime_error(
        "cannot compile CUDA kernel " + src.name +
        ": moeforge was built without the CUDA toolkit (NVRTC); rebuild with it installed");
}

std::string compile_cuda_ptx(const CudaKernelSource& src, const CudaArch&) {
    throw std::runtime_error("cannot compile CUDA kernel " + src.name +
                             ": moeforge was built without the CUDA toolkit (NVRTC)");
}

#endif

}  // namespace mf
