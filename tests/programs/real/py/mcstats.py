"""Print the memcached server counters that a deterministic client load
fixes exactly, one `name value` a line, so that a native and a fiberized
server can be compared with cmp.  Counters that depend on timing (uptime,
rusage, connection totals, bytes) are left out.
Usage: mcstats.py PORT"""
import socket
import sys

EXACT = ("cmd_get", "cmd_set", "get_hits", "get_misses", "curr_items", "total_items",
         "delete_hits", "delete_misses", "evictions", "threads")

sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
sock.sendall(b"stats\r\n")
reply = b""
while not reply.endswith(b"END\r\n"):
    chunk = sock.recv(65536)
    if not chunk:
        sys.exit("server closed the connection before END")
    reply += chunk
sock.close()

stats = {}
for line in reply.decode().splitlines():
    parts = line.split()
    if len(parts) == 3 and parts[0] == "STAT":
        stats[parts[1]] = parts[2]
for name in EXACT:
    print(name, stats.get(name, "missing"))
