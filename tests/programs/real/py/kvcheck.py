"""Data check for a key-value server: many threads SET distinct keys and
GET every one back.  Speaks the Redis protocol or memcached's text
protocol.  Usage: kvcheck.py redis|memcached PORT THREADS KEYS"""
import socket
import sys
import threading

kind, port, nthreads, nkeys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
errors = []


def recv_until(sock, buf, marker):
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed")
        buf += chunk
    return buf


def redis_cmd(sock, buf, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    buf = recv_until(sock, buf, b"\r\n")
    line, rest = buf.split(b"\r\n", 1)
    if line.startswith(b"$"):
        n = int(line[1:])
        if n < 0:
            return None, rest
        rest = recv_until(sock, rest, b"\r\n") if len(rest) < n + 2 else rest
        while len(rest) < n + 2:
            rest += sock.recv(65536)
        return rest[:n], rest[n + 2:]
    return line, rest


def mc_cmd(sock, buf, line, end):
    sock.sendall(line)
    buf = recv_until(sock, buf, end)
    reply, rest = buf.split(end, 1)
    return reply + end, rest


def worker(t):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        buf = b""
        keys = range(t, nkeys, nthreads)
        for k in keys:
            value = ("v%d-" % k) * (1 + k % 7)
            if kind == "redis":
                r, buf = redis_cmd(s, buf, "SET", "k%d" % k, value)
                if r != b"+OK":
                    errors.append(("set", k, r))
            else:
                r, buf = mc_cmd(s, buf, b"set k%d 0 0 %d\r\n%s\r\n" % (k, len(value), value.encode()), b"\r\n")
                if r != b"STORED\r\n":
                    errors.append(("set", k, r))
        for k in keys:
            value = (("v%d-" % k) * (1 + k % 7)).encode()
            if kind == "redis":
                r, buf = redis_cmd(s, buf, "GET", "k%d" % k)
                if r != value:
                    errors.append(("get", k, r))
            else:
                r, buf = mc_cmd(s, buf, b"get k%d\r\n" % k, b"END\r\n")
                want = b"VALUE k%d 0 %d\r\n%s\r\nEND\r\n" % (k, len(value), value)
                if r != want:
                    errors.append(("get", k, r))
        s.close()
    except Exception as e:  # noqa: BLE001 - any failure is a data-check failure
        errors.append(("exception", t, repr(e)))


threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("%s: %d keys set and read back by %d threads, errors %d" % (kind, nkeys, nthreads, len(errors)))
for e in errors[:5]:
    print("error:", e)
sys.exit(1 if errors else 0)
