#include "tools/progress_bar.hpp"

#include <unistd.h>

#include <cstdio>

#include <fmt/core.h>

namespace mf {

ProgressBar::ProgressBar(std::string title, bool enabled)
    : title_(std::move(title)), enabled_(enabled), tty_(isatty(fileno(stderr))),
      start_(std::chrono::steady_clock::now()), last_draw_() {}

ProgressBar::~ProgressBar() {
    if (!finished_) finish();
}

void ProgressBar::update(uint64_t done, uint64_t total, std::string_view stage) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    if (!tty_) {
        if (stage != last_stage_) fmt::print(stderr, "{}: {} ({:.1f} s)\n", title_, stage, elapsed);
        last_stage_ = stage;
        return;
    }
    if (done < total && now - last_draw_ < std::chrono::milliseconds(50) && stage == last_stage_) return;
    last_draw_ = now;
    last_stage_ = stage;
    constexpr int kWidth = 30;
    const double frac = total ? double(done) / double(total) : 0.0;
    const int filled = int(frac * kWidth);
    std::string bar(size_t(filled), '#');
    bar.resize(kWidth, '.');
    fmt::print(stderr, "\r\033[K{} [{}] {:3.0f}% {} ({:.1f} s)", title_, bar, 100 * frac, stage, elapsed);
    std::fflush(stderr);
}

void ProgressBar::finish(std::string_view summary) {
    if (finished_) return;
    finished_ = true;
    if (!enabled_) return;
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (tty_) fmt::print(stderr, "\r\033[K");
    fmt::print(stderr, "{}: {}{:.1f} s\n", title_, summary.empty() ? "" : fmt::format("{}, ", summary), elapsed);
}

}  // namespace mf
