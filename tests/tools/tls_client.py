#!/usr/bin/python3
"""A TLS client for the tests: connect to 127.0.0.1:PORT with SNI HOST, complete
the handshake, send the secret at once, print the reply.

Exit status: 0 on success, 1 on a TLS or connection error (with a message on
stderr saying which), 2 on a usage error.
"""
import argparse
import socket
import ssl
import sys

VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def fail(msg):
    print(f"tls_client: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", required=True, help="SNI and the name the certificate must match")
    p.add_argument("--port", type=int, required=True)
    trust = p.add_mutually_exclusive_group()
    trust.add_argument("--cafile", help="trust only this CA (default: the system CAs)")
    trust.add_argument("--insecure", action="store_true", help="verify nothing")
    p.add_argument("--tls", choices=["1.2", "1.3"], help="only this TLS version")
    p.add_argument("--secret", default="SECRET", help="what to send after the handshake")
    p.add_argument("--connections", type=int, default=1, help="connections, one after another")
    p.add_argument("--cert", help="client certificate chain (mTLS)")
    p.add_argument("--key", help="client private key (mTLS)")
    p.add_argument("--timeout", type=float, default=10.0, help="I/O timeout in seconds")
    p.add_argument("--abort-handshake", action="store_true",
                   help="send the ClientHello, wait for the server's answer, then reset "
                        "the connection: a client dying mid-handshake")
    p.add_argument("-v", "--verbose", action="store_true", help="say what was negotiated")
    return p.parse_args()


def make_context(args):
    if args.insecure:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cafile=args.cafile)
    if args.tls:
        ctx.minimum_version = ctx.maximum_version = VERSIONS[args.tls]
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    return ctx


def abort_handshake(args, ctx):
    """Play the first flight by hand, then vanish with a TCP reset."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=args.host)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    with socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout) as s:
        s.sendall(outgoing.read())
        if not s.recv(1):
            fail("the server closed the connection before answering the ClientHello")
        # SO_LINGER 0: close() sends a RST, as a killed process's socket would
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    print("aborted mid-handshake")


def connect_once(args, ctx):
    where = f"{args.host} (127.0.0.1:{args.port})"
    try:
        raw = socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout)
    except OSError as e:
        fail(f"cannot connect to {where}: {e}")
    try:
        tls = ctx.wrap_socket(raw, server_hostname=args.host)
    except ssl.SSLCertVerificationError as e:
        fail(f"certificate verification failed for {where}: {e.verify_message}")
    except (ssl.SSLError, OSError) as e:
        fail(f"TLS handshake with {where} failed: {e}")
    if args.verbose:
        print(f"tls_client: {tls.version()} {tls.cipher()[0]}", file=sys.stderr)
    reply = b""
    try:
        tls.sendall(args.secret.encode())
        # both replies of tls_server.py end with "ok\n"; anything else: read to EOF
        while not reply.endswith(b"ok\n"):
            data = tls.recv(65536)
            if not data:
                break
            reply += data
    except socket.timeout:
        fail(f"no reply from {where} within {args.timeout:g} s (got {reply!r})")
    except (ssl.SSLError, OSError) as e:
        fail(f"connection to {where} failed after the handshake: {e}")
    finally:
        tls.close()
    sys.stdout.write(reply.decode(errors="replace"))
    sys.stdout.flush()


def main():
    args = parse_args()
    try:
        ctx = make_context(args)
    except (OSError, ssl.SSLError) as e:
        print(f"tls_client: cannot set up TLS: {e}", file=sys.stderr)
        sys.exit(2)
    if args.abort_handshake:
        abort_handshake(args, ctx)
        return
    for _ in range(args.connections):
        connect_once(args, ctx)


if __name__ == "__main__":
    main()
