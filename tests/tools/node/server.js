#!/usr/bin/env node
// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A TLS server on node's own OpenSSL that asks every client for a certificate
 * (mTLS) and accepts any, for the tests of side: server rules: pinwarden judges
 * the chain each client presents. Bound to 127.0.0.1 only.
 *
 *   server.js --cert CHAIN --key KEY --port-file FILE [--record FILE] [--tls 1.2|1.3]
 *
 * Writes its port to FILE once listening, appends the application data it
 * receives to --record, answers "ok\n" to each connection. SIGTERM stops it (0).
 */
'use strict';
const fs = require('fs');
const tls = require('tls');

const a = {};
for (let i = 2; i + 1 < process.argv.length; i += 2) a[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!a.cert || !a.key || !a['port-file']) {
  process.stderr.write('usage: server.js --cert CHAIN --key KEY --port-file FILE [--record FILE] [--tls 1.2|1.3]\n');
  process.exit(2);
}
const opts = {
  cert: fs.readFileSync(a.cert),
  key: fs.readFileSync(a.key),
  requestCert: true,
  rejectUnauthorized: false, // the pin decides, not a CA
};
if (a.tls) opts.minVersion = opts.maxVersion = `TLSv${a.tls}`;
const server = tls.createServer(opts, (s) => {
  s.on('data', (d) => {
    if (a.record) fs.appendFileSync(a.record, d);
    s.end('ok\n');
  });
  s.on('error', () => {});
});
server.on('tlsClientError', () => {});
server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(`${a['port-file']}.tmp`, String(server.address().port));
  fs.renameSync(`${a['port-file']}.tmp`, a['port-file']);
});
process.on('SIGTERM', () => process.exit(0));
