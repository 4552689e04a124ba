#include "tools/cache_dir.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>

namespace mf {

std::filesystem::path cache_dir() {
    std::filesystem::path dir;
    if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
        dir = std::filesystem::path(x) / "moeforge";
    else if (const char* h = std::getenv("HOME"); h && *h)
        dir = std::filesystem::path(h) / ".cache" / "moeforge";
    else
        throw std::runtime_error("cannot find a cache directory: set XDG_CACHE_HOME or HOME");
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw std::runtime_error("cannot create the cache directory " + dir.string() + ": " + ec.message());
    return dir;
}

void write_file_atomic(const std::filesystem::path& path, const std::string& text) {
    const auto tmp = path.string() + ".tmp." + std::to_string(getpid());
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        if (!f) throw std::runtime_error("cannot write " + tmp);
        f << text;
        if (!f.flush()) throw std::runtime_error("cannot write " + tmp + " (disk full?)");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) throw std::runtime_error("cannot rename " + tmp + " to " + path.string() + ": " + ec.message());
}

}  // namespace mf
