#include "codegen/cuda/cuda_kernel_dump.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "codegen/cuda/cubin_cache.hpp"
#include "codegen/cuda/embedded_headers.hpp"
#include "codegen/cuda/nvrtc_compiler.hpp"

namespace mf {
namespace {

// Headers named in #include "..." lines of `text`, followed transitively through the embedded set.
void collect_includes(std::string_view text, std::set<std::string>& seen, std::vector<std::string>& order) {
    size_t pos = 0;
    while ((pos = text.find("#include \"", pos)) != std::string_view::npos) {
        pos += 10;
        const size_t end = text.find('"', pos);
        if (end == std::string_view::npos) break;
        std::string name(text.substr(pos, end - pos));
        if (seen.insert(name).second) {
            order.push_back(name);
            for (const auto& h : embedded_cuda_headers())
                if (h.name == name) collect_includes(h.text, seen, order);
        }
    }
}

std::string run_capture(const std::string& cmd) {
    std::string out;
    if (FILE* p = popen(cmd.c_str(), "r")) {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
        pclose(p);
    }
    return out;
}

}  // namespace

std::string find_sass_disassembler() {
    std::vector<std::filesystem::path> dirs;
    if (const char* h = std::getenv("CUDA_HOME"); h && *h)
        dirs.emplace_back(std::filesystem::path(h) / "bin");
    dirs.emplace_back("/usr/local/cuda/bin");
    if (const char* path = std::getenv("PATH"))
        for (std::string_view rest = path; !rest.empty();) {
            const size_t c = rest.find(':');
            dirs.emplace_back(std::string(rest.substr(0, c)));
            rest = c == std::string_view::npos ? std::string_view{} : rest.substr(c + 1);
        }
    for (const char* tool : {"cuobjdump", "nvdisasm"})
        for (const auto& d : dirs) {
            const auto p = d / tool;
            if (!d.empty() && access(p.c_str(), X_OK) == 0) return p.string();
        }
    return {};
}

CudaKernelDump dump_cuda_kernel(const CudaKernelSource& src, const CudaArch& arch) {
    CudaKernelDump d;
    d.name = src.name;
    d.arch = arch.sm_name();
    d.source = src.source;
    std::set<std::string> seen;
    collect_includes(src.source, seen, d.includes);
    d.ptx = compile_cuda_ptx(src, arch);
    const CudaBinary bin = compile_cuda_kernel(src, arch, {});
    d.cubin_bytes = bin.cubin.size();

    const std::string tool = find_sass_disassembler();
    if (tool.empty()) {
        d.sass_missing =
            "no cuobjdump or nvdisasm found (looked in $CUDA_HOME/bin, /usr/local/cuda/bin and PATH)";
        return d;
    }
    const auto file = std::filesystem::temp_directory_path() /
                      ("moeforge_" + std::to_string(getpid()) + "_" + cubin_file_stem(src.name) + ".cubin");
    {
        std::ofstream f(file, std::ios::binary);
        f.write(bin.cubin.data(), static_cast<std::streamsize>(bin.cubin.size()));
        if (!f.flush()) {
            d.sass_missing = "cannot write " + file.string() + " for " + tool;
            return d;
        }
    }
    const bool is_cuobjdump = tool.find("cuobjdump") != std::string::npos;
    d.sass_tool = tool + (is_cuobjdump ? " -sass " : " -c ") + file.string();
    d.sass = run_capture("'" + tool + "'" + (is_cuobjdump ? " -sass '" : " -c '") + file.string() + "' 2>&1");
    std::error_code ec;
    std::filesystem::remove(file, ec);
    if (d.sass.empty()) d.sass_missing = tool + " printed nothing for " + src.name;
    return d;
}

}  // namespace mf
