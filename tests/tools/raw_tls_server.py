#!/usr/bin/python3
"""A hostile TLS 1.2 server for the tests, bound to 127.0.0.1 only: it presents
arbitrary bytes as the certificates of its Certificate message.

Real TLS servers only send certificates their library has parsed and
re-encoded; this one sends each --der file's bytes as they are, one entry each
(garbage, truncated DER, BER, ...), framed as TLS 1.2 says:

    ServerHello (TLS 1.2, a cipher suite the client offered, no session id)
    Certificate  0b LLLLLL  llllll(list)  cccccc(entry) <bytes> ...

in plaintext handshake records of at most 16 KiB. A TLS 1.2 client judges the
server's chain right after that message, before it reads another one, so the
handshake goes no further: the server then reads what the client sends (an
alert, or nothing when the client was killed) until the client closes, and
appends it to --record, and closes. Same command-line contract as
tls_server.py (--port, --port-file, --record), whose plumbing it shares;
SIGTERM stops it with exit 0.
"""
import argparse
import os
import socketserver
import struct
import sys

from tls_server import RecordingServer, serve

# ECDHE with AES-GCM, RSA and ECDSA: OpenSSL 3's default list offers them all
CIPHERS = [0xC02F, 0xC02B, 0xC030, 0xC02C, 0x009E]
EXT_EMS, EXT_POINT_FORMATS, EXT_RENEGOTIATION = 0x0017, 0x000B, 0xFF01


def log(msg):
    print(f"raw_tls_server[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--der", action="append", default=[],
                   help="a file whose bytes are one certificate entry (repeat, leaf first; "
                        "none: an empty list)")
    p.add_argument("--port", type=int, default=0, help="0: an ephemeral port")
    p.add_argument("--port-file", help="write the bound port here once listening")
    p.add_argument("--record", help="append what clients send after the server's flight here")
    p.add_argument("--timeout", type=float, default=10.0, help="per-connection I/O timeout")
    return p.parse_args()


def u24(n):
    return struct.pack(">I", n)[1:]


def handshake(msg_type, body):
    return bytes([msg_type]) + u24(len(body)) + body


def records(content_type, data):
    out = b""
    for i in range(0, len(data), 16384):
        chunk = data[i:i + 16384]
        out += struct.pack(">BHH", content_type, 0x0303, len(chunk)) + chunk
    return out


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        data = sock.recv(n - len(buf))
        if not data:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += data
    return buf


def read_client_hello(sock):
    """The ClientHello's cipher suites and extension types."""
    msg = b""
    while len(msg) < 4 or len(msg) < 4 + int.from_bytes(msg[1:4], "big"):
        ctype, _, length = struct.unpack(">BHH", recv_exact(sock, 5))
        if ctype != 22:
            raise ValueError(f"record type {ctype} before the ClientHello")
        msg += recv_exact(sock, length)
    if msg[0] != 1:
        raise ValueError(f"handshake type {msg[0]}, not a ClientHello")
    body = msg[4:4 + int.from_bytes(msg[1:4], "big")]
    off = 2 + 32
    off += 1 + body[off]                                   # session id
    n = int.from_bytes(body[off:off + 2], "big")
    suites = {int.from_bytes(body[i:i + 2], "big") for i in range(off + 2, off + 2 + n, 2)}
    off += 2 + n
    off += 1 + body[off]                                   # compression methods
    exts = set()
    if off + 2 <= len(body):
        end = off + 2 + int.from_bytes(body[off:off + 2], "big")
        off += 2
        while off + 4 <= end:
            etype, elen = struct.unpack(">HH", body[off:off + 4])
            exts.add(etype)
            off += 4 + elen
    return suites, exts


def server_flight(suites, exts, entries):
    suite = next((c for c in CIPHERS if c in suites), None)
    if suite is None:
        raise ValueError("the client offers none of our cipher suites")
    ext = struct.pack(">HHB", EXT_RENEGOTIATION, 1, 0)    # OpenSSL 3 insists on it
    if EXT_EMS in exts:
        ext += struct.pack(">HH", EXT_EMS, 0)
    if EXT_POINT_FORMATS in exts:
        ext += struct.pack(">HHBB", EXT_POINT_FORMATS, 2, 1, 0)
    # no session id: an echoed one would announce a resumption
    hello = struct.pack(">H", 0x0303) + os.urandom(32) + b"\x00" + struct.pack(">H", suite) + \
        b"\x00" + struct.pack(">H", len(ext)) + ext
    cert_list = b"".join(u24(len(e)) + e for e in entries)
    return records(22, handshake(2, hello) + handshake(11, u24(len(cert_list)) + cert_list))


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        peer = "%s:%d" % self.client_address
        sock = self.request
        sock.settimeout(srv.args.timeout)
        got = b""
        try:
            suites, exts = read_client_hello(sock)
            sock.sendall(server_flight(suites, exts, srv.entries))
            log(f"{peer}: sent {len(srv.entries)} entries "
                f"({', '.join(str(len(e)) for e in srv.entries)} bytes)")
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                got += data
        except (OSError, EOFError, ValueError) as e:
            log(f"{peer}: {e}")
        finally:
            srv.record(got)
            kinds = []
            off = 0
            while off + 5 <= len(got):
                kinds.append(got[off])
                off += 5 + int.from_bytes(got[off + 3:off + 5], "big")
            log(f"{peer}: closed; received {len(got)} bytes after the flight, record types {kinds}")


class Server(RecordingServer):
    def __init__(self, args):
        self.entries = []
        for path in args.der:
            with open(path, "rb") as f:
                self.entries.append(f.read())
        super().__init__(args, Handler)


def main():
    serve(Server(parse_args()), log)


if __name__ == "__main__":
    main()
