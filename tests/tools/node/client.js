#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A TLS client on node's own (statically linked) OpenSSL, for the tests. The
 * same interface as tests/tools/tls_client.py: connect to 127.0.0.1:PORT with
 * SNI HOST, complete the handshake, send the secret at once, print the reply.
 *
 *   client.js --host NAME --port N [--cafile FILE | --insecure] [--tls 1.2|1.3]
 *             [--secret S] [--connections N] [--parallel] [--names A,B,...] [--ports P,Q,...]
 *             [--cert FILE --key FILE] [--no-sni] [--handshake-only] [-v]
 *
 * --parallel: open all connections at once (one thread, interleaved handshakes).
 * --names: connection i asks for (SNI) and verifies name i modulo the list
 *   (default: --host); its reply line is prefixed with the name.
 * --ports: connection i goes to port i modulo the list (default: --port); with
 *   --parallel a connection that fails says so on its line ("NAME failed: ...")
 *   and the others go on; the exit status is then 1.
 * --handshake-only: close right after the handshake, send nothing (benchmark).
 * Exit status: 0 on success, 1 on a TLS or connection error (with a message on
 * stderr saying which), 2 on a usage error.
 */
'use strict';
const fs = require('fs');
const tls = require('tls');

function usage() {
  process.stderr.write('usage: client.js --host NAME --port N [--cafile FILE | --insecure] ' +
    '[--tls 1.2|1.3] [--secret S] [--connections N] [--parallel] [--names A,B,...] [--ports P,Q,...] ' +
    '[--cert FILE --key FILE] [--no-sni] [--handshake-only] [-v]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { secret: 'SECRET', connections: 1 };
  const flags = { '--insecure': 'insecure', '--parallel': 'parallel', '--no-sni': 'noSni',
    '-v': 'verbose', '--verbose': 'verbose', '--handshake-only': 'hsOnly' };
  const values = { '--host': 'host', '--port': 'port', '--cafile': 'cafile', '--tls': 'tls',
    '--secret': 'secret', '--connections': 'connections', '--cert': 'cert', '--key': 'key',
    '--names': 'names', '--ports': 'ports' };
  // --opt=value as well as --opt value
  argv = argv.flatMap((x) => (/^--[a-z-]+=/.test(x) ? [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)] : [x]));
  for (let i = 0; i < argv.length; i++) {
    if (flags[argv[i]]) a[flags[argv[i]]] = true;
    else if (values[argv[i]] && i + 1 < argv.length) a[values[argv[i]]] = argv[++i];
    else usage();
  }
  a.ports = a.ports ? a.ports.split(',').map(Number) : null;
  if (a.ports && !a.port) a.port = a.ports[0];
  a.port = Number(a.port);
  a.names = a.names ? a.names.split(',') : null;
  a.connections = Number(a.connections);
  if (!a.host || !(a.port > 0 && a.port < 65536) || !(a.connections >= 1) ||
      (a.ports && !a.ports.every((p) => p > 0 && p < 65536)) ||
      (a.cafile && a.insecure) || (a.tls && !['1.2', '1.3'].includes(a.tls)) ||
      (!a.cert !== !a.key))
    usage();
  return a;
}

function fail(msg) {
  process.stderr.write(`node_client: ${msg}\n`);
  process.exit(1);
}

let failures = 0;

function connectOnce(a, i) {
  const name = a.names ? a.names[i % a.names.length] : a.host;
  const port = a.ports ? a.ports[i % a.ports.length] : a.port;
  const label = a.names || a.ports ? `${name}@${port} ` : '';
  return new Promise((resolve) => {
    const where = `${name} (127.0.0.1:${port})`;
    let failed = false;
    const opts = {
      host: '127.0.0.1',
      port,
      rejectUnauthorized: !a.insecure,
      // verify the certificate against the name asked for, not 127.0.0.1
      checkServerIdentity: (_, cert) => tls.checkServerIdentity(name, cert),
    };
    if (!a.noSni) opts.servername = name;
    if (a.cafile) opts.ca = fs.readFileSync(a.cafile);
    if (a.tls) opts.minVersion = opts.maxVersion = `TLSv${a.tls}`;
    if (a.cert) {
      opts.cert = fs.readFileSync(a.cert);
      opts.key = fs.readFileSync(a.key);
    }
    let reply = '';
    const s = tls.connect(opts, () => {
      if (a.verbose)
        process.stderr.write(`node_client: ${s.getProtocol()} ${s.getCipher().name}\n`);
      if (a.hsOnly) s.end();
      else s.write(a.secret);
    });
    s.setEncoding('utf8');
    s.setTimeout(10000, () => fail(`no reply from ${where} within 10 s (got ${JSON.stringify(reply)})`));
    s.on('data', (d) => {
      reply += d;
      // both replies of tls_server.py end with "ok\n"; anything else: read to EOF
      if (reply.endsWith('ok\n')) s.end();
    });
    s.on('error', (e) => {
      if (!a.parallel) fail(`connection to ${where} failed: ${e.message}`);
      failed = true;
      failures++;
      process.stdout.write(`${label}failed: ${e.code || e.message}\n`);
    });
    s.on('close', () => {
      if (!failed) process.stdout.write(`${label}${reply}`);
      resolve();
    });
  });
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (a.parallel) {
    await Promise.all(Array.from({ length: a.connections }, (_, i) => connectOnce(a, i)));
  } else {
    for (let i = 0; i < a.connections; i++) await connectOnce(a, i);
  }
  if (failures) process.exitCode = 1;
}

main();
