// A C++ program the way C++ programs use threads: std::async futures, a
// std::thread pool draining a work queue under std::mutex and
// std::condition_variable, std::promise hand-offs, std::this_thread
// sleeps with timeouts, and exceptions carried across threads.  The output
// is deterministic so native and fiberized runs compare.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

class WorkQueue
{
  public:
    explicit WorkQueue(int workers)
    {
        for (int i = 0; i < workers; i++)
            threads_.emplace_back([this] { run(); });
    }
    ~WorkQueue()
    {
        {
            std::lock_guard<std::mutex> lock(mu_);
            done_ = true;
        }
        cv_.notify_all();
        for (auto &t : threads_)
            t.join();
    }
    void push(std::function<void()> job)
    {
        {
            std::lock_guard<std::mutex> lock(mu_);
            jobs_.push_back(std::move(job));
        }
        cv_.notify_one();
    }

  private:
    void run()
    {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock<std::mutex> lock(mu_);
                cv_.wait(lock, [this] { return done_ || !jobs_.empty(); });
                if (jobs_.empty())
                    return;
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            job();
        }
    }
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool done_ = false;
    std::vector<std::thread> threads_;
};

static long slow_square(long x)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(x % 7));
    return x * x;
}

int main()
{
    // std::async with the async policy: a thread per call
    std::vector<std::future<long>> futures;
    for (long i = 0; i < 200; i++)
        futures.push_back(std::async(std::launch::async, slow_square, i));
    long sum = 0;
    for (auto &f : futures)
        sum += f.get();
    std::printf("async: sum of squares %ld\n", sum);

    // a pool of std::threads on a condition-variable queue
    std::atomic<long> total{0};
    {
        WorkQueue pool(8);
        for (long i = 1; i <= 5000; i++)
            pool.push([i, &total] { total += i; });
    }
    std::printf("pool: total %ld\n", total.load());

    // promise/future hand-off and a wait_for that times out first
    std::promise<int> promise;
    std::future<int> answer = promise.get_future();
    bool timed_out = answer.wait_for(50ms) == std::future_status::timeout;
    std::thread setter([&promise] {
        std::this_thread::sleep_for(20ms);
        promise.set_value(42);
    });
    std::printf("promise: timed out first %d, then %d\n", timed_out, answer.get());
    setter.join();

    // condition_variable::wait_for never returns early on timeout
    std::mutex mu;
    std::condition_variable cv;
    std::unique_lock<std::mutex> lock(mu);
    auto t0 = std::chrono::steady_clock::now();
    bool woke = cv.wait_for(lock, 100ms, [] { return false; });
    bool not_early = std::chrono::steady_clock::now() - t0 >= 100ms;
    lock.unlock();
    std::printf("cv wait_for: predicate %d, not early %d\n", woke, not_early);

    // an exception thrown in a thread arrives through its future
    auto failing =
        std::async(std::launch::async, []() -> int { throw std::runtime_error("boom"); });
    try {
        failing.get();
        std::printf("exception: lost\n");
    } catch (const std::runtime_error &e) {
        std::printf("exception: %s\n", e.what());
    }
    return 0;
}
