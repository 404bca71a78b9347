#!/usr/bin/env python3
"""RSS of a uniqd process held by many stalled clients (issue 16, item 4).

Starts BINARY on free loopback ports, opens N connections that each send a
POST /logs head with a large Content-Length and part of the body (chunked
single objects of PART bytes, so the server copies them into its buffer),
then stall; prints the process's RSS before and once all are held, and the
answers the clients got. Usage:

    benches/stalled_clients.py BINARY [N] [PART] [extra uniqd flags...]
"""
import os, socket, subprocess, sys, time

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    part = int(sys.argv[3]) if len(sys.argv) > 3 else 512 * 1024
    extra = sys.argv[4:]
    ingest, metrics = free_port(), free_port()
    proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{ingest}",
                             "--metrics-listen", f"127.0.0.1:{metrics}",
                             "--body-read-timeout", "120s", "--log-level", "warn", *extra])
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", ingest), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        time.sleep(0.5)
        before = rss_kib(proc.pid)
        head = (b"POST /logs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        body = b'{"ip":"198.51.100.1","pad":"' + b"x" * part
        chunk = b"%x\r\n" % len(body) + body + b"\r\n"
        conns = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", ingest))
            s.sendall(head + chunk)
            conns.append(s)
        time.sleep(3)
        held = rss_kib(proc.pid)
        answered = {}
        for s in conns:
            s.setblocking(False)
            try:
                data = s.recv(64)
                status = data[9:12].decode() if data else "closed"
            except BlockingIOError:
                status = "stalled"
            answered[status] = answered.get(status, 0) + 1
        print(f"clients={n} part={part} flags={' '.join(extra) or '-'}: "
              f"RSS {before} KiB idle, {held} KiB with the clients stalled "
              f"(+{held - before} KiB); answers: {answered}")
        for s in conns:
            s.close()
    finally:
        proc.terminate()
        proc.wait()

if __name__ == "__main__":
    main()
