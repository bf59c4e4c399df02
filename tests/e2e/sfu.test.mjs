// Publishing into an SFU: a real Janus (Debian's package, its own config,
// tests/e2e/janus.mjs) takes oriel's shared encode as one more branch of
// the tee; Chromium viewers watch through Janus (web-client/sfu.html, a
// `--via-sfu` link) while a direct viewer of oriel keeps playing. Janus is
// killed and restarted under a publishing agent; a crashed agent's stale
// publisher is removed with the room secret; the controller starts and
// stops publishing at run time.

import { before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Agent, Harness, ORIEL_BIN, childEnv, sleep, status, waitFor, waitDecoding } from './harness.mjs';
import { JANUS_ROOM, JANUS_SECRET, missingJanus, sfuStatus, startJanus, videoroomRequest } from './janus.mjs';
import { startWhipEndpoint } from './whip-endpoint.mjs';

const h = new Harness('sfu');
const missing = missingJanus();
const skip = missing ? `missing: ${missing.join(', ')}` : false;
let display;
let browser;
let janus;

before(async () => {
  if (missing) return;
  display = await h.startDisplay({ size: '1280x720' });
  janus = await startJanus(h);
  browser = await h.launchBrowser();
});

after(async () => {
  await h.cleanup();
});

// A failed test must not leave its agent publishing: two agents with the
// same publisher id would keep kicking each other out of the room.
afterEach(async () => {
  for (const p of h.procs.filter((p) => p.name === 'oriel')) await h.kill(p);
});

function publishArgs(extra = '') {
  return ['--publish', `janus:${janus.url},room=${JANUS_ROOM}${extra}`, '--janus-secret', JANUS_SECRET];
}

/** The agent's metric samples named `name` whose labels contain `has`. */
async function metric(agent, name, has = '') {
  const samples = Agent.metricSamples(await agent.metrics(), name).filter((s) => s.labels.includes(has));
  return samples.reduce((a, s) => a + s.value, 0);
}

async function waitLive(agent, timeoutMs = 30000) {
  await waitFor(async () => (await metric(agent, 'oriel_publish_state', 'state="live"')) === 1, timeoutMs, 'publish state live');
}

/** A `--via-sfu` viewer page, decoding `minFrames` frames of the desktop. */
async function openSfuViewer(agent, minFrames = 10) {
  const link = agent.createLink({ role: 'viewer', extra: ['--via-sfu'] });
  assert.match(link.url, /\/sfu\.html#token=/, 'a --via-sfu link opens the SFU page');
  const page = await browser.newPage();
  page.on('console', (m) => h.logBrowser(`sfu console.${m.type()}: ${m.text()}`));
  await page.goto(link.url, { waitUntil: 'load' });
  let last;
  await waitFor(async () => {
    last = await sfuStatus(page);
    return last.framesDecoded >= minFrames && last.width > 0;
  }, 30000, `the SFU viewer to decode ${minFrames} frames`).catch((e) => {
    e.message += `; last: ${JSON.stringify(last)}`;
    throw e;
  });
  return { page, status: last };
}

h.test('oriel publishes into Janus: two viewers through Janus and a direct viewer all decode the desktop', { skip }, async () => {
  const agent = await h.startAgent({ display: display.display, args: publishArgs() });
  const direct = await h.openClient(browser, agent);
  const first = await waitDecoding(direct, 30000, 5);
  await waitLive(agent);
  const requested = await metric(agent, 'oriel_keyframes_requested_total');
  const a = await openSfuViewer(agent);
  const b = await openSfuViewer(agent);
  for (const v of [a, b]) {
    assert.equal(v.status.width, 1280, 'the SFU viewer decodes the desktop at its size');
    assert.equal(v.status.height, 720);
  }
  // Janus asks its publisher for a keyframe when a subscriber joins: the
  // request reaches the shared encoder through the same coalescing.
  assert.ok((await metric(agent, 'oriel_keyframes_requested_total')) > requested, 'the SFU asked for keyframes');
  // One encoder for everyone: the publish branch is a peer, not a pipeline.
  assert.equal(await metric(agent, 'oriel_peers'), 2, 'one direct viewer + one publish branch');
  const now = await status(direct);
  assert.equal(now.connects, first.connects, 'the direct viewer kept its session');
  assert.ok(now.framesDecoded > first.framesDecoded + 10, 'the direct viewer keeps decoding');
  // Janus's view: our publisher, with the fixed id, receiving video.
  const list = await videoroomRequest(janus.url, { request: 'listparticipants', room: JANUS_ROOM });
  assert.ok(list.participants.some((p) => p.publisher && p.display === 'oriel'), JSON.stringify(list));
  await Promise.all([a.page.close(), b.page.close(), direct.close()]);
  await h.kill(agent.rec);
});

h.test('Janus is killed and restarted under a publishing agent: publishing comes back, the direct viewer loses no frame', { skip }, async () => {
  const agent = await h.startAgent({ display: display.display, args: publishArgs() });
  const direct = await h.openClient(browser, agent);
  await waitDecoding(direct, 30000, 5);
  await waitLive(agent);
  const sfu = await openSfuViewer(agent, 5);
  const before = await status(direct);
  const encodedBefore = await metric(agent, 'oriel_frames_encoded_total');
  const sessions = await metric(agent, 'oriel_publish_sessions_total');
  const droppedBefore = await metric(agent, 'oriel_client_dropped_packets_total', 'role="viewer"');

  janus.rec.child.kill('SIGKILL');
  await janus.rec.exited;
  await waitFor(async () => (await metric(agent, 'oriel_publish_state', 'state="retrying"')) === 1, 20000, 'the agent to notice Janus is gone');
  await sleep(3000); // Janus stays away a while: retries meet a closed port
  await janus.start();
  await waitFor(async () => (await metric(agent, 'oriel_publish_sessions_total')) > sessions &&
    (await metric(agent, 'oriel_publish_state', 'state="live"')) === 1, 30000, 'publishing to come back by itself');

  // The SFU viewer subscribes again and plays.
  const again = sfu.status.subscriptions;
  await waitFor(async () => {
    const s = await sfuStatus(sfu.page);
    return s.subscriptions > again && s.phase === 'playing' ? s : null;
  }, 30000, 'the SFU viewer to play again');

  // The direct viewer: same connection, every packet sent, decoding all along.
  const after = await status(direct);
  const encoded = (await metric(agent, 'oriel_frames_encoded_total')) - encodedBefore;
  const decoded = after.framesDecoded - before.framesDecoded;
  assert.equal(after.connects, before.connects, 'same WebSocket session');
  assert.equal(after.peerConnections, before.peerConnections, 'same RTCPeerConnection');
  assert.equal(after.pcState, 'connected');
  const dropped = await metric(agent, 'oriel_client_dropped_packets_total', 'role="viewer"');
  assert.equal(dropped - droppedBefore, 0, `no packet of the direct viewer was dropped meanwhile (${droppedBefore} before)`);
  // Decoded counts lag the encoder by the frames in flight at either end.
  assert.ok(decoded >= encoded - 10, `the direct viewer decoded ${decoded} of the ${encoded} frames encoded meanwhile`);
  assert.ok(agent.log.some((l) => /publishing failed: .*Janus/.test(l)), 'the loss is logged');
  await Promise.all([sfu.page.close(), direct.close()]);
  await h.kill(agent.rec);
});

h.test('a crashed agent left its publisher in the room: the next start removes it with the room secret', { skip }, async () => {
  const first = await h.startAgent({ display: display.display, args: publishArgs() });
  await waitLive(first);
  first.rec.child.kill('SIGKILL'); // no chance to leave the room
  await first.rec.exited;
  const t0 = Date.now();
  const second = await h.startAgent({ display: display.display, args: publishArgs(), stateDir: first.stateDir });
  await waitLive(second);
  const took = Date.now() - t0;
  assert.ok(second.log.some((l) => /removing the stale publisher/.test(l)), 'the stale publisher was kicked');
  // Janus would have freed the slot only after its 60 s session timeout.
  assert.ok(took < 30000, `live again after ${took} ms`);
  await h.kill(second.rec);
});

h.test('the controller starts and stops publishing at run time; a viewer may not', { skip }, async () => {
  const agent = await h.startAgent({ display: display.display, args: publishArgs(',start=manual') });
  const api = (token, body) => fetch(`${agent.url}api/control`, {
    method: body ? 'POST' : 'GET',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const controller = new URL(agent.controllerUrl).hash.match(/token=([^&]+)/)[1];
  const viewer = agent.createLink({ role: 'viewer' }).token;
  assert.equal((await metric(agent, 'oriel_publish_state', 'state="stopped"')), 1, 'start=manual waits');
  assert.equal((await api(viewer, { publish: { on: true } })).status, 403, 'a viewer cannot start publishing');
  assert.equal((await api('forged', { publish: { on: true } })).status, 401);
  const bad = await api(controller, { publish: { on: 'yes' } });
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error, /expected/);
  assert.equal(await metric(agent, 'oriel_control_refused_total'), 1, 'the malformed request is counted');

  // The CLI uses the same endpoint with the controller link kept in the state directory.
  const cli = (...args) => spawnSync(ORIEL_BIN, ['publish', ...args, '--url', agent.url, '--state-dir', agent.stateDir], { encoding: 'utf8', env: childEnv() });
  const started = cli('start');
  assert.equal(started.status, 0, started.stderr);
  await waitLive(agent);
  assert.ok(agent.log.some((l) => /publishing started.*by="controller \(oriel CLI\)"/.test(l)), "who started it is logged");
  // The controller's page shows the target live and stops it with a click.
  const page = await h.openClient(browser, agent, agent.controllerUrl);
  await waitDecoding(page, 30000, 5);
  await waitFor(async () => (await status(page)).control?.publish?.[0]?.state === 'live', 10000, 'the page to show publishing live');
  await page.click('#control button[data-what="publish"]');
  await waitFor(async () => (await metric(agent, 'oriel_publish_state', 'state="stopped"')) === 1, 10000, 'stopped');
  await waitFor(async () => (await status(page)).control?.publish?.[0]?.state === 'stopped', 10000, 'the page to show it stopped');
  // A viewer's page has no such panel.
  const viewerPage = await h.openClient(browser, agent);
  await waitDecoding(viewerPage, 30000, 1);
  assert.equal((await status(viewerPage)).control, null, 'no broadcast panel for a viewer');
  await viewerPage.close();
  const direct = page;
  const list = await videoroomRequest(janus.url, { request: 'listparticipants', room: JANUS_ROOM });
  assert.ok(!list.participants.some((p) => p.publisher), `the publisher left the room: ${JSON.stringify(list)}`);
  const unknown = cli('start', 'nope');
  assert.notEqual(unknown.status, 0);
  assert.match(unknown.stderr, /no publish target `nope` \(configured: janus\)/);
  await direct.close();
  await h.kill(agent.rec);
});

h.test('WHIP: the endpoint takes the POSTed offer and receives media; its SFU dies and returns: publishing comes back; DELETE on stop; a 401 is reported clearly', { skip }, async () => {
  const whip = await startWhipEndpoint({ janusUrl: janus.url, room: JANUS_ROOM, feed: 7777, token: 'whip-e2e-token' });
  h.cleanups.push(() => whip.close());
  const agent = await h.startAgent({
    display: display.display,
    args: ['--publish', `whip:${whip.url},name=edge`, '--whip-token', 'whip-e2e-token'],
  });
  await waitLive(agent);
  await waitFor(() => whip.mediaReceived(), 20000, 'Janus (behind the WHIP endpoint) to report media received');
  const [resource] = whip.state.resources.values();
  assert.ok(resource.candidates > 0, 'the offer carried the candidates gathered before the POST');
  // WHIP has no session to watch: when the SFU behind it dies, oriel
  // notices by its RTCP going silent, and publishes again once it is back.
  const sessions = await metric(agent, 'oriel_publish_sessions_total');
  const created = whip.created();
  janus.rec.child.kill('SIGKILL');
  await janus.rec.exited;
  await h.waitForLog(agent.rec, /no RTCP from the receiver for \d+ s: it is gone/, 30000, 'the silent SFU noticed');
  await janus.start();
  await waitFor(async () => (await metric(agent, 'oriel_publish_sessions_total')) > sessions &&
    (await metric(agent, 'oriel_publish_state', 'state="live"')) === 1, 30000, 'publishing through WHIP again');
  await waitFor(() => whip.mediaReceived(created), 20000, 'the restarted Janus to report media received on a new resource');
  const deletes = whip.state.deletes;
  const controller = new URL(agent.controllerUrl).hash.match(/token=([^&]+)/)[1];
  const stop = await fetch(`${agent.url}api/control`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${controller}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ publish: { target: 'edge', on: false } }),
  });
  assert.equal(stop.status, 200);
  await waitFor(() => whip.state.deletes === deletes + 1, 10000, 'DELETE of the WHIP resource');
  assert.ok(!agent.log.some((l) => /whip-e2e-token/.test(l)), 'the token is never logged');
  await h.kill(agent.rec);

  // The wrong token: refused, said so in the log and in /api/control, retried with backoff.
  const refused = await h.startAgent({
    display: display.display,
    args: ['--publish', `whip:${whip.url},name=edge`, '--whip-token', 'wrong'],
  });
  await h.waitForLog(refused.rec, /the WHIP endpoint refused the offer: HTTP 401 Unauthorized \(check --whip-token\): invalid token/, 15000, 'the refusal in the log');
  await waitFor(async () => (await metric(refused, 'oriel_publish_failures_total')) >= 2, 15000, 'retries');
  const status = await (await fetch(`${refused.url}api/control`, { headers: { Authorization: `Bearer ${new URL(refused.controllerUrl).hash.match(/token=([^&]+)/)[1]}` } })).json();
  assert.match(status.publish[0].error, /HTTP 401/);
  assert.ok(['retrying', 'connecting'].includes(status.publish[0].state), JSON.stringify(status));
  // Direct viewers do not care.
  const page = await h.openClient(browser, refused);
  await waitDecoding(page, 30000, 5);
  await page.close();
  await h.kill(refused.rec);
});
