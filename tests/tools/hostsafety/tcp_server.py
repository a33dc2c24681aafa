#!/usr/bin/env python3
"""tcp_server.py PORT_FILE: accept on 127.0.0.1 (an ephemeral port, written to
PORT_FILE), send one byte to each connection and close it; until killed."""
import os
import socket
import sys
import threading

s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(512)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])


def serve(c):
    try:
        c.sendall(b"x")
    except OSError:
        pass
    c.close()


while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
