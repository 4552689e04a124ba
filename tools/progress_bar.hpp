// A one-line progress bar on stderr for long work (loading, repacking, tuning). On a terminal it redraws in place;
// otherwise it prints a line per stage, so logs stay readable.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace mf {

class ProgressBar {
public:
    explicit ProgressBar(std::string title, bool enabled = true);
    ~ProgressBar();
    void update(uint64_t done, uint64_t total, std::string_view stage = {});
    void finish(std::string_view summary = {});

private:
    std::string title_;
    std::string last_stage_;
    bool enabled_;
    bool tty_;
    bool finished_ = false;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace mf
