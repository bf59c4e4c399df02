// HTTPS and WSS on the agent's one port, as a browser on another machine
// would need them: the page is a secure context (Gamepad API, keyboard
// lock), the signalling runs over wss, video plays. Chromium trusts the
// certificate only through --ignore-certificate-errors-spki-list, the way a
// user accepts a fingerprint; a browser without it must refuse the page.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import WebSocket from 'ws';
import { Harness, Agent, ORIEL_BIN, tokenOf, waitFor, waitDecoding, within } from './harness.mjs';

const h = new Harness('tls');
let display;
let selfSigned; // agent with --tls self-signed
let given; // {dir, chain, key, leaf, ca}: an openssl CA and leaf
let givenAgent;
let browser; // trusts both certificates' keys

/** base64 SHA-256 of the certificate's SubjectPublicKeyInfo: Chromium's pin format. */
function spkiHash(pem) {
  const spki = new crypto.X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(spki).digest('base64');
}

/** The fingerprint the agent printed at startup. */
function printedFingerprint(agent) {
  const prefix = 'oriel: TLS certificate SHA-256 ';
  const line = agent.log.find((l) => l.startsWith(prefix));
  assert.ok(line, 'the agent prints its certificate fingerprint');
  return line.slice(prefix.length).split(' ')[0];
}

function openssl(args, cwd) {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A throwaway CA and a leaf for 127.0.0.1 signed by it (RSA, unlike oriel's ECDSA). */
function makeCertificates() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-e2e-certs-'));
  h.tmpDirs.push(dir);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
    '-subj', '/CN=oriel e2e CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign'], dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=127.0.0.1'], dir);
  fs.writeFileSync(path.join(dir, 'ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'leaf.pem', '-days', '2', '-extfile', 'ext'], dir);
  const read = (f) => fs.readFileSync(path.join(dir, f), 'utf8');
  fs.writeFileSync(path.join(dir, 'chain.pem'), read('leaf.pem') + read('ca.pem'));
  const fp = openssl(['x509', '-in', 'leaf.pem', '-noout', '-fingerprint', '-sha256'], dir).trim().split('=')[1];
  return { dir, chain: path.join(dir, 'chain.pem'), key: path.join(dir, 'leaf.key'), ca: path.join(dir, 'ca.pem'), leaf: read('leaf.pem'), fingerprint: fp };
}

/**
 * Open `agent`'s client in `context` and check what a remote user needs:
 * https page, secure context, signalling over wss, decoded video.
 */
async function checkSecurePlayback(context, agent) {
  const sockets = [];
  const onPage = (p) => p.on('websocket', (ws) => sockets.push(ws.url()));
  context.on('page', onPage);
  const page = await h.openClient(context, agent).finally(() => context.off('page', onPage));
  try {
    assert.match(page.url(), /^https:\/\/127\.0\.0\.1:\d+\//);
    assert.equal(await page.evaluate(() => window.isSecureContext), true, 'the page is a secure context');
    assert.equal(await page.evaluate(() => typeof navigator.getGamepads), 'function', 'Gamepad API exposed');
    const s = await waitDecoding(page, 30000);
    assert.equal(s.width, 1280);
    assert.equal(s.ws, 'open');
    assert.deepEqual(sockets, [agent.wsUrl], 'signalling went over wss to the same port');
    assert.match(agent.wsUrl, /^wss:/);
  } finally {
    await page.close().catch(() => {});
  }
}

before(async () => {
  ({ display } = await h.startDisplay());
  given = makeCertificates();
  selfSigned = await h.startAgent({ display, args: ['--tls', 'self-signed'], tls: true });
  const pem = fs.readFileSync(path.join(selfSigned.stateDir, 'tls', 'cert.pem'), 'utf8');
  browser = await h.launchBrowser({
    args: [`--ignore-certificate-errors-spki-list=${spkiHash(pem)},${spkiHash(given.leaf)}`],
  });
});
after(() => h.cleanup());

h.test('self-signed on loopback: fingerprint printed, key private, the page plays over https + wss', async () => {
  const dir = path.join(selfSigned.stateDir, 'tls');
  const pem = fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8');
  const cert = new crypto.X509Certificate(pem);
  assert.equal(printedFingerprint(selfSigned), cert.fingerprint256, 'printed fingerprint = SHA-256 of the certificate');
  for (const name of ['DNS:localhost', 'IP Address:127.0.0.1']) {
    assert.ok(cert.subjectAltName.includes(name), `SAN has ${name}: ${cert.subjectAltName}`);
  }
  assert.equal(fs.statSync(path.join(dir, 'key.pem')).mode & 0o777, 0o600, 'key.pem is 0600');
  assert.ok(selfSigned.log.includes(`oriel: serving ${selfSigned.url}`), 'serving line is https');
  assert.match(selfSigned.controllerUrl, /^https:\/\/127\.0\.0\.1:\d+\/#token=/);
  await checkSecurePlayback(browser, selfSigned);
});

h.test('a browser that does not trust the certificate gets no page', async () => {
  const untrusting = await h.launchBrowser();
  const page = await untrusting.newPage();
  await assert.rejects(page.goto(selfSigned.url, { timeout: 20000 }), /ERR_CERT/);
});

h.test('plain HTTP is told to use https, and a silent client stalls nothing', async () => {
  const before = Agent.metricSamples(await selfSigned.metrics(), 'oriel_tls_handshake_failures_total')[0].value;
  // A client that connects and never speaks: the accept loop must go on.
  const silent = net.connect(selfSigned.port, '127.0.0.1');
  h.cleanups.push(() => silent.destroy());
  await new Promise((r, j) => silent.once('connect', r).once('error', j));
  // Someone typing http:// gets told to use https://, and no data.
  const plain = await fetch(`http://127.0.0.1:${selfSigned.port}/healthz`, { signal: AbortSignal.timeout(5000) });
  assert.equal(plain.status, 400);
  assert.match(await plain.text(), /open the address with https:\/\//);
  const hz = await selfSigned.healthz();
  assert.equal(hz.status, 'ok', 'https still answers while the silent client waits');
  await waitFor(
    async () => Agent.metricSamples(await selfSigned.metrics(), 'oriel_tls_handshake_failures_total')[0].value > before,
    10000,
    'the failed handshake to be counted',
  );
  silent.destroy();
  assert.ok(selfSigned.alive);
});

h.test('a restart reuses the self-signed certificate', async () => {
  const dir = path.join(selfSigned.stateDir, 'tls');
  const pemBefore = fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8');
  const fpBefore = printedFingerprint(selfSigned);
  await h.kill(selfSigned.rec);
  assert.equal(selfSigned.rec.exitCode, 0, 'clean exit on SIGTERM');
  const again = await h.startAgent({ display, args: ['--tls', 'self-signed'], tls: true, stateDir: selfSigned.stateDir });
  assert.equal(printedFingerprint(again), fpBefore, 'same fingerprint after restart');
  assert.equal(fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8'), pemBefore, 'cert.pem unchanged');
  // The browser's pin from the first run still holds.
  await checkSecurePlayback(browser, again);
  await h.kill(again.rec);
});

h.test('a given CA-signed certificate is served, chain and all', async () => {
  givenAgent = await h.startAgent({
    display,
    args: ['--tls-cert', given.chain, '--tls-key', given.key],
    tls: true,
    ca: given.ca, // node verifies the whole chain against the CA
  });
  assert.equal(printedFingerprint(givenAgent), given.fingerprint, 'fingerprint matches openssl');
  assert.equal(fs.existsSync(path.join(givenAgent.stateDir, 'tls')), false, 'no self-signed certificate made');
  await checkSecurePlayback(browser, givenAgent);
  await h.kill(givenAgent.rec);
});

/** Runs `oriel serve ARGS` expecting it to refuse; returns its output. */
async function refused(args) {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-e2e-state-'));
  h.tmpDirs.push(stateDir);
  const rec = h.spawn('oriel-refused', ORIEL_BIN, ['serve', '--capture', 'test', '--input', 'none', '--state-dir', stateDir, ...args]);
  const exit = await within(rec.exited, 20000, null);
  assert.ok(exit, `oriel serve ${args.join(' ')} did not exit`);
  assert.notEqual(exit.code, 0, 'non-zero exit');
  assert.ok(!rec.log.some((l) => l.startsWith('oriel: serving')), 'it never served');
  return rec.log.join('\n');
}

h.test('plain HTTP beyond loopback is refused, and so are broken TLS settings', async () => {
  let out = await refused(['--listen', '0.0.0.0:0', '--tls', 'off']);
  assert.match(out, /refusing plain HTTP on 0\.0\.0\.0:0/);
  assert.match(out, /--insecure-http/);
  out = await refused(['--listen', '127.0.0.1:0', '--tls-cert', given.chain]);
  assert.match(out, /--tls-cert needs --tls-key/);
  out = await refused(['--listen', '127.0.0.1:0', '--tls-cert', '/nonexistent/oriel-cert.pem', '--tls-key', given.key]);
  assert.match(out, /\/nonexistent\/oriel-cert\.pem/, 'the unreadable file is named');
  out = await refused(['--listen', '127.0.0.1:0', '--tls-cert', given.key, '--tls-key', given.key]);
  assert.match(out, new RegExp(`${given.key.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: no PEM certificate`), 'a key given as certificate is named');
});

h.test('over wss too, bad links are limited per address: the 11th hello is refused unchecked', async () => {
  const agent = await h.startAgent({ display, args: ['--tls', 'self-signed'], tls: true });
  const ca = fs.readFileSync(path.join(agent.stateDir, 'tls', 'cert.pem'), 'utf8');
  /** One hello over wss; resolves with the first message back. */
  const hello = (token) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(agent.wsUrl, { ca, origin: agent.url.replace(/\/$/, '') });
      ws.on('open', () => ws.send(JSON.stringify({ type: 'hello', protocol: 1, token })));
      ws.on('message', (data) => {
        resolve(JSON.parse(String(data)));
        ws.close();
      });
      ws.on('error', reject);
    });
  for (let i = 0; i < 10; i++) {
    const m = await hello(`guess${i}.AAAAAAAAAAAAAAAAAAAAAA`);
    assert.equal(m.code, 'unauthorized', JSON.stringify(m));
  }
  const m = await hello(tokenOf(agent.controllerUrl));
  assert.equal(m.code, 'rateLimited', `a good link from the same address is refused unchecked: ${JSON.stringify(m)}`);
  const samples = Agent.metricSamples(await agent.metrics(), 'oriel_token_failures_total');
  assert.equal(samples[0].value, 10);
  await h.kill(agent.rec);
});
