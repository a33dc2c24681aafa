#!/usr/bin/python3
"""What a reset connection looks like to a Python ssl application.

Connects to 127.0.0.1:PORT with SNI pin.test (no verification: the pin is what
is judged), then does a write and a read in the order --first says, and prints
one line per step: "handshake: ok", "write: ok", "read: data b'ok\\n'",
"read: EOF" (b'', what an HTTP/1.0 client takes for an empty reply), or
"STEP: error NAME ..." (NAME: the errno's name, else the exception's type).
Exit status 0 whatever happened to the connection: the process lived.

--bind-port gives the local port (a 4-tuple reproduced in another network
namespace); --wait-for FILE holds a completed handshake until FILE exists;
--parallel N runs N connections at once, one per thread (their lines mixed).
"""
import argparse
import errno
import os
import socket
import ssl
import sys
import threading
import time

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
LOCK = threading.Lock()


def say(line):
    """One whole line, whichever thread says it."""
    with LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", choices=sorted(VERSIONS), help="only this TLS version")
    p.add_argument("--first", choices=["read", "write"], default="write")
    p.add_argument("--secret", default="SECRET")
    p.add_argument("--bind-port", type=int, default=0, help="local port (default: any)")
    p.add_argument("--wait-for", help="after the handshake, wait until this file exists")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--parallel", type=int, default=1, help="connections at once, one per thread")
    return p.parse_args()


def what(e):
    name = errno.errorcode.get(e.errno) if isinstance(e, OSError) and e.errno else None
    if isinstance(e, ssl.SSLError):
        name = None     # its errno is an SSL_ERROR_* code
    return f"error {name or type(e).__name__} {e}"


def connection(args, ctx):
    start = time.monotonic()
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout,
                                   source_address=("127.0.0.1", args.bind_port))
    try:
        tls = ctx.wrap_socket(raw, server_hostname="pin.test")
        say("handshake: ok")
    except (OSError, ssl.SSLError) as e:
        say(f"handshake: {what(e)} after {time.monotonic() - start:.1f} s")
        return
    if args.wait_for:
        while not os.path.exists(args.wait_for):
            time.sleep(0.05)
    steps = ["write", "read"] if args.first == "write" else ["read", "write"]
    for step in steps:
        try:
            if step == "write":
                tls.sendall(args.secret.encode() + b"\n")
                say("write: ok")
            else:
                data = tls.recv(100)
                say(f"read: data {data!r}" if data else "read: EOF")
        except (OSError, ssl.SSLError) as e:
            say(f"{step}: {what(e)}")
    tls.close()


def main():
    args = parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if args.tls:
        ctx.minimum_version = ctx.maximum_version = VERSIONS[args.tls]
    threads = [threading.Thread(target=connection, args=(args, ctx))
               for _ in range(args.parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    sys.exit(main())
