#include "runtime/thread_pool.hpp"

#include <pthread.h>
#include <sched.h>

#include <exception>

namespace mf {
namespace {

constexpr int kSpinsBeforeWait = 1 << 14;

inline void cpu_relax() { __builtin_ia32_pause(); }

}  // namespace

bool pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

ThreadPool::ThreadPool(std::vector<int> cpus) : cpus_(std::move(cpus)) {
    const bool pinned = !cpus_.empty();
    if (!pinned) cpus_.push_back(-1);
    for (int i = 1; i < int(cpus_.size()); ++i) workers_.emplace_back([this, i] { worker_main(i); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    generation_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::dispatch(JobFn fn, void* ctx) {
    job_fn_ = fn;
    job_ctx_ = ctx;
    has_error_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    pending_.store(size() - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    if (std::this_thread::get_id() != pinned_caller_) {
        if (cpus_[0] >= 0) pin_current_thread(cpus_[0]);
        pinned_caller_ = std::this_thread::get_id();
    }
    try {
        fn(ctx, 0);
    } catch (...) {
        bool expected = false;
        if (has_error_.compare_exchange_strong(expected, true)) error_ = std::current_exception();
    }
    for (int spins = 0;; ++spins) {
        const int left = pending_.load(std::memory_order_acquire);
        if (left == 0) break;
        if (spins < kSpinsBeforeWait)
            cpu_relax();
        else
            pending_.wait(left, std::memory_order_acquire);
    }
    if (has_error_.load(std::memory_order_acquire)) std::rethrow_exception(error_);
}

void ThreadPool::worker_main(int index) {
    if (cpus_[index] >= 0) pin_current_thread(cpus_[index]);
    uint64_t seen = 0;
    for (;;) {
        uint64_t gen = generation_.load(std::memory_order_acquire);
        for (int spins = 0; gen == seen; ++spins) {
            if (spins < kSpinsBeforeWait)
                cpu_relax();
            else
                generation_.wait(seen, std::memory_order_acquire);
            gen = generation_.load(std::memory_order_acquire);
        }
        seen = gen;
        if (stop_.load(std::memory_order_acquire)) return;
        try {
            job_fn_(job_ctx_, index);
        } catch (...) {
            bool expected = false;
            if (has_error_.compare_exchange_strong(expected, true)) error_ = std::current_exception();
        }
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_all();
    }
}

}  // namespace mf
