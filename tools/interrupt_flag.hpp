// Ctrl-C stops the current reply, not the program: while installed, SIGINT only sets a flag the generation loop
// polls between tokens (and interrupts a blocking read of stdin, which the REPL then retries).
#pragma once
#include <atomic>

namespace mf {

class InterruptFlag {
public:
    InterruptFlag();   // installs the SIGINT handler (without SA_RESTART)
    ~InterruptFlag();  // restores the previous handler
    InterruptFlag(const InterruptFlag&) = delete;
    InterruptFlag& operator=(const InterruptFlag&) = delete;

    const std::atomic<bool>* flag() const;
    bool raised() const;
    void clear();
};

}  // namespace mf
