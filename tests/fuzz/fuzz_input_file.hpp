// The readers open files (they mmap), so a fuzzer writes its input to a per-process file in /dev/shm (or
// /tmp).
#pragma once
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace mf::fuzz {

inline std::filesystem::path input_dir() {
    static const std::filesystem::path dir = [] {
        const std::filesystem::path base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
        auto d = base / ("moeforge-fuzz-" + std::to_string(getpid()));
        std::filesystem::create_directories(d);
        return d;
    }();
    return dir;
}

inline std::filesystem::path write_input(const std::string& name, const uint8_t* data, size_t size) {
    const auto p = input_dir() / name;
    std::ofstream(p, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(data), std::streamsize(size));
    return p;
}

}  // namespace mf::fuzz
