#include "pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SK_PAUSE() _mm_pause()
#else
#define SK_PAUSE() std::this_thread::yield()
#endif

namespace sk {
namespace {

using Clock = std::chrono::steady_clock;
// Workers spin this long for the next job before sleeping: kernels arrive back to back within a training
// step (microseconds of JS in between), while an idle process should not burn a core.
constexpr auto kSpin = std::chrono::microseconds(200);

thread_local bool in_job = false;

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
      stop_flag_.store(true);
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void run(int n, int threads, const std::function<void(int)>& fn) {
    std::unique_lock<std::mutex> guard(run_mu_, std::try_to_lock);
    if (in_job || !guard.owns_lock() || threads <= 1 || n <= 1) {
      for (int i = 0; i < n; i++) fn(i);
      return;
    }
    while (static_cast<int>(threads_.size()) < threads - 1) threads_.emplace_back([this] { worker(); });
    // Publish the job: fields first, then the generation, then open it (workers check open, then gen).
    fn_ = &fn;
    total_ = n;
    next_.store(0);
    done_.store(0);
    slots_.store(threads - 1);
    gen_.fetch_add(1);
    open_.store(true);
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> l(mu_);
      cv_.notify_all();
    }
    in_job = true;
    int mine = 0;
    for (;;) {
      const int i = next_.fetch_add(1);
      if (i >= n) break;
      fn(i);
      mine++;
    }
    in_job = false;
    // Wait only for chunks other threads have claimed.
    spin_until([&] { return done_.load(std::memory_order_acquire) + mine >= n; });
    // Close the job and wait until no worker is still looking at its fields.
    open_.store(false);
    spin_until([&] { return inside_.load() == 0; });
  }

 private:
  template <class P>
  static void spin_until(P ready) {
    int k = 0;
    while (!ready()) {
      if (++k < 4096)
        SK_PAUSE();
      else
        std::this_thread::yield();
    }
  }

  void worker() {
    std::uint64_t seen = 0;
    for (;;) {
      const auto t0 = Clock::now();
      int k = 0;
      while (gen_.load() == seen && !stop_flag_.load()) {
        SK_PAUSE();
        if ((++k & 63) == 0 && Clock::now() - t0 > kSpin) {
          sleepers_.fetch_add(1);
          std::unique_lock<std::mutex> l(mu_);
          cv_.wait(l, [&] { return stop_ || gen_.load() != seen; });
          sleepers_.fetch_sub(1);
          if (stop_) return;
        }
      }
      if (stop_flag_.load()) return;
      seen = gen_.load();
      inside_.fetch_add(1);
      if (open_.load() && gen_.load() == seen && slots_.fetch_sub(1) > 0) {
        in_job = true;
        const std::function<void(int)>& fn = *fn_;
        const int n = total_;
        for (;;) {
          const int i = next_.fetch_add(1);
          if (i >= n) break;
          fn(i);
          done_.fetch_add(1, std::memory_order_release);
        }
        in_job = false;
      }
      inside_.fetch_sub(1);
    }
  }

  std::vector<std::thread> threads_;
  std::mutex run_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::atomic<bool> stop_flag_{false};
  std::atomic<std::uint64_t> gen_{0};
  std::atomic<bool> open_{false};
  std::atomic<int> sleepers_{0};
  std::atomic<int> inside_{0};
  std::atomic<int> next_{0};
  std::atomic<int> done_{0};
  std::atomic<int> slots_{0};
  const std::function<void(int)>* fn_ = nullptr;
  int total_ = 0;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

void parallel_for(int n, int threads, const std::function<void(int)>& fn) { pool().run(n, threads, fn); }

}  // namespace sk
