#include "codegen/cuda/cubin_cache.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "codegen/cuda/embedded_headers.hpp"

namespace mf {
namespace {

struct Fnv {
    uint64_t h;
    void add(std::string_view s) {
        for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
        h = (h ^ 0xff) * 0x100000001b3ull;  // field separator
    }
};

}  // namespace

std::string cubin_cache_key(const std::string& source, const std::string& options, const std::string& arch,
                            int nvrtc_version) {
    Fnv a{0xcbf29ce484222325ull}, b{0x84222325cbf29ce4ull};
    auto add = [&](std::string_view s) {
        a.add(s);
        b.add(s);
        b.add("#");
    };
    add(source);
    for (const EmbeddedHeader& h : embedded_cuda_headers()) {
        add(h.name);
        add(h.text);
    }
    add(options);
    add(arch);
    add(std::to_string(nvrtc_version));
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(a.h),
                  static_cast<unsigned long long>(b.h));
    return buf;
}

std::string cubin_file_stem(const std::string& kernel_name) {
    return kernel_name.substr(0, 150);
}

std::filesystem::path cubin_cache_path(const std::filesystem::path& dir, const std::string& name,
                                       const std::string& key) {
    // the key, a hash of the source (which holds the whole name), keeps cut names apart
    return dir / (cubin_file_stem(name) + "-" + key + ".cubin");
}

std::optional<std::string> read_cached_cubin(const std::filesystem::path& file) {
    std::ifstream f(file, std::ios::binary);
    if (!f) return std::nullopt;
    std::ostringstream ss;
    ss << f.rdbuf();
    std::string bytes = ss.str();
    // An ELF CUBIN starts with \x7fELF; anything else is a damaged entry.
    if (bytes.size() < 4 || bytes.compare(0, 4,
                                          "\x7f"
                                          "ELF") != 0)
        return std::nullopt;
    return bytes;
}

void write_cached_cubin(const std::filesystem::path& file, const std::string& cubin) {
    static std::atomic<unsigned> counter{0};
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    if (ec)
        throw std::runtime_error("cannot create the CUBIN cache directory " + file.parent_path().string() +
                                 ": " + ec.message());
    const std::string tmp = file.string() + ".tmp." + std::to_string(getpid()) + "." +
                            std::to_string(std::hash<std::thread::id>{}(std::this_thread::get_id())) + "." +
                            std::to_string(counter++);
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) throw std::runtime_error("cannot write the CUBIN cache file " + tmp);
        f.write(cubin.data(), static_cast<std::streamsize>(cubin.size()));
        if (!f.flush())
            throw std::runtime_error("cannot write the CUBIN cache file " + tmp + " (disk full?)");
    }
    std::filesystem::rename(tmp, file, ec);
    if (ec) {
        std::filesystem::remove(tmp, ec);
        throw std::runtime_error("cannot rename " + tmp + " to " + file.string());
    }
}

}  // namespace mf
