#!/usr/bin/env python3
"""Connect twice to 127.0.0.1:PORT as pin.test, the second time offering the
session of the first; print whether it was resumed; send SECRET each time."""
import socket
import ssl
import sys


def once(ctx, port, secret, session=None):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                        server_hostname="pin.test", session=session)
    s.sendall(secret.encode())
    s.recv(100)            # the reply; TLS 1.3 tickets arrive with it
    sess, reused = s.session, s.session_reused
    s.close()
    return sess, reused


def main():
    port, secret = int(sys.argv[1]), sys.argv[2]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sess, _ = once(ctx, port, secret + "-full")
    _, reused = once(ctx, port, secret + "-resumed", sess)
    print("resumed" if reused else "full")


if __name__ == "__main__":
    main()
