#pragma once
#include <filesystem>

namespace mf {

// $XDG_CACHE_HOME/moeforge, else ~/.cache/moeforge; created on first use. Throws if it cannot be created.
std::filesystem::path cache_dir();

// Writes `text` to `path` through a temporary file and a rename, so readers never see half a file.
void write_file_atomic(const std::filesystem::path& path, const std::string& text);

}  // namespace mf
