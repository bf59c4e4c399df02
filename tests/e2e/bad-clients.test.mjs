// One bad client cannot hurt the others (issue 21, part 5), short forms:
// with a Chromium controller and a viewer playing, each bad client in turn
// is refused or cut off with a clear reason and a counter in /metrics, the
// agent's memory stays flat, both pages keep decoding and the controller's
// pointer and keys still land on the X display. The full forms, with
// figures, are `bench/bad-clients.mjs`.
//
// Bad clients come from other loopback addresses (127.0.0.2 and up: all of
// 127/8 is this machine) so the per-address limits they hit are not the
// good pages' (127.0.0.1).

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';
import {
  Harness, Agent, ORIEL_BIN, waitFor, waitDecoding, waitFramesGrow, within, sleep, status, tokenOf,
} from './harness.mjs';

const NON_READER = path.join(path.dirname(ORIEL_BIN), 'examples', 'non_reader');

const h = new Harness('bad-clients');
let agent;
let browser;
let display;
let xev;
let controller;
let viewer;

// docs/protocol.md, "Input".
const pointerAbs = (x, y) => [1, 0x10, x & 255, x >> 8, y & 255, y >> 8];
function key(down, code) {
  const field = new Array(32).fill(0);
  for (let i = 0; i < code.length; i++) field[i] = code.charCodeAt(i);
  return [1, down ? 0x01 : 0x02, ...field];
}

function pointer() {
  const r = spawnSync('xdotool', ['getmouselocation', '--shell'], { env: { ...process.env, DISPLAY: display }, encoding: 'utf8' });
  const m = /X=(\d+)\s+Y=(\d+)/.exec(r.stdout);
  return m ? { x: Number(m[1]), y: Number(m[2]) } : null;
}

const rssKiB = () => Number(fs.readFileSync(`/proc/${agent.rec.child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);

async function metric(name, labels = '') {
  const samples = Agent.metricSamples(await agent.metrics(), name);
  return samples.filter((s) => s.labels.includes(labels)).reduce((a, s) => a + s.value, 0);
}
const refused = (reason) => metric('oriel_refused_connections_total', `reason="${reason}"`);
const cut = (reason) => metric('oriel_cut_connections_total', `reason="${reason}"`);
const dropped = (reason) => metric('oriel_input_dropped_total', `reason="${reason}"`);

let target = 0;
/**
 * The controller's input lands: the pointer goes where it sends it (a new
 * spot each time), and a key typed over the xev window shows up there.
 */
async function inputLands(what) {
  target = (target + 1) % 8;
  const x = 4096 + target * 2048; // left part of the screen: inside the xev window (400x300)
  const px = Math.floor((x / 65535) * 1279);
  const send = (bytes, label = 'motion') => controller.evaluate(([l, b]) => window.oriel.sendInput(l, b), [label, bytes]);
  let at = null;
  await waitFor(async () => {
    await send(pointerAbs(x, 16384));
    at = pointer();
    return at && at.x === px && at.y === 179;
  }, 10000, `${what}: the controller's pointer at ${px},179`, 200).catch((e) => {
    e.message += `; pointer at ${JSON.stringify(at)}`;
    throw e;
  });
  const typed = () => (xev.log.join('\n').match(/KeyRelease event[\s\S]*?keysym 0x6b, k\)/g) ?? []).length;
  const before = typed();
  await send(key(true, 'KeyK'), 'input');
  await send(key(false, 'KeyK'), 'input');
  await waitFor(() => typed() > before, 10000, `${what}: xev saw the controller's key k`);
}

/** Both good pages decode more frames in the same session. */
async function stillPlaying(since, what) {
  const [c, v] = await Promise.all([
    waitFramesGrow(controller, since[0], 15, 15000),
    waitFramesGrow(viewer, since[1], 15, 15000),
  ]).catch((e) => {
    e.message = `${what}: ${e.message}`;
    throw e;
  });
  return [c, v];
}
const snapshot = () => Promise.all([status(controller), status(viewer)]);

/** A WebSocket from `localAddress`: {ws} once open, or how it was refused. */
function openSocket(localAddress) {
  return new Promise((resolve) => {
    const ws = new WebSocket(agent.wsUrl, { localAddress, maxPayload: 1 << 20 });
    ws.closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: String(reason) })));
    ws.on('open', () => resolve({ ws }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.on('error', (e) => resolve({ error: e.message }));
  });
}

before(async () => {
  if (!fs.existsSync(NON_READER)) throw new Error(`non_reader missing: ${NON_READER} (cargo build --examples)`);
  ({ display } = await h.startDisplay());
  // xev's window must open above the moving picture's (keys go where the
  // pointer is, there being no window manager).
  const x = (cmd, args) => spawnSync(cmd, args, { env: { ...process.env, DISPLAY: display }, encoding: 'utf8' }).stdout ?? '';
  await waitFor(() => /gst-launch-1\.0/.test(x('xwininfo', ['-root', '-tree'])), 15000, 'the moving picture\'s window');
  xev = h.spawn('xev', 'stdbuf', ['-oL', 'xev', '-display', display, '-geometry', '400x300+0+0', '-event', 'keyboard']);
  await waitFor(() => x('xdotool', ['search', '--name', 'Event Tester']).trim() !== '', 10000, 'xev window');
  agent = await h.startAgent({ display, capture: 'x11', args: ['--input', 'xtest'] });
  browser = await h.launchBrowser();
  controller = await h.openClient(browser, agent, agent.controllerUrl);
  viewer = await h.openClient(browser, agent);
  await Promise.all([waitDecoding(controller), waitDecoding(viewer)]);
  await waitFor(() => controller.evaluate(() => window.oriel.inputReady()), 10000, 'controller input channels');
  await inputLands('before any bad client');
});
after(() => h.cleanup());

h.test('idle sockets: 429 over the per-address limit, 503 over the total, the rest cut at the hello deadline', async () => {
  const s0 = await snapshot();
  const rss0 = rssKiB();
  const [pa0, tot0, hello0, hpa0, hto0, htot0] = await Promise.all([
    refused('per_address'), refused('total'), cut('hello_timeout'), refused('http_per_address'), cut('http_header_timeout'),
    refused('http_total'),
  ]);
  // 40 from one address: the default 32 get in.
  const one = [];
  for (let i = 0; i < 40; i++) one.push(await openSocket('127.0.0.2'));
  const oneOpen = one.filter((r) => r.ws);
  assert.equal(oneOpen.length, 32, `sockets open from 127.0.0.2 (others: ${JSON.stringify(one.filter((r) => !r.ws).slice(0, 2))})`);
  const r429 = one.find((r) => r.status);
  assert.equal(r429.status, 429);
  assert.match(r429.body, /too many connections from your address: at most 32/);
  // 261 more from nine addresses: the total (256, two of them the good pages) is reached.
  const many = await Promise.all(Array.from({ length: 261 }, (_, i) => openSocket(`127.0.0.${3 + (i % 9)}`)));
  const manyOpen = many.filter((r) => r.ws);
  assert.equal(manyOpen.length, 256 - 2 - 32, 'sockets open up to the total');
  const r503 = many.find((r) => r.status);
  assert.equal(r503.status, 503);
  assert.match(r503.body, /maximum of 256 connections/);
  // Raw TCP that never sends a request: 32 from one address held, the rest closed at once.
  const t0 = Date.now();
  const raw = Array.from({ length: 40 }, () => {
    const s = net.connect({ port: agent.port, host: '127.0.0.1', localAddress: '127.0.0.20' });
    s.closedAfter = null;
    s.on('close', () => (s.closedAfter = Date.now() - t0));
    s.on('error', () => {});
    return s;
  });
  await sleep(1000);
  assert.equal(raw.filter((s) => s.closedAfter !== null).length, 8, 'raw sockets over the per-address limit closed at once');

  // While ~300 sockets sit there, the good pages play and input lands.
  const sMid = await stillPlaying(s0, 'with idle sockets open');
  await inputLands('with idle sockets open');

  // The hello deadline (10 s) closes every idle WebSocket with its reason.
  const closes = await Promise.all([...oneOpen, ...manyOpen].map((r) => within(r.ws.closed, 20000, null)));
  assert.ok(closes.every((c) => c && c.code === 1008 && c.reason === 'no hello within 10 s'),
    `every idle socket closed 1008 "no hello within 10 s" (first: ${JSON.stringify(closes.find((c) => !c || c.code !== 1008))})`);
  await waitFor(() => raw.every((s) => s.closedAfter !== null), 15000, 'raw sockets closed at the header deadline');
  assert.equal(await refused('per_address') - pa0, 8);
  // Opened all at once, some of the 261 are over the total of plain HTTP
  // connections (256) before they could ask for the upgrade: closed at once.
  assert.equal((await refused('total')) - tot0 + (await refused('http_total')) - htot0, 261 - manyOpen.length,
    'every socket over the total refused, at the upgrade (503) or at accept');
  assert.equal(await cut('hello_timeout') - hello0, oneOpen.length + manyOpen.length);
  assert.equal(await refused('http_per_address') - hpa0, 8);
  assert.equal(await cut('http_header_timeout') - hto0, 32);
  await waitFor(async () => (await metric('oriel_open_connections', 'kind="websocket"')) === 2, 5000, 'only the good pages\' sockets open');
  await stillPlaying(sMid, 'after the idle sockets');
  const grown = (rssKiB() - rss0) / 1024;
  assert.ok(grown < 64, `agent RSS grew ${grown.toFixed(1)} MiB with ~300 idle sockets (bounded)`);
});

h.test('a 100 MiB message is refused from its frame header: close 1009 with a reason, memory flat', async () => {
  const s0 = await snapshot();
  const rss0 = rssKiB();
  const n0 = await cut('too_large');
  const { ws } = await openSocket('127.0.0.2');
  assert.ok(ws, 'socket open');
  ws.send(Buffer.alloc(100 * 1024 * 1024, 0x61), { binary: false }, () => {});
  const closed = await within(ws.closed, 15000, null);
  assert.ok(closed, 'closed within 15 s');
  assert.equal(closed.code, 1009, `close code (reason: ${closed.reason})`);
  assert.match(closed.reason, /^message too big: 104857600 bytes, the limit is 128 KiB$/);
  assert.equal(await cut('too_large') - n0, 1);
  const grown = (rssKiB() - rss0) / 1024;
  assert.ok(grown < 16, `agent RSS grew ${grown.toFixed(1)} MiB (a buffered message would be 100)`);
  await stillPlaying(s0, 'after the 100 MiB message');
  await inputLands('after the 100 MiB message');
});

h.test('a client that never reads is cut off and leaves the room', async () => {
  const s0 = await snapshot();
  const n0 = await cut('not_reading');
  const bad = h.spawn('non_reader', NON_READER, [
    '--url', agent.wsUrl, '--token', tokenOf(agent.viewerUrl()), '--rate', '250', '--seconds', '60', '--local-addr', '127.0.0.12',
  ]);
  await h.waitForLog(bad, /"event":"welcome"/, 10000, 'the non-reader joined');
  await waitFor(async () => (await agent.healthz()).clients === 3, 5000, 'three clients');
  // While it piles up replies, the others play and input lands.
  await stillPlaying(s0, 'with a non-reader');
  await inputLands('with a non-reader');
  const line = await h.waitForLog(bad, /"event":"ended"/, 45000, 'the non-reader cut off');
  const ended = JSON.parse(line);
  assert.notEqual(ended.how, 'still open', `the agent cut it off: ${line}`);
  assert.equal(await cut('not_reading') - n0, 1);
  await waitFor(async () => {
    const v = await agent.healthz();
    return v.clients === 2 && v.peers === 2;
  }, 10000, 'the room let it go like any disconnect');
  await stillPlaying(s0, 'after the non-reader');
});

h.test('a data-channel flood is held to the rate limit, then cut off; the controller\'s input lands throughout', async () => {
  // A player: viewers have no data channels to flood.
  const flooderLink = agent.createLink({ role: 'player', slot: 2 });
  const flooder = await h.openClient(browser, agent, flooderLink.url);
  await waitDecoding(flooder);
  await waitFor(() => flooder.evaluate(() => window.oriel.inputReady()), 10000, 'flooder input channels');
  const s0 = await snapshot();
  const [lim0, role0, cut0] = await Promise.all([dropped('rate_limited'), dropped('player_not_gamepad'), cut('input_flood')]);
  const kib0 = rssKiB();
  const t0 = Date.now();
  // As fast as the page can: 6-byte pointer messages; when Chromium's
  // send queue is full it throws, and the loop yields.
  const flood = flooder.evaluate(async (ms) => {
    const msg = new Uint8Array([1, 0x10, 0, 128, 0, 128]);
    const start = performance.now();
    let sent = 0;
    while (performance.now() - start < ms) {
      try {
        for (let i = 0; i < 500; i++) {
          if (!window.oriel.sendInput('motion', msg)) return { sent, closed: true };
          sent++;
        }
      } catch {
        /* send queue full */
      }
      await new Promise((r) => setTimeout(r, 0));
    }
    return { sent, closed: false };
  }, 12000);
  await sleep(1000);
  await inputLands('during the flood');
  const result = await flood;
  const secs = (Date.now() - t0) / 1000;
  const limited = (await dropped('rate_limited')) - lim0;
  const byRole = (await dropped('player_not_gamepad')) - role0;
  assert.ok(limited > 0, `rate_limited drops counted (page sent ${result.sent})`);
  assert.ok(byRole / secs < 12000, `what passed the limit stays near 4000/s: ${Math.round(byRole / secs)}/s`);
  assert.equal(await cut('input_flood') - cut0, 1, 'the flooder was cut off');
  // The flooder's SCTP packets over its budget never reach webrtcbin's
  // unbounded queues (media::sctp_budget): the agent stays small. Without
  // the budget it grew by ~100 MiB in such a flood.
  const grew = (rssKiB() - kib0) / 1024;
  assert.ok(grew < 30, `the agent grew ${grew.toFixed(1)} MiB during the flood`);
  assert.ok(result.closed, `the flooder's channel closed (sent ${result.sent} in ${secs.toFixed(1)} s)`);
  await waitFor(async () => (await status(flooder)).errors.some((e) => e === 'connection closed (1008: input flood)'),
    5000, 'the flooder page saw why');
  const cutAt = Date.now();
  await flooder.evaluate(() => window.oriel.disconnect());
  await flooder.close();
  // Its link is kept out from its address for 10 s (session::cooldown), so
  // a flooder cannot rejoin at once; the same link from elsewhere joins.
  const cool0 = await refused('flood_cooldown');
  const again = await hello('127.0.0.1', flooderLink.token);
  assert.equal(again.msg?.code, 'rateLimited', `the flooder's link rejoining: ${JSON.stringify(again)}`);
  assert.match(again.msg?.message ?? '', /cut off for flooding its input; try again in \d+ s/);
  assert.equal(again.close?.code, 1008);
  assert.equal(await refused('flood_cooldown') - cool0, 1, 'counted');
  const elsewhere = await hello('127.0.0.16', flooderLink.token);
  assert.equal(elsewhere.msg?.type, 'welcome', `the same link from another address: ${JSON.stringify(elsewhere)}`);
  await stillPlaying(s0, 'after the flood');
  await inputLands('after the flood');
  // And from this address again once the cool-down is over.
  await sleep(Math.max(0, cutAt + 10500 - Date.now()));
  const later = await hello('127.0.0.1', flooderLink.token);
  assert.equal(later.msg?.type, 'welcome', `after the cool-down: ${JSON.stringify(later)}`);
});

/** A hello with `token` from `addr`: the first answer and how it closed. */
async function hello(addr, token) {
  const { ws } = await openSocket(addr);
  if (!ws) return {};
  const first = new Promise((r) => ws.on('message', (d) => {
    const m = JSON.parse(String(d));
    if (m.type === 'welcome' || m.type === 'error') r(m);
  }));
  ws.send(JSON.stringify({ type: 'hello', protocol: 1, token }));
  const msg = await within(first, 5000, null);
  if (msg?.type === 'welcome') ws.close();
  const close = await within(ws.closed, 5000, null);
  return { msg, close };
}

h.test('a client that opens a data channel of its own and floods it is cut off with the reason', async () => {
  // A player: a viewer's offer has no data transport for a channel to open on.
  const rogue = await h.openClient(browser, agent, agent.createLink({ role: 'player', slot: 3 }).url);
  await waitDecoding(rogue);
  const s0 = await snapshot();
  const [foreign0, kib0] = [await metric('oriel_foreign_data_channels_total'), rssKiB()];
  const result = await rogue.evaluate(() => window.oriel.ownChannel('mine', 5000));
  await waitFor(async () => /opened a data channel of its own \("mine"\)/.test((await status(rogue)).lastBye ?? ''),
    5000, `the rogue page was told why (${JSON.stringify(result)}; bye ${JSON.stringify((await status(rogue)).lastBye)})`);
  assert.equal(await metric('oriel_foreign_data_channels_total') - foreign0, 1, 'counted once');
  assert.ok(result.state !== 'open', `its channel did not stay open: ${JSON.stringify(result)}`);
  await stillPlaying(s0, 'after the rogue channel');
  await inputLands('after the rogue channel');
  const grew = (rssKiB() - kib0) / 1024;
  assert.ok(grew < 30, `the agent grew ${grew.toFixed(1)} MiB`);
  await rogue.close();
});

h.test('bad-token hellos from one address are rate-limited; another address still joins', async () => {
  const s0 = await snapshot();
  const [f0, l0] = await Promise.all([metric('oriel_token_failures_total'), metric('oriel_token_rate_limited_total')]);
  const forged = `${tokenOf(agent.viewerUrl()).split('.')[0]}.AAAA`;
  const results = [];
  // 50 a second for 3 s.
  for (let i = 0; i < 150; i++) {
    results.push((async () => {
      const { ws } = await openSocket('127.0.0.13');
      if (!ws) return null;
      const first = new Promise((r) => ws.once('message', (d) => r(JSON.parse(String(d)))));
      ws.send(JSON.stringify({ type: 'hello', protocol: 1, token: forged }));
      const msg = await within(first, 5000, null);
      const closed = await within(ws.closed, 5000, null);
      return { code: msg?.code, close: closed?.code };
    })());
    await sleep(20);
  }
  const seen = await Promise.all(results);
  const count = (c) => seen.filter((s) => s?.code === c).length;
  assert.equal(count('unauthorized'), 10, `the first 10 are checked (${JSON.stringify(seen.slice(0, 12))})`);
  assert.equal(count('rateLimited'), 140, 'the rest refused unchecked');
  assert.ok(seen.every((s) => s && s.close !== undefined), 'every one closed');
  assert.equal(await metric('oriel_token_failures_total') - f0, 10);
  assert.equal(await metric('oriel_token_rate_limited_total') - l0, 140);
  // Someone else, elsewhere, with a good link, joins at once.
  const { ws } = await openSocket('127.0.0.14');
  const welcome = new Promise((r) => ws.on('message', (d) => {
    const m = JSON.parse(String(d));
    if (m.type === 'welcome' || m.type === 'error') r(m);
  }));
  ws.send(JSON.stringify({ type: 'hello', protocol: 1, token: tokenOf(agent.viewerUrl()) }));
  assert.equal((await within(welcome, 5000, {})).type, 'welcome', 'a good hello from another address');
  ws.close();
  await stillPlaying(s0, 'after the bad hellos');
  await inputLands('after the bad hellos');
});
