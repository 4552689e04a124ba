// Workers pinned one per given OS cpu. run() hands every worker the same job and returns when all are done;
// dispatch is an atomic generation counter (spin, then futex wait), so the hot path takes no lock.
// The calling thread is worker 0 (pinned to the first cpu when it first dispatches): a caller that only waited
// would be one more runnable thread than there are cores, and every hand-off would pay for it.
#pragma once
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace mf {

class ThreadPool {
public:
    // cpus: OS cpu ids to pin to, one worker each. An empty list means one unpinned worker.
    explicit ThreadPool(std::vector<int> cpus);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return int(cpus_.size()); }
    int cpu_of(int worker) const { return cpus_.at(worker); }

    // Calls job(worker_index) on every worker concurrently; blocks until all have returned.
    // Exceptions thrown by a job are rethrown here (the first one).
    template <class F>
    void run(F&& job) {
        auto trampoline = [](void* ctx, int w) { (*static_cast<F*>(ctx))(w); };
        dispatch(trampoline, &job);
    }

private:
    using JobFn = void (*)(void*, int);
    void dispatch(JobFn fn, void* ctx);
    void worker_main(int index);

    std::vector<int> cpus_;
    std::vector<std::thread> workers_;  // workers 1..size()-1
    std::thread::id pinned_caller_;
    JobFn job_fn_ = nullptr;
    void* job_ctx_ = nullptr;
    std::atomic<uint64_t> generation_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    std::exception_ptr error_;
    std::atomic<bool> has_error_{false};
};

// Pins the calling thread to one OS cpu; false if the OS refused.
bool pin_current_thread(int cpu);

}  // namespace mf
