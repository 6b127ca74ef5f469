#!/usr/bin/env python3
"""idle_holder.py PORT N: open N keep-alive connections to the HTTP server
at 127.0.0.1:PORT, send one request on each and read its whole answer, so
that every connection's server thread is back waiting for a next request
that never comes; print "holding N" and keep them open until stdin closes.

make bench's idle part (scripts/bench.sh) runs it beside wrk: what a
thread-per-connection server pays for connections that do nothing.
"""
import socket
import sys

REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def read_answer(sock):
    """Read one response: headers, then Content-Length bytes of body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("server closed before answering")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("server closed inside an answer")
        body += chunk


def main():
    port, count = int(sys.argv[1]), int(sys.argv[2])
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(REQUEST)
        read_answer(sock)
        held.append(sock)
    print(f"holding {len(held)}", flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
