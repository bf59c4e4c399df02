// The benchmarks' lightweight receiver (examples/bench_receiver) against a
// real agent: viewers join, get their first frame, keep receiving frames,
// leave with bye, and the process exits cleanly. The cost-per-viewer, time
// to first frame and churn benchmarks count on exactly this.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import { Harness, REPO_ROOT, freePort, sleep, waitFor, within } from './harness.mjs';

const RECEIVER = process.env.BENCH_RECEIVER ?? path.join(REPO_ROOT, 'target/debug/examples/bench_receiver');

const h = new Harness('bench-receiver');
let agent;

before(async () => {
  const { display } = await h.startDisplay();
  agent = await h.startAgent({ display, capture: 'x11' });
});
after(() => h.cleanup());

/** bench_receiver with stdin/stdout piped; events parsed, killed by cleanup. */
function startReceiver(link) {
  if (!fs.existsSync(RECEIVER)) throw new Error(`bench_receiver missing: ${RECEIVER} (cargo build --examples)`);
  const child = spawn(RECEIVER, ['--link', link, '--name', 'e2e'], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  const rx = { child, events: [], stderr: [], exit: null };
  rx.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve((rx.exit = { code, signal }))));
  h.cleanups.push(async () => {
    if (rx.exit) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    out += d;
    let i;
    while ((i = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, i);
      out = out.slice(i + 1);
      h.logBrowser(`bench_receiver stdout: ${line}`);
      try {
        rx.events.push(JSON.parse(line));
      } catch {
        rx.events.push({ event: 'NOT JSON', line });
      }
    }
  });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    err += d;
    let i;
    while ((i = err.indexOf('\n')) >= 0) {
      h.logBrowser(`bench_receiver stderr: ${err.slice(0, i)}`);
      err = err.slice(i + 1);
    }
  });
  rx.send = (cmd) => child.stdin.write(`${cmd}\n`);
  rx.find = (pred) => rx.events.find(pred);
  rx.wait = (pred, ms, what) => waitFor(() => rx.find(pred), ms, what, 50);
  rx.stats = async () => {
    const n = rx.events.filter((e) => e.event === 'stats').length;
    rx.send('stats');
    await waitFor(() => rx.events.filter((e) => e.event === 'stats').length > n, 5000, 'a stats line', 20);
    const s = rx.events.filter((e) => e.event === 'stats')[n];
    return new Map(s.viewers.map((v) => [v.id, v]));
  };
  return rx;
}

h.test('bench_receiver: three viewers join, receive frames continuously, leave and quit cleanly', async () => {
  const rx = startReceiver(agent.viewerUrl());
  await rx.wait((e) => e.event === 'ready', 10000, 'ready');
  rx.send('add 3');
  for (const id of [1, 2, 3]) {
    const joined = await rx.wait((e) => e.event === 'joined' && e.id === id, 15000, `viewer ${id} joined`);
    assert.ok(Number.isInteger(joined.peerId) && joined.ms >= 0, JSON.stringify(joined));
    await rx.wait((e) => e.event === 'connected' && e.id === id, 15000, `viewer ${id} connected`);
    const ff = await rx.wait((e) => e.event === 'first_frame' && e.id === id, 15000, `viewer ${id} first frame`);
    assert.ok(ff.ms >= joined.ms, `first frame after joining: ${JSON.stringify([joined, ff])}`);
  }
  assert.deepEqual(rx.events.filter((e) => e.event === 'error'), [], 'no error events');
  const peers = new Set(rx.events.filter((e) => e.event === 'joined').map((e) => e.peerId));
  assert.equal(peers.size, 3, 'three distinct agent peers');
  await waitFor(async () => (await agent.healthz()).clients === 3, 5000, '/healthz clients = 3');

  // Frames keep coming to every viewer: about 30 fps from the agent, so 2 s
  // must bring well over 20 frames each (fails if any viewer stalls).
  const s1 = await rx.stats();
  await sleep(2000);
  const s2 = await rx.stats();
  for (const id of [1, 2, 3]) {
    const a = s1.get(id);
    const b = s2.get(id);
    assert.ok(a && b, `viewer ${id} in both stats lines`);
    assert.equal(b.state, 'connected', `viewer ${id} state`);
    assert.ok(b.frames - a.frames >= 20, `viewer ${id}: frames ${a.frames} -> ${b.frames} in 2 s`);
    assert.ok(b.packets - a.packets >= b.frames - a.frames, `viewer ${id}: packets >= frames`);
    assert.ok(b.bytes > a.bytes, `viewer ${id}: bytes grow`);
    assert.ok(Number.isInteger(b.incomplete) && Number.isInteger(b.lost), `viewer ${id}: incomplete and lost counted: ${JSON.stringify(b)}`);
  }

  rx.send('remove 1');
  await rx.wait((e) => e.event === 'left' && e.id === 3, 10000, 'the newest viewer (3) left');
  await waitFor(async () => (await agent.healthz()).clients === 2, 5000, '/healthz clients = 2 after remove 1');
  const s3 = await rx.stats();
  assert.deepEqual([...s3.keys()].sort(), [1, 2], 'stats lists the remaining viewers');

  rx.send('quit');
  const exit = await within(rx.exited, 15000, 'timeout');
  assert.deepEqual(exit, { code: 0, signal: null }, 'quit exits 0');
  for (const id of [1, 2]) assert.ok(rx.find((e) => e.event === 'left' && e.id === id), `viewer ${id} left on quit`);
  await waitFor(async () => (await agent.healthz()).clients === 0, 5000, '/healthz clients = 0 after quit');
  assert.ok(agent.alive, 'the agent lives');
});

h.test('bench_receiver: a refused viewer is an error event, the process goes on', async () => {
  const link = agent.viewerUrl().replace(/#token=.*/, '#token=forged.token');
  const rx = startReceiver(link);
  await rx.wait((e) => e.event === 'ready', 10000, 'ready');
  rx.send('add 1');
  const err = await rx.wait((e) => e.event === 'error' && e.id === 1 && e.fatal, 10000, 'a fatal error for viewer 1');
  assert.match(err.message, /unauthorized|bye/, err.message);
  const s = await rx.stats();
  assert.equal(s.get(1)?.state, 'failed');
  rx.send('quit');
  const exit = await within(rx.exited, 10000, 'timeout');
  assert.deepEqual(exit, { code: 0, signal: null }, 'quit exits 0');
});

h.test('bench_receiver: garbage from the agent side is reported per viewer, never a crash', async () => {
  // Not the agent: a socket that answers hello with everything a broken or
  // future agent might send, to check the receiver survives it.
  const port = await freePort();
  const wss = new WebSocketServer({ host: '127.0.0.1', port, path: '/ws' });
  h.cleanups.push(() => new Promise((r) => wss.close(() => r())));
  wss.on('connection', (sock) => {
    sock.on('message', (data) => {
      const m = JSON.parse(String(data));
      if (m.type !== 'hello') return;
      sock.send('not json at all');
      sock.send(JSON.stringify({ type: 'launchMissiles' }));
      sock.send(JSON.stringify({ type: 'welcome', peerId: 'seven' }));
      sock.send(Buffer.from([1, 2, 3]), { binary: true });
      sock.send(JSON.stringify({ type: 'ice', candidate: 'candidate:1 1 UDP 1 127.0.0.1 9 typ host', sdpMLineIndex: 0 }));
      sock.send(JSON.stringify({ type: 'offer', sdp: 'v=0 this is not SDP' }));
    });
  });
  const rx = startReceiver(`http://127.0.0.1:${port}/#token=whatever`);
  await rx.wait((e) => e.event === 'ready', 10000, 'ready');
  rx.send('add 2');
  for (const id of [1, 2]) {
    await rx.wait((e) => e.event === 'error' && e.id === id && e.fatal, 15000, `viewer ${id} fails on the bad offer`);
    const survived = rx.events.filter((e) => e.event === 'error' && e.id === id && !e.fatal);
    assert.ok(survived.length >= 3, `non-fatal errors for the unparsable messages of viewer ${id}: ${JSON.stringify(survived)}`);
  }
  const s = await rx.stats();
  assert.deepEqual([...s.values()].map((v) => v.state), ['failed', 'failed']);
  rx.send('quit');
  const exit = await within(rx.exited, 10000, 'timeout');
  assert.deepEqual(exit, { code: 0, signal: null }, 'quit exits 0');
});
