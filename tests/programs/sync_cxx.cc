// C++17 synchronization as libstdc++ does it (pthread mutexes, condition
// variables -- wait_for uses pthread_cond_clockwait -- and pthread rwlocks
// for std::shared_mutex): exact totals and time-outs that are never early.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

using namespace std::chrono;

static void counter(int threads, long iterations)
{
    std::mutex m;
    long total = 0;
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; i++)
        ts.emplace_back([&] {
            for (long k = 0; k < iterations; k++) {
                std::lock_guard<std::mutex> g(m);
                total++;
            }
        });
    for (auto &t : ts)
        t.join();
    std::printf("std::mutex: %d threads x %ld = %ld\n", threads, iterations, total);
}

static void recursive(int threads, long iterations)
{
    std::recursive_mutex m;
    long total = 0;
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; i++)
        ts.emplace_back([&] {
            for (long k = 0; k < iterations; k++) {
                std::lock_guard<std::recursive_mutex> outer(m);
                std::lock_guard<std::recursive_mutex> inner(m);
                total++;
            }
        });
    for (auto &t : ts)
        t.join();
    std::printf("std::recursive_mutex: %d threads x %ld = %ld\n", threads, iterations, total);
}

static void queue(int producers, long items)
{
    std::mutex m;
    std::condition_variable not_empty, not_full;
    std::deque<long> q;
    long sum = 0;
    int finished = 0;
    std::thread consumer([&] {
        std::unique_lock<std::mutex> l(m);
        for (;;) {
            not_empty.wait(l, [&] { return !q.empty() || finished == producers; });
            if (q.empty())
                break;
            sum += q.front();
            q.pop_front();
            not_full.notify_one();
        }
    });
    std::vector<std::thread> ps;
    for (int p = 0; p < producers; p++)
        ps.emplace_back([&, p] {
            for (long i = 1; i <= items; i++) {
                std::unique_lock<std::mutex> l(m);
                not_full.wait(l, [&] { return q.size() < 16; });
                q.push_back(p * 1000 + i);
                not_empty.notify_one();
            }
            std::lock_guard<std::mutex> g(m);
            finished++;
            not_empty.notify_all();
        });
    for (auto &t : ps)
        t.join();
    consumer.join();
    std::printf("condition_variable queue: %d producers x %ld, sum %ld\n", producers, items, sum);
}

template <class Clock> static void timeouts(const char *what)
{
    std::mutex m;
    std::condition_variable cv;
    std::unique_lock<std::mutex> l(m);
    for (int i = 0; i < 3; i++) {
        auto want = milliseconds(20 + 30 * i);
        auto start = Clock::now();
        auto deadline = start + want;
        bool timed_out = cv.wait_until(l, deadline) == std::cv_status::timeout;
        auto late = Clock::now() - deadline;
        bool held = !m.try_lock(); // still ours after the time-out
        // a wake-up before the deadline is a (legal) spurious one: not counted
        std::printf("%s %s wait_until %lld ms\n",
                    !timed_out || (late >= nanoseconds(0) && late < seconds(2) && held) ? "ok"
                                                                                        : "FAIL",
                    what, (long long)want.count());
    }
}

static void timed_mutex()
{
    std::timed_mutex tm;
    tm.lock();
    std::thread t([&] {
        auto start = steady_clock::now();
        bool got = tm.try_lock_for(milliseconds(50));
        auto took = steady_clock::now() - start;
        std::printf("%s timed_mutex try_lock_for times out, not early\n",
                    !got && took >= milliseconds(50) && took < seconds(3) ? "ok" : "FAIL");
    });
    t.join();
    tm.unlock();
}

static void shared(int readers, int writers, long iterations)
{
    std::shared_mutex sm;
    long value = 0, reads = 0;
    std::atomic<long> read_sum{0};
    std::atomic<bool> torn{false};
    long a = 0, b = 0; // written together under the exclusive lock
    std::vector<std::thread> ts;
    for (int w = 0; w < writers; w++)
        ts.emplace_back([&] {
            for (long i = 0; i < iterations; i++) {
                std::unique_lock<std::shared_mutex> l(sm);
                value++;
                a++;
                b++;
            }
        });
    for (int r = 0; r < readers; r++)
        ts.emplace_back([&] {
            long local = 0;
            for (long i = 0; i < iterations; i++) {
                std::shared_lock<std::shared_mutex> l(sm);
                if (a != b)
                    torn = true;
                local++;
            }
            read_sum += local;
        });
    for (auto &t : ts)
        t.join();
    reads = read_sum;
    std::printf("shared_mutex: %d writers x %ld = %ld, %ld reads, %s\n", writers, iterations, value,
                reads, torn ? "FAIL torn read" : "no torn reads");
}

int main()
{
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    counter(16, 50000);
    recursive(8, 20000);
    queue(4, 20000);
    timeouts<steady_clock>("steady_clock");
    timeouts<system_clock>("system_clock");
    timed_mutex();
    shared(8, 4, 20000);
    return 0;
}
