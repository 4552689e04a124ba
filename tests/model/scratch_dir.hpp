// A fresh directory under the build tree for one test, removed afterwards.
#pragma once
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>

namespace mf::test {

class ScratchDir {
  public:
    explicit ScratchDir(const std::string& tag) {
        static std::atomic<int> counter{0};
        path_ = std::filesystem::path(MOEFORGE_BINARY_DIR) / "test-scratch" /
                (tag + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++));
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

}  // namespace mf::test
