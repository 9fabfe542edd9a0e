"""Load tools of the datapath benchmark (bench/datapath.ts), run inside the bench's own network
namespaces with nsenter. Python 3 standard library only; every loop is bounded by time and count.

  probe.py server HOST TCP_PORT UDP_PORT OTHER_PORT
                                           accept-and-close TCP servers on TCP_PORT and OTHER_PORT (a
                                           port no policy allows: the sanity check); a UDP socket that
                                           is bound and never read (the kernel counts what reaches it)
  probe.py connect HOST PORT SECONDS       TCP connect loop, one connection at a time, closed with
                                           RST (SO_LINGER 0: no TIME_WAIT, no port exhaustion)
  probe.py udp HOST PORT SECONDS SIZE      sends SIZE-byte datagrams on one socket as fast as it can
  probe.py closed HOST PORT                one connect with a short timeout: did it get through?

Each client prints one JSON line: counts, wall seconds, its own CPU time (user, system).
"""
import json
import resource
import socket
import struct
import sys
import threading
import time

MAX_SAMPLES = 5_000_000


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def pct(sorted_values, p):
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[min(len(sorted_values), int(rank)) - 1]


def listen(host, port):
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((host, port))
    tcp.listen(4096)
    return tcp


def accept_forever(tcp):
    while True:
        try:
            conn, _ = tcp.accept()
            conn.close()
        except OSError:
            pass


def server(host, tcp_port, udp_port, other_port):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((host, udp_port))
    main_listener = listen(host, tcp_port)
    other = listen(host, other_port)
    threading.Thread(target=accept_forever, args=(other,), daemon=True).start()
    print("ready", flush=True)
    accept_forever(main_listener)


def connect_loop(host, port, seconds):
    linger = struct.pack("ii", 1, 0)
    latencies = []
    errors = 0
    u0, s0 = cpu()
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline and len(latencies) < MAX_SAMPLES:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        s.settimeout(2.0)
        t0 = time.perf_counter_ns()
        try:
            s.connect((host, port))
            latencies.append(time.perf_counter_ns() - t0)
        except OSError:
            errors += 1
        s.close()
    elapsed = time.perf_counter() - start
    u1, s1 = cpu()
    latencies.sort()
    us = lambda v: None if v is None else v / 1000.0
    print(json.dumps({
        "connections": len(latencies), "errors": errors, "seconds": elapsed,
        "p50_us": us(pct(latencies, 50)), "p99_us": us(pct(latencies, 99)), "p999_us": us(pct(latencies, 99.9)),
        "user": u1 - u0, "system": s1 - s0,
    }))


def udp_flood(host, port, seconds, size):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((host, port))
    payload = b"n" * size
    sent = 0
    errors = 0
    u0, s0 = cpu()
    start = time.perf_counter()
    deadline = start + seconds
    send = s.send
    while sent + errors < 100_000_000:
        for _ in range(512):
            try:
                send(payload)
                sent += 1
            except OSError:
                errors += 1
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - start
    u1, s1 = cpu()
    print(json.dumps({"sent": sent, "errors": errors, "seconds": elapsed, "user": u1 - u0, "system": s1 - s0}))


def closed(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(0.3)
    try:
        s.connect((host, port))
        ok = True
    except OSError:
        ok = False
    s.close()
    print(json.dumps({"connected": ok}))


def main(argv):
    mode = argv[1]
    if mode == "server":
        server(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
    elif mode == "connect":
        connect_loop(argv[2], int(argv[3]), float(argv[4]))
    elif mode == "udp":
        udp_flood(argv[2], int(argv[3]), float(argv[4]), int(argv[5]))
    elif mode == "closed":
        closed(argv[2], int(argv[3]))
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
