// tls_cxx: C++ thread_local objects with constructors and destructors.
// 400 threads (std::thread and pthread_create) sleep and yield while their
// thread_local objects are alive; three in four touch them.  Checks, as glibc
// runs them natively: one constructor per touching thread and one destructor
// per constructor, destructors in reverse construction order, all thread_local
// destructors before the thread's pthread key destructors, a destructor that
// itself sleeps, object addresses private to a thread and stable; threads
// that end with pthread_exit run their destructors too.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <pthread.h>
#include <sched.h>
#include <set>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace
{

constexpr int kThreads = 400;

std::atomic<long> ctors{0}, dtors{0}, touched{0}, key_dtors{0};
std::atomic<long> order_errors{0}, value_errors{0}, addr_errors{0};
std::mutex addrs_mutex;
std::set<const void *> addrs;

thread_local int construct_seq = 0; // trivially destructible: usable to the end
thread_local int destroyed_mask = 0;
thread_local int last_destroyed_seq = 1000;

struct Tracked {
    int seq;
    int bit;
    std::string text; // heap-allocated, so a destructor that did not run leaks
    explicit Tracked(int b) : seq(++construct_seq), bit(b), text(200, char('a' + b))
    {
        ctors++;
    }
    ~Tracked()
    {
        // Reverse order: everything constructed after this one is gone.
        if (seq >= last_destroyed_seq)
            order_errors++;
        last_destroyed_seq = seq;
        if (text != std::string(200, char('a' + bit)))
            value_errors++;
        destroyed_mask |= 1 << bit;
        dtors++;
    }
};

// A destructor that blocks: thread exit must be able to sleep.
struct Sleepy {
    Sleepy()
    {
        ctors++;
    }
    ~Sleepy()
    {
        usleep(300);
        dtors++;
    }
};

// Block-scope thread_locals are built when first reached, each on its own
// (namespace-scope ones of a file are all built on the first touch of any).
Tracked &first()
{
    static thread_local Tracked t(0);
    return t;
}
Tracked &second()
{
    static thread_local Tracked t(1);
    return t;
}
Tracked &third()
{
    static thread_local Tracked t(2);
    return t;
}
Sleepy &sleepy()
{
    static thread_local Sleepy s;
    return s;
}
thread_local int touched_mask = 0;

pthread_key_t key;

void key_destructor(void *value)
{
    key_dtors++;
    long expect_mask = reinterpret_cast<long>(value);
    // thread_local destructors have all run before any key destructor.
    if (destroyed_mask != expect_mask)
        order_errors++;
}

void remember(const void *p)
{
    std::lock_guard<std::mutex> g(addrs_mutex);
    if (!addrs.insert(p).second)
        addr_errors++;
}

void body(int id)
{
    long expect_mask = 0;
    if (id % 4 != 3) {
        touched++;
        // Touch in an order that depends on the thread: destruction must reverse it.
        if (id % 2) {
            touched_mask |= 1 << 0, (void)first();
            touched_mask |= 1 << 2, (void)third();
        } else {
            touched_mask |= 1 << 2, (void)third();
            sched_yield(); // construction may span a switch
            touched_mask |= 1 << 0, (void)first();
            touched_mask |= 1 << 1, (void)second();
        }
        (void)sleepy();
        expect_mask = touched_mask;
        remember(&first());
    }
    pthread_setspecific(key, reinterpret_cast<void *>(expect_mask ? expect_mask : 0x40));
    const void *where = expect_mask ? &first() : nullptr;
    for (int round = 0; round < 6; round++) {
        if (round % 2)
            std::this_thread::sleep_for(std::chrono::microseconds(100 + id % 7 * 50));
        else
            sched_yield();
        if (expect_mask && &first() != where)
            addr_errors++;
        if (expect_mask && first().text != std::string(200, 'a'))
            value_errors++;
    }
    if (id % 4 == 3)
        destroyed_mask = 0x40; // the value its key destructor expects
}

void *pthread_body(void *arg)
{
    int id = static_cast<int>(reinterpret_cast<long>(arg));
    body(id);
    if (id % 8 == 0)
        pthread_exit(nullptr); // unwinds this frame; destructors still run at exit
    return nullptr;
}

} // namespace

int main()
{
    alarm(60);
    pthread_key_create(&key, key_destructor);
    std::vector<std::thread> threads;
    std::vector<pthread_t> pthreads;
    for (int i = 0; i < kThreads; i++) {
        if (i % 2) {
            threads.emplace_back(body, i);
        } else {
            pthread_t t;
            if (pthread_create(&t, nullptr, pthread_body, reinterpret_cast<void *>(long(i))) != 0)
                return 1;
            pthreads.push_back(t);
        }
    }
    for (auto &t : threads)
        t.join();
    for (auto t : pthreads)
        pthread_join(t, nullptr);
    // Each touching thread builds `sleepy` and first, second, third, except
    // odd ids, which skip `second`.
    long expect = 0;
    for (int i = 0; i < kThreads; i++)
        if (i % 4 != 3)
            expect += i % 2 ? 3 : 4;
    std::printf("threads %d, touched %ld, constructors %ld (expected %ld), destructors %ld\n",
                kThreads, touched.load(), ctors.load(), expect, dtors.load());
    std::printf("key destructors %ld, order errors %ld, value errors %ld, address errors %ld\n",
                key_dtors.load(), order_errors.load(), value_errors.load(), addr_errors.load());
    bool ok = ctors == expect && dtors == expect && key_dtors == kThreads && !order_errors &&
              !value_errors && !addr_errors;
    return ok ? 0 : 1;
}
