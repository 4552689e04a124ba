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
std::filesystem::path cubin_cache_path(const std::filesystem::path& dir, const std::string& name,
                                       const std::string& key);
// Empty when absent or unreadable (a broken entry is recompiled, not an error).
std::optional<std::string> read_cached_cubin(const std::filesystem::path& file);
// Creates the directory; throws std::runtime_error naming the path when it cannot write.
void write_cached_cubin(const std::filesystem::path& file, const std::string& cubin);

}  // namespace mf
