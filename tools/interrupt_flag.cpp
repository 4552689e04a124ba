#include "tools/interrupt_flag.hpp"

#include <signal.h>

namespace mf {
namespace {

std::atomic<bool> g_interrupted{false};
struct sigaction g_previous;

void on_sigint(int) { g_interrupted.store(true, std::memory_order_relaxed); }

}  // namespace

InterruptFlag::InterruptFlag() {
    struct sigaction sa = {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a read() waiting for input returns EINTR
    sigaction(SIGINT, &sa, &g_previous);
    g_interrupted.store(false);
}

InterruptFlag::~InterruptFlag() { sigaction(SIGINT, &g_previous, nullptr); }

const std::atomic<bool>* InterruptFlag::flag() const { return &g_interrupted; }
bool InterruptFlag::raised() const { return g_interrupted.load(std::memory_order_relaxed); }
void InterruptFlag::clear() { g_interrupted.store(false, std::memory_order_relaxed); }

}  // namespace mf
