#!/usr/bin/env python3
"""Two TLS connections open at once from one process, one to each port (the
second may be an impostor): send a secret on each, print what happened, and
exit 0 if the first exchange completed, whatever happened to the second."""
import socket
import ssl
import sys


def connect(port):
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                         server_hostname="pin.test")


def main():
    good_port, bad_port, secret = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    good = connect(good_port)              # open, handshake done, nothing sent yet
    try:
        bad = connect(bad_port)
        bad.sendall(f"{secret}-second".encode())
        print("second:", bad.recv(100).decode().strip() or "closed")
    except (OSError, ssl.SSLError) as e:
        print("second failed:", type(e).__name__, e)
    good.sendall(f"{secret}-first".encode())
    reply = good.recv(100).decode().strip()
    print("first:", reply)
    sys.exit(0 if reply == "ok" else 1)


if __name__ == "__main__":
    main()
