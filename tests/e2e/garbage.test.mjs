// A hostile or buggy client on the signalling socket: every bad message gets
// the error code docs/protocol.md names, the socket stays up, and a real
// viewer on the same agent never notices.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { Harness, Agent, waitFor, within, waitDecoding, waitFramesGrow, tokenOf } from './harness.mjs';

const h = new Harness('garbage');
let agent;
let browser;

before(async () => {
  const { display } = await h.startDisplay();
  agent = await h.startAgent({ display, capture: 'x11' });
  browser = await h.launchBrowser();
});
after(() => h.cleanup());

/** A raw signalling client that queues every message it receives. */
async function rawClient(url, origin) {
  const ws = new WebSocket(url, { origin, maxPayload: 4 * 1024 * 1024 });
  const inbox = [];
  const waiters = [];
  ws.seen = []; // types in arrival order
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  ws.on('message', (data, isBinary) => {
    let msg;
    try {
      msg = isBinary ? { type: '<binary>' } : JSON.parse(String(data));
    } catch {
      msg = { type: '<not json>', raw: String(data) };
    }
    inbox.push(msg);
    ws.seen.push(msg.type);
    for (const w of waiters.splice(0)) w();
  });
  ws.on('error', () => {}); // surfaced through 'close'
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  /** Next message whose type is in `types`; others (welcome, offer, ice...) are kept aside. */
  ws.next = async (types, timeoutMs = 5000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = inbox.findIndex((m) => types.includes(m.type));
      if (i >= 0) return inbox.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no ${types.join('/')} within ${timeoutMs} ms; got ${JSON.stringify(inbox.map((m) => m.type))}`);
      }
      await new Promise((r) => {
        const t = setTimeout(r, left);
        waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  };
  ws.inbox = inbox;
  return ws;
}

function sendRaw(ws, data, opts = {}) {
  return new Promise((resolve, reject) => ws.send(data, opts, (e) => (e ? reject(e) : resolve())));
}

h.test('malformed signalling gets error replies; the socket and other viewers live on', async () => {
  const page = await h.openClient(browser, agent);
  const origin = new URL(agent.url).origin;
  const s0 = await waitDecoding(page, 20000);

  const ws = await rawClient(agent.wsUrl, origin);
  const token = tokenOf(agent.viewerUrl());
  const hello = (extra = {}) => JSON.stringify({ type: 'hello', protocol: 1, token, ...extra });
  const cases = [
    ['not JSON', '{"type": "hello", protocol', 'malformed'],
    ['a JSON array', '[{"type":"hello","protocol":1}]', 'malformed'],
    ['a JSON string', '"hello"', 'malformed'],
    ['an unknown type', '{"type":"frobnicate"}', 'unknownType'],
    ['no type at all', '{"protocol":1}', 'unknownType'],
    ['hello with a string protocol', hello({ protocol: '1' }), 'malformed'],
    ['hello without a token', '{"type":"hello","protocol":1}', 'malformed'],
    ['a 100 KiB text frame', JSON.stringify({ type: 'ping', pad: 'x'.repeat(100 * 1024) }), 'tooLarge'],
    ['a binary frame', Buffer.from([0x7b, 0x7d, 0x00, 0xff]), 'binary'],
    ['answer before hello', '{"type":"answer","sdp":"v=0\\r\\n"}', 'unexpected'],
    ['hello with protocol 99', hello({ protocol: 99 }), 'unsupportedProtocol'],
  ];
  for (const [what, data, code] of cases) {
    await sendRaw(ws, data, { binary: Buffer.isBuffer(data) });
    const err = await ws.next(['error'], 5000).catch((e) => {
      throw new Error(`${what}: ${e.message}`);
    });
    assert.equal(err.code, code, `${what}: error code (message: ${err.message})`);
    assert.equal(typeof err.message, 'string', `${what}: error has a message`);
    assert.equal(ws.readyState, WebSocket.OPEN, `${what}: socket stays open`);
  }

  // The viewer decodes while this happens.
  const sMid = await waitFramesGrow(page, s0, 10, 10000);

  // A forged or empty token is refused: error, then bye, then the socket closes.
  for (const [what, bad] of [['forged token', `${token.split('.')[0]}.AAAA`], ['empty token', '']]) {
    const forged = await rawClient(agent.wsUrl, origin);
    await sendRaw(forged, hello({ token: bad }));
    const refused = await forged.next(['error'], 5000);
    assert.equal(refused.code, 'unauthorized', `${what}: ${JSON.stringify(refused)}`);
    const bye = await forged.next(['bye'], 5000);
    assert.equal(typeof bye.reason, 'string', `${what}: bye has a reason`);
    assert.ok(await within(forged.closed, 5000, null), `${what}: refused socket closed`);
    assert.deepEqual(forged.seen, ['error', 'bye'], `${what}: error, then bye, nothing else`);
  }

  // A proper join works on the same socket after all that...
  await sendRaw(ws, hello());
  const welcome = await ws.next(['welcome', 'error'], 10000);
  assert.equal(welcome.type, 'welcome', `hello after garbage: ${JSON.stringify(welcome)}`);
  assert.equal(typeof welcome.peerId, 'number');
  const offer = await ws.next(['offer'], 10000);
  assert.match(offer.sdp, /^v=0/);

  // ...and then misuse of a joined session is refused too.
  const joined = [
    ['a second hello', hello(), 'unexpected'],
    ['ice with wrongly typed fields', '{"type":"ice","candidate":42,"sdpMLineIndex":"zero"}', 'malformed'],
    ['answer without sdp', '{"type":"answer"}', 'malformed'],
  ];
  for (const [what, data, code] of joined) {
    await sendRaw(ws, data);
    const err = await ws.next(['error'], 5000).catch((e) => {
      throw new Error(`${what}: ${e.message}`);
    });
    assert.equal(err.code, code, `${what}: error code (message: ${err.message})`);
    assert.equal(ws.readyState, WebSocket.OPEN, `${what}: socket stays open`);
  }
  await sendRaw(ws, '{"type":"ping"}');
  await ws.next(['pong'], 5000);

  // A frame above 128 KiB (here 1.1 MiB) closes that socket with 1009 (message too big)...
  const big = await rawClient(agent.wsUrl, origin);
  await sendRaw(big, JSON.stringify({ type: 'ping', pad: 'y'.repeat(1100 * 1024) })).catch(() => {});
  const closed = await within(big.closed, 5000, null);
  assert.ok(closed, 'socket closed within 5 s after a 1.1 MiB frame');
  assert.equal(closed.code, 1009, `close code after a 1.1 MiB frame (reason: ${closed.reason})`);

  // ...and only that one: the garbage socket still answers, the viewer still plays.
  assert.ok(agent.alive, 'agent alive');
  assert.equal(ws.readyState, WebSocket.OPEN, 'the other raw socket is still open');
  await sendRaw(ws, '{"type":"ping"}');
  await ws.next(['pong'], 5000);
  await waitFramesGrow(page, sMid, 10, 10000);
  const hz = await agent.healthz();
  assert.equal(hz.status, 'ok');

  // Errors are counted by code.
  const samples = Agent.metricSamples(await agent.metrics(), 'oriel_signalling_errors_total');
  const total = samples.reduce((a, s) => a + s.value, 0);
  assert.ok(total > 0, `oriel_signalling_errors_total > 0 (samples: ${JSON.stringify(samples)})`);
  assert.ok(
    samples.some((s) => /code="malformed"/.test(s.labels) && s.value > 0),
    `a code="malformed" sample (samples: ${JSON.stringify(samples)})`,
  );

  ws.close();
  await page.close();
  await waitFor(async () => {
    const v = await agent.healthz();
    return v.clients === 0 && v.peers === 0;
  }, 10000, '/healthz clients and peers back to 0');
});
