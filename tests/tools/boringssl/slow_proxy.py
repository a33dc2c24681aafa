#!/usr/bin/python3
"""A TCP proxy for the tests, bound to 127.0.0.1 only, that stalls the server's first
flight in the middle: it forwards the server's TLS records one by one and holds
back the record after the first AFTER encrypted ones (TLS 1.3: EncryptedExtensions
and Certificate pass, CertificateVerify waits) for DELAY seconds, once per
connection. A client then has the server's certificates but cannot finish verifying
them, and an event-loop client goes on with its other connections meanwhile.
SIGTERM stops it with exit status 0.
"""
import argparse
import os
import signal
import socket
import struct
import sys
import threading
import time


def log(msg):
    print(f"slow_proxy[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--to", type=int, required=True, help="the server's port on 127.0.0.1")
    p.add_argument("--port-file", required=True, help="write the proxy's port here")
    p.add_argument("--after", type=int, default=2, help="encrypted records let through first")
    p.add_argument("--delay", type=float, default=1.0, help="seconds to hold the next one")
    return p.parse_args()


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            return None
        buf += d
    return buf


def client_to_server(c, s):
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            s.sendall(d)
    except OSError:
        pass
    finally:
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def server_to_client(s, c, args):
    encrypted, held = 0, False
    try:
        while True:
            hdr = read_exact(s, 5)
            if hdr is None:
                break
            body = read_exact(s, struct.unpack("!BHH", hdr)[2])
            if body is None:
                break
            if hdr[0] == 23:
                if encrypted == args.after and not held:
                    held = True
                    time.sleep(args.delay)
                encrypted += 1
            c.sendall(hdr + body)
    except OSError:
        pass
    finally:
        try:
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve(c, args):
    try:
        s = socket.create_connection(("127.0.0.1", args.to))
    except OSError as e:
        log(f"cannot reach 127.0.0.1:{args.to}: {e}")
        c.close()
        return
    t = threading.Thread(target=client_to_server, args=(c, s), daemon=True)
    t.start()
    server_to_client(s, c, args)
    t.join(5)
    s.close()
    c.close()


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(tmp, args.port_file)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c, args), daemon=True).start()


if __name__ == "__main__":
    main()
