#!/usr/bin/env python3
# The SCTP half of agent.mjs (node has no SCTP): one-to-one style SCTP sockets (SOCK_STREAM +
# IPPROTO_SCTP) that greet with the pod's name, and probes driven by JSON lines on stdin, answered
# on stdout with the same shapes as agent.mjs. `python3 sctp-agent.py NAME sctp|tcp PORTS`; the
# `tcp` mode runs the very same code over TCP, so that it is checked on kernels without SCTP.
import json
import selectors
import socket
import sys
import threading

name, mode, port_list = sys.argv[1], sys.argv[2], sys.argv[3]
PROTO = socket.IPPROTO_SCTP if mode == "sctp" else socket.IPPROTO_TCP
out_lock = threading.Lock()


def write(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def serve(ports):
    sel = selectors.DefaultSelector()
    for port in ports:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM, PROTO)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", port))
        s.listen(128)
        sel.register(s, selectors.EVENT_READ)
    def loop():
        while True:
            for key, _ in sel.select():
                try:
                    conn, _addr = key.fileobj.accept()
                    conn.sendall((name + "\n").encode())
                    conn.close()
                except OSError:
                    pass
    threading.Thread(target=loop, daemon=True).start()


def probe(cmd):
    host, port, timeout = cmd["host"], cmd["port"], cmd["timeoutMs"] / 1000.0
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM, PROTO)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        data = b""
        while b"\n" not in data:
            chunk = s.recv(256)
            if not chunk:
                break
            data += chunk
        write({"id": cmd["id"], "result": "open", "reply": data.decode().strip()})
    except socket.timeout:
        write({"id": cmd["id"], "result": "closed"})
    except OSError as error:
        write({"id": cmd["id"], "result": "error", "detail": error.strerror or str(error)})
    finally:
        s.close()


serve([int(p) for p in port_list.split(",") if p])
write({"ready": True})
for line in sys.stdin:
    if line.strip():
        threading.Thread(target=probe, args=(json.loads(line),), daemon=True).start()
