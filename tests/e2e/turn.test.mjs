// TURN with a real coturn (Debian's `turnserver`) on a loopback port, REST
// credentials (use-auth-secret): a relay-only Chromium still plays, through a
// relay candidate, with credentials the agent minted for that session; with
// the wrong secret the page says the TURN server refused the credentials and
// never plays.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Harness, status, waitFor, waitDecoding, waitFramesGrow, freePort, sleep } from './harness.mjs';

const h = new Harness('turn');
const SECRET = 'oriel-e2e-turn-secret';
let display;
let browser;
let turn; // {port, url, rec}

/** Does a STUN binding request to ip:port get an answer? */
function stunAnswers(ip, port) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    // Binding request: type 0x0001, length 0, magic cookie, 12-byte transaction id.
    const req = Buffer.concat([Buffer.from([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]), crypto.randomBytes(12)]);
    let finished = false;
    const done = (ok) => {
      if (finished) return;
      finished = true;
      sock.close();
      resolve(ok);
    };
    sock.on('message', (m) => done(m.length >= 20 && m.readUInt16BE(0) === 0x0101));
    sock.on('error', () => done(false));
    sock.send(req, port, ip);
    setTimeout(() => done(false), 500).unref();
  }).catch(() => false);
}

/**
 * The first non-internal IPv4 address. libnice gathers no loopback host
 * candidates (FIELD-NOTES), and its packets from the real interface to a
 * coturn on 127.0.0.1 got no answer here, so coturn listens and relays on
 * the machine's own interface address.
 */
function interfaceAddress() {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('no non-loopback IPv4 address: ICE (libnice) needs one');
}

/**
 * coturn on a free port of this machine's interface address, with its own
 * config: REST credentials against `secret` (use-auth-secret), no TLS/DTLS,
 * no CLI, its database in a temp dir.
 */
async function startCoturn(secret) {
  if (spawnSync('sh', ['-c', 'command -v turnserver'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('turnserver not found: install Debian package coturn (scripts/install-deps.sh test)');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-e2e-coturn-'));
  h.tmpDirs.push(dir);
  const port = await freePort();
  const ip = interfaceAddress();
  const conf = path.join(dir, 'turnserver.conf');
  fs.writeFileSync(
    conf,
    [
      `listening-ip=${ip}`,
      `relay-ip=${ip}`,
      `listening-port=${port}`,
      'use-auth-secret',
      `static-auth-secret=${secret}`,
      'realm=oriel.test',
      'fingerprint',
      'no-tls',
      'no-dtls',
      'no-cli',
      'no-multicast-peers',
      'log-file=stdout',
      'simple-log',
      'verbose',
      `pidfile=${path.join(dir, 'turnserver.pid')}`,
      `userdb=${path.join(dir, 'turndb')}`,
      '',
    ].join('\n'),
  );
  const rec = h.spawn('coturn', 'turnserver', ['-c', conf]);
  await waitFor(
    async () => {
      if (rec.exitCode !== undefined) throw new Error(`turnserver exited (code ${rec.exitCode})`);
      return stunAnswers(ip, port);
    },
    15000,
    `coturn answering STUN on ${ip}:${port}`,
    200,
  );
  return { port, url: `turn:${ip}:${port}?transport=udp`, rec };
}

/** The viewer link of `agent` with `?ice=relay`: the page may only use TURN. */
function relayOnlyUrl(agent) {
  const u = new URL(agent.viewerUrl());
  u.search = '?ice=relay';
  return u.toString();
}

before(async () => {
  ({ display } = await h.startDisplay());
  turn = await startCoturn(SECRET);
  browser = await h.launchBrowser();
});
after(() => h.cleanup());

h.test('relay-only Chromium plays through coturn with minted REST credentials', async () => {
  const agent = await h.startAgent({
    display,
    capture: 'x11',
    args: ['--turn', turn.url, '--turn-secret', SECRET, '--turn-ttl', '1h'],
  });
  // The secret reaches neither the agent's log nor (in any form) the page.
  assert.ok(!agent.log.some((l) => l.includes(SECRET)), 'secret in the agent log');
  const page = await h.openClient(browser, agent, relayOnlyUrl(agent));
  try {
    const first = await waitDecoding(page, 30000);
    assert.equal(first.iceTransportPolicy, 'relay');
    await waitFramesGrow(page, first, 30, 20000);
    // The selected pair's local candidate is a TURN relay: had the browser
    // reached the agent any other way, this would say host/prflx.
    const st = await waitFor(
      async () => {
        const s = await status(page);
        return s.localCandidateType ? s : null;
      },
      10000,
      'selected candidate pair in getStats',
    );
    assert.equal(st.localCandidateType, 'relay', `selected path ${st.localCandidateType} -> ${st.remoteCandidateType}`);
    assert.equal(st.iceError, null);
    assert.equal(await page.locator('#banner').isVisible(), false, 'banner hidden while playing');
    // coturn checked the username the agent minted for this session:
    // "<expiry>:oriel-<peerId>", with the expiry one hour ahead.
    const user = new RegExp(`user <(\\d+):oriel-${st.peerId}>`);
    const line = await h.waitForLog(turn.rec, user, 10000, 'an allocation for the session user');
    const expiry = Number(line.match(user)[1]);
    const ahead = expiry - Date.now() / 1000;
    assert.ok(ahead > 3000 && ahead <= 3600 + 60, `REST expiry ${ahead.toFixed(0)} s ahead, want ~3600`);
    assert.ok(!turn.rec.log.some((l) => l.includes(SECRET)), 'secret in the coturn log');
  } finally {
    await page.close().catch(() => {});
    await h.kill(agent.rec);
  }
});

h.test('a wrong TURN secret: the page names the refusal and never plays', async () => {
  const agent = await h.startAgent({
    display,
    capture: 'x11',
    args: ['--turn', turn.url, '--turn-secret', 'not-the-secret'],
  });
  const page = await h.openClient(browser, agent, relayOnlyUrl(agent));
  try {
    const refusal = new RegExp(`^TURN server ${turn.url.replace(/[.?]/g, '\\$&')} refused the credentials \\(401\\)$`);
    const st = await waitFor(
      async () => {
        const s = await status(page);
        return s.iceError && refusal.test(s.iceError) ? s : null;
      },
      20000,
      `the page to report ${refusal}`,
    );
    assert.equal(st.framesDecoded, 0);
    // Visible to the user, not only to the test hook.
    const banner = page.locator('#banner');
    assert.equal(await banner.isVisible(), true, 'banner visible');
    const text = await banner.innerText();
    assert.ok(text.includes(st.iceError), `banner says: ${JSON.stringify(text)}`);
    // No endless spinner: the session is given up with the reason, and it
    // never decoded a frame meanwhile.
    const lost = await waitFor(
      async () => {
        const s = await status(page);
        assert.equal(s.framesDecoded, 0, 'decoded a frame despite refused TURN credentials');
        return s.errors.some((e) => e.startsWith('no WebRTC connection') && refusal.test(e.split(': ').slice(1).join(': ')))
          ? s
          : null;
      },
      30000,
      'the page to give the session up, naming the TURN refusal',
      250,
    );
    assert.equal(lost.framesDecoded, 0);
    // The agent logged that peer's failure.
    await h.waitForLog(
      agent.rec,
      new RegExp(`before its WebRTC connection came up peer=${st.peerId} `),
      15000,
      'the agent logging the failed peer',
    );
  } finally {
    await page.close().catch(() => {});
    await h.kill(agent.rec);
  }
});

h.test('the TURN server goes away: connected clients keep playing, a new client still joins', async () => {
  // Its own coturn, so the other tests keep theirs.
  const gone = await startCoturn(SECRET);
  const agent = await h.startAgent({
    display,
    capture: 'x11',
    args: ['--turn', gone.url, '--turn-secret', SECRET],
  });
  const page = await h.openClient(browser, agent, agent.viewerUrl());
  let later;
  let relayed;
  try {
    const first = await waitDecoding(page, 30000);
    const direct = await waitFor(async () => (await status(page)).localCandidateType, 10000, 'the direct page\'s candidate pair');
    assert.notEqual(direct, 'relay', 'the page that should stay plays through TURN');
    // TURN is in use: a relay-only page plays through it. It loses its only
    // path with the server; the others must not notice.
    relayed = await h.openClient(browser, agent, relayOnlyUrl(agent));
    await waitDecoding(relayed, 30000);
    const st = await waitFor(async () => {
      const s = await status(relayed);
      return s.localCandidateType ? s : null;
    }, 10000, 'selected candidate pair in getStats');
    assert.equal(st.localCandidateType, 'relay');
    await h.kill(gone.rec);
    const [ip, port] = gone.url.replace(/^turn:/, '').replace(/\?.*$/, '').split(':');
    assert.equal(await stunAnswers(ip, Number(port)), false, 'coturn still answers');
    // Ten seconds without it: the same session goes on decoding.
    await sleep(10000);
    const after10 = await waitFramesGrow(page, first, 200, 10000);
    assert.equal(after10.connects, first.connects, 'the page reconnected');
    // A client joining now connects without the TURN server and plays; the
    // unreachable server is no reason for a banner once it plays.
    later = await h.openClient(browser, agent, agent.viewerUrl());
    const second = await waitDecoding(later, 30000);
    await waitFramesGrow(later, second, 30, 15000);
    assert.equal(await later.locator('#banner').isVisible(), false, 'banner hidden while playing');
    await waitFramesGrow(page, after10, 30, 10000);
    assert.ok(agent.alive, 'the agent lives');
  } finally {
    await later?.close().catch(() => {});
    await relayed?.close().catch(() => {});
    await page.close().catch(() => {});
    await h.kill(agent.rec);
  }
});
