// What a viewer sees: the desktop at its real size, several viewers at once,
// a late joiner's first frame, and one viewer leaving without hurting another.
// One Xvfb + agent + Chromium for the whole file; each test closes its pages.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, Harness, status, waitFor, waitDecoding, waitFramesGrow, sleep } from './harness.mjs';

const h = new Harness('playback');
let agent;
let browser;

before(async () => {
  const { display } = await h.startDisplay();
  agent = await h.startAgent({ display, capture: 'x11' });
  browser = await h.launchBrowser();
});
after(() => h.cleanup());

/** Before each test: no leftovers from the previous one. */
async function idle() {
  await waitFor(
    async () => {
      const hz = await agent.healthz();
      return hz.peers === 0 && hz.clients === 0 ? hz : null;
    },
    10000,
    '/healthz clients and peers back to 0',
  );
}

async function closeAll(pages) {
  for (const p of pages) await p.close().catch(() => {});
}

h.test('one client decodes frames at the captured resolution', async () => {
  await idle();
  const page = await h.openClient(browser, agent);
  try {
    const first = await waitDecoding(page, 20000);
    assert.equal(first.width, 1280, 'video width');
    assert.equal(first.height, 720, 'video height');
    assert.equal(first.ws, 'open');
    assert.equal(typeof first.peerId, 'number');
    const later = await waitFramesGrow(page, first, 30, 15000);
    assert.ok(later.framesPresented > 0, 'frames reach the screen (requestVideoFrameCallback)');
    assert.ok(later.keyFramesDecoded >= 1, 'at least one keyframe decoded');
    assert.equal(later.pcState, 'connected');
    // The banner is gone once video plays.
    assert.equal(await page.locator('#banner').isVisible(), false, 'status banner hidden while playing');
    const hz = await agent.healthz();
    assert.equal(hz.status, 'ok');
    assert.equal(hz.pipeline, 'playing');
    assert.equal(hz.clients, 1);
    assert.equal(hz.peers, 1);
  } finally {
    await closeAll([page]);
  }
});

h.test('two clients at once both decode', async () => {
  await idle();
  const pages = [await h.openClient(browser, agent), await h.openClient(browser, agent)];
  try {
    const firsts = await Promise.all(pages.map((p) => waitDecoding(p, 20000)));
    assert.notEqual(firsts[0].peerId, firsts[1].peerId, 'distinct peer ids');
    const laters = await Promise.all(pages.map((p, i) => waitFramesGrow(p, firsts[i], 30, 15000)));
    for (const s of laters) {
      assert.equal(s.width, 1280);
      assert.equal(s.height, 720);
    }
    const hz = await agent.healthz();
    assert.equal(hz.clients, 2);
    assert.equal(hz.peers, 2);

    // /metrics tells the same story: one encode, two clients each sent
    // their own bytes, counted by role.
    const text = await agent.metrics();
    const one = (name, labels = '') =>
      Agent.metricSamples(text, name).find((s) => s.labels === labels)?.value;
    const encoded = one('oriel_frames_encoded_total');
    assert.ok(encoded >= Math.max(...laters.map((s) => s.framesDecoded)), `frames encoded (${encoded}) cover what each client decoded`);
    assert.ok(one('oriel_frames_captured_total') >= encoded, 'captured >= encoded');
    // Each stage of the one encode, as time since capture at three points,
    // and to the clients' sockets (after their queues, webrtcbin, SRTP).
    // The three encode stages time the same frames, so their medians are
    // ordered. The sockets' window holds only frames that reached a socket:
    // the first frames, payloaded while a client's DTLS was still being set
    // up and the slowest of the encoder's warm-up, are not in it, so its
    // median can sit below the payloader's (CI saw 8.8 ms against 9.8 ms);
    // it is still later than conversion.
    const stage = (name) => one(`oriel_capture_to_${name}_seconds`, '{quantile="0.5"}');
    const [converted, enc, payloaded, sent] = ['converted', 'encoded', 'payloaded', 'sent'].map(stage);
    assert.ok(converted > 0 && converted <= enc && enc <= payloaded && converted <= sent && sent < 1,
      `capture->converted ${converted} <= ->encoded ${enc} <= ->payloaded ${payloaded}; ->sent ${sent} s (p50)`);
    assert.ok(one('oriel_capture_to_sent_seconds_count') >= laters.reduce((n, s) => n + s.framesDecoded, 0) * 0.9,
      'every client\'s frames are timed to its socket');
    const role = laters[0].role;
    assert.equal(one('oriel_clients_by_role', `{role="${role}"}`), 2, `two ${role}s`);
    for (const s of laters) {
      const bytes = one('oriel_client_sent_bytes_total', `{peer="${s.peerId}",role="${role}"}`);
      assert.ok(bytes > 10000, `client ${s.peerId} was sent ${bytes} bytes`);
      assert.equal(one('oriel_client_dropped_packets_total', `{peer="${s.peerId}",role="${role}"}`) >= 0, true);
    }
  } finally {
    await closeAll(pages);
  }
});

h.test('a late joiner gets its first frame within 1 s of its WebSocket opening', async () => {
  await idle();
  const early = await h.openClient(browser, agent);
  let late;
  try {
    const s0 = await waitDecoding(early, 20000);
    // Let the first viewer settle into steady state (past its first keyframe).
    await waitFramesGrow(early, s0, 30, 15000);
    late = await h.openClient(browser, agent);
    const s = await waitDecoding(late, 20000);
    const st = await waitFor(
      async () => {
        const v = await status(late);
        return v.firstFrameSinceConnectMs !== null ? v : null;
      },
      5000,
      'firstFrameSinceConnectMs',
    );
    assert.equal(s.width, 1280);
    assert.ok(
      st.firstFrameSinceConnectMs < 1000,
      `late joiner first frame ${st.firstFrameSinceConnectMs.toFixed(0)} ms after WebSocket open (want < 1000)`,
    );
  } finally {
    await closeAll([early, late].filter(Boolean));
  }
});

h.test('when one client leaves, the other keeps decoding', async () => {
  await idle();
  const stay = await h.openClient(browser, agent);
  const leave = await h.openClient(browser, agent);
  try {
    await Promise.all([waitDecoding(stay, 20000), waitDecoding(leave, 20000)]);
    await waitFor(async () => (await agent.healthz()).peers === 2, 10000, '/healthz peers 2');
    await leave.close();
    const before = await status(stay);
    await waitFor(async () => (await agent.healthz()).peers === 1, 10000, '/healthz peers to drop to 1');
    const s = await waitFramesGrow(stay, before, 10, 10000);
    // And it keeps going a while later (no stall after the branch removal).
    await sleep(1000);
    await waitFramesGrow(stay, s, 10, 10000);
    const hz = await agent.healthz();
    assert.equal(hz.peers, 1);
    assert.equal(hz.clients, 1);
  } finally {
    await closeAll([stay, leave]);
  }
});
