// On-disk CUBIN cache: <dir>/<kernel name>-<128-bit key>.cubin, keyed by everything that changes the binary
// (stub source, every embedded header, compile options, arch, NVRTC version). Written through a temporary
// file and a rename, so a concurrent reader sees either nothing or the whole file. The directory is the
// caller's.
#pragma once
#include <filesystem>
#include <optional>
#include <string>

namespace mf {

std::string cubin_cache_key(const std::string& source, const std::string& options, const std::string& arch,
                            int nvrtc_version);
// The kernel name as it starts a file name: cut to 150 characters, because names carry every config field and with
// a key and a temporary suffix outgrow Linux's 255-byte file names (what keeps cut names apart is the key).
std::string cubin_file_stem(const std::string& kernel_name);
std::filesystem::path cubin_cache_path(const std::filesystem::path& dir, const std::string& name,
                                       const std::string& key);
// Empty when absent or unreadable (a broken entry is recompiled, not an error).
std::optional<std::string> read_cached_cubin(const std::filesystem::path& file);
// Creates the directory; throws std::runtime_error naming the path when it cannot write.
void write_cached_cubin(const std::filesystem::path& file, const std::string& cubin);

}  // namespace mf
