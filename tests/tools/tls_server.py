#!/usr/bin/python3
"""A small threaded TLS server for the tests, bound to 127.0.0.1 only.

It records every byte of application data clients send after the handshake
(--record), so that a test can assert that an impostor received nothing, and
with --reply answers each connection: a minimal HTTP/1.1 200 "ok\\n" to an HTTP
request, "ok\\n" to anything else. A client that dies mid-handshake is logged
and forgotten. SIGTERM stops it with exit status 0.
"""
import argparse
import os
import re
import signal
import socketserver
import ssl
import sys
import threading

HTTP_REQUEST = re.compile(rb"^[A-Z]{3,7} ")
HTTP_REPLY = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
              b"Connection: close\r\n\r\nok\n")
VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def log(msg):
    print(f"tls_server[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cert", required=True, help="PEM chain the server presents (leaf first)")
    p.add_argument("--key", required=True, help="PEM private key of the leaf")
    p.add_argument("--port", type=int, default=0, help="0: an ephemeral port")
    p.add_argument("--port-file", help="write the bound port here once listening")
    p.add_argument("--record", help="append the application data received to this file")
    p.add_argument("--reply", action="store_true", help='answer "ok\\n" (HTTP or plain)')
    p.add_argument("--tls", choices=["1.2", "1.3", "any"], default="any")
    p.add_argument("--client-ca", help="require client certificates issued by this CA")
    p.add_argument("--timeout", type=float, default=10.0, help="per-connection I/O timeout")
    return p.parse_args()


def make_context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.tls != "any":
        ctx.minimum_version = ctx.maximum_version = VERSIONS[args.tls]
    # remember the name the client asked for, for the log
    ctx.sni_callback = lambda sock, name, _ctx: setattr(sock, "sni", name)
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=args.client_ca)
    return ctx


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        peer = "%s:%d" % self.client_address
        self.request.settimeout(srv.args.timeout)
        try:
            tls = srv.ctx.wrap_socket(self.request, server_side=True)
        except (OSError, ssl.SSLError) as e:
            log(f"{peer}: handshake failed: {e}")
            return
        log(f"{peer}: {tls.version()} {tls.cipher()[0]} sni={getattr(tls, 'sni', None)}")
        buf = b""
        replied = False
        try:
            while True:
                data = tls.recv(65536)
                if not data:
                    break
                srv.record(data)
                buf += data
                if srv.args.reply and not replied:
                    if HTTP_REQUEST.match(buf):
                        if b"\r\n\r\n" in buf:
                            tls.sendall(HTTP_REPLY)
                            break
                    else:
                        tls.sendall(b"ok\n")
                        replied = True
            tls.close()
        except (OSError, ssl.SSLError) as e:
            log(f"{peer}: {e}")
        finally:
            log(f"{peer}: closed after {len(buf)} bytes")


class RecordingServer(socketserver.ThreadingTCPServer):
    """A thread per connection on 127.0.0.1; record() appends to --record."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, args, handler):
        self.args = args
        self.lock = threading.Lock()
        if args.record:
            open(args.record, "ab").close()
        super().__init__(("127.0.0.1", args.port), handler)

    def record(self, data):
        if not self.args.record or not data:
            return
        with self.lock, open(self.args.record, "ab") as f:
            f.write(data)


class Server(RecordingServer):
    def __init__(self, args):
        self.ctx = make_context(args)
        super().__init__(args, Handler)


def serve(server, say):
    """Write --port-file once listening, serve until SIGTERM (exit status 0)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port = server.server_address[1]
    if server.args.port_file:
        tmp = f"{server.args.port_file}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, server.args.port_file)
    say(f"listening on 127.0.0.1:{port}")
    try:
        server.serve_forever()
    finally:
        server.server_close()
        say("stopped")


def main():
    serve(Server(parse_args()), log)


if __name__ == "__main__":
    main()
