"""CPython threads doing what threaded Python programs do: a pool mapping
over socket round trips and sleeps, a bounded queue between producers and
consumers, subprocesses started from threads, locks and events.  Prints
only deterministic results, so native and fiberized runs compare."""
import concurrent.futures
import hashlib
import queue
import socket
import subprocess
import threading
import time


def echo_server(listener):
    def serve(conn):
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)

    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def round_trip(port, i):
    payload = hashlib.sha256(str(i).encode()).digest() * (1 + i % 50)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    time.sleep(0.001 * (i % 5))
    return hashlib.sha256(got).hexdigest()[:8] if got == payload else "MISMATCH"


def pool_over_sockets():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    port = listener.getsockname()[1]
    threading.Thread(target=echo_server, args=(listener,), daemon=True).start()
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        digests = list(pool.map(lambda i: round_trip(port, i), range(400)))
    listener.close()
    combined = hashlib.sha256("".join(digests).encode()).hexdigest()[:16]
    print("pool: 400 round trips, mismatches:", digests.count("MISMATCH"), "digest:", combined)


def producer_consumer():
    q = queue.Queue(maxsize=16)
    total = 0
    total_lock = threading.Lock()

    def produce(base):
        for k in range(2000):
            q.put(base + k)

    def consume():
        nonlocal total
        while True:
            item = q.get()
            if item is None:
                return
            with total_lock:
                total += item

    consumers = [threading.Thread(target=consume) for _ in range(4)]
    producers = [threading.Thread(target=produce, args=(p * 100000,)) for p in range(4)]
    for t in consumers + producers:
        t.start()
    for t in producers:
        t.join()
    for _ in consumers:
        q.put(None)
    for t in consumers:
        t.join()
    print("queue: total", total)


def subprocesses_from_threads():
    def run(i):
        out = subprocess.run(["/bin/sh", "-c", f"echo {i}; exit {i % 3}"],
                             capture_output=True, text=True)
        return out.stdout.strip(), out.returncode

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(40)))
    print("subprocess:", sum(int(o) for o, _ in results), "exit codes", sorted(set(r for _, r in results)))


def events_and_timeouts():
    ev = threading.Event()
    t0 = time.monotonic()
    early = ev.wait(0.2)
    waited = time.monotonic() - t0
    threading.Timer(0.05, ev.set).start()
    late = ev.wait(5)
    cond = threading.Condition()
    hits = []

    def waiter(n):
        with cond:
            cond.wait_for(lambda: len(hits) >= 0 and ev.is_set())
            hits.append(n)

    ts = [threading.Thread(target=waiter, args=(n,)) for n in range(10)]
    for t in ts:
        t.start()
    with cond:
        cond.notify_all()
    for t in ts:
        t.join()
    print("event: timeout", early, "not early", waited >= 0.19, "set", late, "waiters", len(hits))


pool_over_sockets()
producer_consumer()
subprocesses_from_threads()
events_and_timeouts()
