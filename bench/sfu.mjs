#!/usr/bin/env node
// oriel benchmark part `sfu`: what one more viewer costs when it watches
// oriel directly, against what it costs Janus when it subscribes to oriel's
// publisher in a Janus VideoRoom, measured in one run on the same capture,
// the same encode and the same receivers; only the server in front of them
// differs.
//
//   cd bench && node sfu.mjs      (or `make bench-sfu`)
//
// What it does, unattended (about 5 minutes on a 2-core machine):
//   1. Xvfb with full-screen moving content (scrolling SMPTE bars + clock,
//      BENCH_SCENE=bars), a private Janus (Debian's package, the SFU tests'
//      config templates tests/janus/*.in: HTTP API on a free loopback port,
//      one room), and the agent on the display at 720p30, default bitrate,
//      publishing its shared encode into that room
//      (`--publish janus:URL,room=N --janus-secret S`) from start to end.
//   2. Two bench_receiver processes (examples/bench_receiver: webrtcbin into
//      fakesink, no decoding, whole frames counted by RTP marker bit and
//      sequence numbers): one with `--link` (direct viewers of oriel), one
//      with `--janus` (subscribers of oriel's publisher through Janus's HTTP
//      API, like web-client/sfu.js).
//   3. For n = 0, 1, 2, 4, 8, 16, each side in turn (direct first at even
//      steps, via Janus first at odd ones, to balance drift), with only that
//      side's n viewers connected: after settling, over a window, from /proc:
//      CPU (utime+stime, % of one core) of the oriel process and of the
//      janus process, their RSS and threads (sampled every second, medians);
//      frames each viewer received against the frames oriel encoded
//      (oriel_frames_encoded_total) over the same window; the receivers' and
//      the machine's CPU for context. Larger n are skipped (for both sides)
//      once either side loses the frame rate: the machine cannot keep up.
//   4. The publish branch: with one direct viewer, windows with publishing
//      stopped and started again (`oriel publish stop|start`), alternating,
//      BENCH_SFU_PUBLISH_ROUNDS (2) pairs: oriel's CPU with the branch minus
//      without, and Janus's CPU with a publisher minus idle.
//   5. Least-squares marginal CPU per added viewer over n = 0..16: oriel per
//      direct viewer, Janus per subscriber, and their ratio; the cross terms
//      (oriel per Janus subscriber, Janus per direct viewer) as a check.
//
// Knobs (environment): ORIEL_BIN, BENCH_RECEIVER, BENCH_SFU_VIEWERS
// ("0,1,2,4,8,16"), BENCH_SFU_PUBLISH_ROUNDS (2), BENCH_SFU_MIN_FPS_SHARE
// (0.8: a window below this share of the frame rate, encoded or delivered
// to the median viewer, stops the stepping), BENCH_WINDOW_MS (15000 for
// this part), BENCH_SETTLE_MS (3000), BENCH_FRAME_SLACK (2, as in
// `viewers`), BENCH_SCENE (bars|ball), BENCH_NO_MARKDOWN=1,
// BENCH_TIMEOUT_MS (900000 for this part), BENCH_AGENT_ARGS.

import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  CFG, agentInfo, children, envNum, fmt, log, machineInfo, median, procCpuSec, procStatus, round1, sh, sleep, startAgent,
  startDisplay, sysCpu, waitFor,
} from './lib/harness.mjs';
import { JANUS_ROOM, JANUS_SECRET, janusVersion, missingJanus, startJanus, videoroomRequest } from './lib/janus.mjs';
import { isMain, noteAgentWarnings, readingAndOddities, runPart, saveAgentLog } from './lib/run.mjs';
import { Receivers, receiverErrorsNote } from './lib/receiver.mjs';
import { fdCount, linearFit } from './viewers.mjs';

const STEPS = (process.env.BENCH_SFU_VIEWERS || '0,1,2,4,8,16').split(',').map(Number);
const PUBLISH_ROUNDS = envNum('BENCH_SFU_PUBLISH_ROUNDS', 2);
const MIN_FPS_SHARE = envNum('BENCH_SFU_MIN_FPS_SHARE', 0.8);
const FRAME_SLACK = envNum('BENCH_FRAME_SLACK', 2);
const SIDES = ['direct', 'sfu'];
const SIDE_NAME = { direct: 'direct to oriel', sfu: 'via Janus' };
// oriel's publisher id in the room: src/publish/target.rs DEFAULT_JANUS_ID.
const FEED = 4242001;

// Longer windows than the other parts: Janus's and oriel's per-viewer costs
// are a few % of a core each, and a 2-core machine shared with other work
// is noisy.
if (process.env.BENCH_WINDOW_MS === undefined) CFG.windowMs = 15000;
if (process.env.BENCH_TIMEOUT_MS === undefined) CFG.timeoutMs = 900000;

// ------------------------------------------------------------ helpers

/** Labelled samples of `name` in Agent.metrics() output whose labels contain `has`, summed. */
function sumOf(m, name, has = '') {
  let sum = 0;
  for (const [k, v] of Object.entries(m)) if ((k === name || k.startsWith(`${name}{`)) && k.includes(has)) sum += v;
  return sum;
}

/** Per-peer values of a labelled family: {peer: value}, only peers whose labels contain `has`. */
function byPeer(m, name, has = '') {
  const out = {};
  for (const [k, v] of Object.entries(m)) {
    if (!k.startsWith(`${name}{`) || !k.includes(has)) continue;
    out[Number((k.match(/peer="(\d+)"/) || [])[1])] = v;
  }
  return out;
}

const publishLive = async (agent) => sumOf(await agent.metrics(), 'oriel_publish_state', 'state="live"') === 1;

/** `oriel publish start|stop` against the running agent, as its controller. */
function publishControl(agent, action) {
  const r = spawnSync(CFG.bin, ['publish', action, '--url', agent.url, '--state-dir', agent.stateDir], { encoding: 'utf8', timeout: 20000 });
  if (r.status !== 0) throw new Error(`oriel publish ${action} failed: ${r.stderr}`);
}

/** Sets publishing on or off and waits until the agent and Janus agree. */
async function setPublishing(agent, janus, on) {
  publishControl(agent, on ? 'start' : 'stop');
  await waitFor(async () => {
    const m = await agent.metrics();
    const live = sumOf(m, 'oriel_publish_state', 'state="live"') === 1;
    const stopped = sumOf(m, 'oriel_publish_state', 'state="stopped"') === 1;
    if (on ? !live : !stopped) return false;
    // Janus's own view: our publisher in the room, or gone from it.
    const list = await videoroomRequest(janus.url, { request: 'listparticipants', room: JANUS_ROOM });
    const present = (list.participants ?? []).some((p) => p.id === FEED && p.publisher);
    return on === present;
  }, 30000, `publishing ${on ? 'live' : 'stopped'} (agent and Janus)`, 250);
}

// -------------------------------------------------------- measurement

/** Frames the receivers of `rx` got between two stats snapshots, per viewer. */
function viewerFrames(rx, a, b, encoded, slack, agentSent) {
  return rx.alive.map((id) => {
    const x = a.viewers.get(id);
    const y = b.viewers.get(id);
    const d = (k) => (x && y ? (y[k] ?? 0) - (x[k] ?? 0) : null);
    const v = {
      id, peerId: rx.viewers.get(id)?.peerId ?? null, frames: d('frames'), incompleteFrames: d('incomplete'),
      packetsLost: d('lost'), packets: d('packets'), bytes: d('bytes'), state: y?.state ?? 'missing',
    };
    v.deficit = v.frames === null ? null : encoded - v.frames;
    v.gotEveryFrame = v.frames !== null && v.deficit <= slack;
    // Packets oriel handed this viewer's branch (direct), or the publish
    // branch (via Janus: Janus forwards that one stream), minus what arrived.
    const sent = agentSent(v);
    v.agentSentPackets = sent ?? null;
    v.packetDeficit = sent !== undefined && sent !== null && v.packets !== null ? sent - v.packets : null;
    return v;
  });
}

/**
 * One window: `side` ('direct', 'sfu' or 'publish') with `n` viewers of
 * `rx` (null: none), publishing `on` or not. oriel and Janus measured alike.
 */
async function measure(ctx, { side, n, rx, on, label }) {
  const { agent, janus, rxs } = ctx;
  const direct = side === 'sfu' ? 0 : n;
  await waitFor(async () => {
    const h = await agent.healthz();
    return h.clients === direct && h.peers === direct + (on ? 1 : 0) && h.pipeline === 'playing';
  }, 30000, `/healthz clients=${direct} peers=${direct + (on ? 1 : 0)} playing`, 100);
  await sleep(CFG.settleMs);
  if (!agent.alive) throw new Error('the agent died');
  if (janus.rec.exitCode !== undefined) throw new Error('Janus died');
  const helperPids = children.filter((r) => ['Xvfb', 'mover'].includes(r.name) && r.exitCode === undefined).map((r) => r.child.pid);
  const procs = { oriel: agent.pid, janus: janus.pid };

  // The agent's counters and the viewers' asked for at the same moment; how
  // long the snapshot took bounds how far apart they can be.
  const snap = async () => {
    const t = performance.now();
    const [m, s] = await Promise.all([agent.metrics(), rx && n ? rx.stats() : null]);
    return { m, s, t, ms: performance.now() - t };
  };
  const cpuNow = () => ({
    oriel: procCpuSec(procs.oriel), janus: procCpuSec(procs.janus), rx: rxs.reduce((s, r) => s + r.cpuSec(), 0),
    helpers: helperPids.reduce((s, p) => s + procCpuSec(p), 0), sys: sysCpu(), t: performance.now(),
  });
  const a = await snap();
  const c0 = cpuNow();
  const samples = [];
  const end = c0.t + CFG.windowMs;
  while (performance.now() < end - 5) {
    await sleep(Math.min(1000, Math.max(0, end - performance.now())));
    samples.push({ oriel: procStatus(procs.oriel), janus: procStatus(procs.janus), fds: fdCount(procs.oriel), rx: rxs.map((r) => r.status()) });
  }
  const c1 = cpuNow();
  const b = await snap();
  const dt = (c1.t - c0.t) / 1000;
  const pct = (k) => Math.round(((c1[k] - c0[k]) / dt) * 1000) / 10;
  const md = (k) => sumOf(b.m, k) - sumOf(a.m, k);
  const mdHas = (k, has) => sumOf(b.m, k, has) - sumOf(a.m, k, has);

  const encoded = md('oriel_frames_encoded_total');
  // Frames that may fall on the wrong side of a snapshot: the fixed slack
  // plus the frames the encoder makes while the two snapshots are taken.
  const slack = FRAME_SLACK + Math.ceil(((a.ms + b.ms) / 1000) * CFG.framerate);
  const sent0 = byPeer(a.m, 'oriel_client_sent_packets_total');
  const sent1 = byPeer(b.m, 'oriel_client_sent_packets_total');
  // The publish branch is a peer without a session in the room.
  const pubSent = mdHas('oriel_client_sent_packets_total', 'role="unknown"');
  const agentSent = side === 'sfu' ? () => pubSent : (v) => (sent1[v.peerId] !== undefined ? sent1[v.peerId] - (sent0[v.peerId] ?? 0) : null);
  const viewers = rx && n ? viewerFrames(rx, a.s, b.s, encoded, slack, agentSent) : [];
  const frames = viewers.map((v) => v.frames).filter((x) => x !== null);
  const med = (f) => median(samples.map(f));
  const r = {
    side, label, viewers: n, publishing: on,
    windowSec: round1(dt),
    orielCpuPct: pct('oriel'),
    janusCpuPct: pct('janus'),
    orielRssMiB: round1(med((s) => s.oriel.rssKb) / 1024),
    orielThreads: med((s) => s.oriel.threads),
    orielFds: med((s) => s.fds),
    janusRssMiB: round1(med((s) => s.janus.rssKb) / 1024),
    janusThreads: med((s) => s.janus.threads),
    framesEncoded: encoded,
    encodedFps: round1(encoded / ((b.t - a.t) / 1000)),
    frameSlack: slack,
    snapshotMs: [Math.round(a.ms), Math.round(b.ms)],
    minFrames: frames.length ? Math.min(...frames) : null,
    medianFrames: median(frames),
    maxDeficit: viewers.length ? Math.max(...viewers.map((v) => v.deficit ?? Infinity)) : null,
    everyoneGotEveryFrame: viewers.length ? viewers.every((v) => v.gotEveryFrame) : null,
    viewersMissingFrames: viewers.filter((v) => !v.gotEveryFrame).length,
    maxPacketDeficit: viewers.some((v) => v.packetDeficit !== null) ? Math.max(...viewers.map((v) => v.packetDeficit ?? -Infinity)) : null,
    packetsLost: viewers.reduce((s, v) => s + (v.packetsLost ?? 0), 0),
    publishSentPackets: pubSent,
    agentDroppedPackets: md('oriel_client_dropped_packets_total'),
    publishDroppedPackets: mdHas('oriel_client_dropped_packets_total', 'role="unknown"'),
    keyframesForced: md('oriel_keyframes_forced_total'),
    keyframesRequested: md('oriel_keyframes_requested_total'),
    receiversCpuPct: pct('rx'),
    xvfbAndMoverCpuPct: pct('helpers'),
    machineBusyPct: round1(((c1.sys.busy - c0.sys.busy) / (c1.sys.total - c0.sys.total)) * os.cpus().length * 100),
    loadAvg: os.loadavg().map((x) => Math.round(x * 100) / 100),
    perViewer: viewers,
  };
  r.otherLoadPct = round1(Math.max(0, r.machineBusyPct - r.orielCpuPct - r.janusCpuPct - r.receiversCpuPct - r.xvfbAndMoverCpuPct));
  log(`${label}: oriel ${fmt(r.orielCpuPct)}% janus ${fmt(r.janusCpuPct)}% rss ${fmt(r.orielRssMiB)}/${fmt(r.janusRssMiB)} MiB ` +
    `encoded ${encoded} (${fmt(r.encodedFps)} fps) frames min/median ${r.minFrames}/${r.medianFrames} every frame: ${r.everyoneGotEveryFrame} ` +
    `keyframes ${r.keyframesForced} receivers ${fmt(r.receiversCpuPct)}% machine ${fmt(r.machineBusyPct)}% other ${fmt(r.otherLoadPct)}% load ${r.loadAvg.join(' ')}`);
  return r;
}

const joinProblems = [];

/** Leaves exactly `want` viewers on each receiver process (removals first, so both sides never overlap). */
async function setCounts(ctx, want) {
  for (const side of SIDES) {
    const rx = ctx.rx[side];
    if (rx.alive.length > want[side]) await rx.remove(rx.alive.length - want[side]);
  }
  for (const side of SIDES) {
    const rx = ctx.rx[side];
    if (rx.alive.length >= want[side]) continue;
    const ids = rx.add(want[side] - rx.alive.length);
    try {
      await rx.waitFirstFrames(ids, 45000);
    } catch (e) {
      // Measured anyway: a viewer without frames shows as missing them.
      log(`going to ${want[side]} viewers ${SIDE_NAME[side]}: ${e.message}`);
      joinProblems.push(`going to ${want[side]} viewers ${SIDE_NAME[side]}: ${e.message.slice(0, 300)}`);
    }
  }
}

/** Why a window says the machine could not keep up, or null. */
function cannotKeepUp(r) {
  const want = CFG.framerate * MIN_FPS_SHARE;
  if (r.encodedFps < want) return `oriel encoded only ${fmt(r.encodedFps)} fps`;
  if (r.viewers && r.medianFrames !== null && r.medianFrames / r.windowSec < want) {
    return `the median viewer ${SIDE_NAME[r.side]} got only ${fmt(r.medianFrames / r.windowSec)} fps`;
  }
  return null;
}

async function stepViewers(ctx) {
  const runs = [];
  let stoppedEarly = null;
  for (const [i, n] of STEPS.entries()) {
    const order = i % 2 === 0 ? SIDES : [...SIDES].reverse();
    for (const side of order) {
      await setCounts(ctx, { direct: side === 'direct' ? n : 0, sfu: side === 'sfu' ? n : 0 });
      const r = await measure(ctx, { side, n, rx: ctx.rx[side], on: true, label: `${n} ${SIDE_NAME[side]}` });
      runs.push(r);
      const why = cannotKeepUp(r);
      if (why && !stoppedEarly) stoppedEarly = { viewers: n, side, reason: why };
    }
    if (stoppedEarly) {
      log(`the machine cannot keep up at ${n} viewers (${stoppedEarly.reason}): larger counts skipped`);
      break;
    }
  }
  await setCounts(ctx, { direct: 0, sfu: 0 });
  return { runs, stoppedEarly };
}

/** oriel with and without its publish branch (one direct viewer keeps the pipeline up), Janus with and without a publisher. */
async function publishBranch(ctx) {
  await setCounts(ctx, { direct: 1, sfu: 0 });
  const runs = [];
  for (let r = 0; r < PUBLISH_ROUNDS; r++) {
    for (const on of [false, true]) {
      await setPublishing(ctx.agent, ctx.janus, on);
      runs.push({ round: r + 1, ...(await measure(ctx, { side: 'publish', n: 1, rx: ctx.rx.direct, on, label: `publish ${on ? 'on' : 'off'}, 1 direct` })) });
    }
  }
  await setCounts(ctx, { direct: 0, sfu: 0 });
  return runs;
}

// -------------------------------------------------------------- derive

const r2of = (f) => (f?.r2 === null || f?.r2 === undefined ? null : Math.round(f.r2 * 1000) / 1000);
function fitOf(runs, key) {
  const f = linearFit(runs.map((r) => r.viewers), runs.map((r) => r[key]));
  return f ? { slope: Math.round(f.slope * 100) / 100, intercept: round1(f.intercept), r2: r2of(f), n: f.n } : null;
}

/** CPU per added viewer between consecutive counts of one side, for `key`. */
function stepsOf(runs, key) {
  const out = [];
  for (let i = 1; i < runs.length; i++) {
    const dn = runs[i].viewers - runs[i - 1].viewers;
    if (dn > 0) out.push({ from: runs[i - 1].viewers, to: runs[i].viewers, cpuPctPerViewer: Math.round(((runs[i][key] - runs[i - 1][key]) / dn) * 100) / 100 });
  }
  return out;
}

export function derive(res) {
  const side = (s) => res.steps.runs.filter((r) => r.side === s);
  const direct = side('direct');
  const sfu = side('sfu');
  const pub = res.publish ?? [];
  const on = pub.filter((r) => r.publishing);
  const off = pub.filter((r) => !r.publishing);
  const diff = (k) => (on.length && off.length ? round1(median(on.map((r) => r[k])) - median(off.map((r) => r[k]))) : null);
  const orielPerDirect = fitOf(direct, 'orielCpuPct');
  const janusPerSub = fitOf(sfu, 'janusCpuPct');
  const zero = res.steps.runs.filter((r) => r.viewers === 0);
  const withViewers = res.steps.runs.filter((r) => r.viewers > 0);
  const frames = (rs) => ({
    everyoneGotEveryFrame: rs.length ? rs.every((r) => r.everyoneGotEveryFrame) : null,
    windowsMissingFrames: rs.filter((r) => !r.everyoneGotEveryFrame).length,
    maxDeficit: rs.length ? Math.max(...rs.map((r) => r.maxDeficit)) : null,
    packetsLost: rs.reduce((s, r) => s + r.packetsLost, 0),
  });
  return {
    orielPerDirect,
    janusPerSubscriber: janusPerSub,
    ratio: orielPerDirect && janusPerSub && orielPerDirect.slope > 0 ? Math.round((janusPerSub.slope / orielPerDirect.slope) * 100) / 100 : null,
    // Cross terms: what the other server pays for a viewer it does not serve.
    orielPerSubscriber: fitOf(sfu, 'orielCpuPct'),
    janusPerDirect: fitOf(direct, 'janusCpuPct'),
    orielSteps: stepsOf(direct, 'orielCpuPct'),
    janusSteps: stepsOf(sfu, 'janusCpuPct'),
    orielRssPerDirect: fitOf(direct, 'orielRssMiB'),
    janusRssPerSubscriber: fitOf(sfu, 'janusRssMiB'),
    orielThreadsPerDirect: fitOf(direct, 'orielThreads'),
    janusThreadsPerSubscriber: fitOf(sfu, 'janusThreads'),
    // oriel with publishing as its only peer: capture, encode, the branch.
    publishOnlyOrielCpuPct: zero.length ? round1(median(zero.map((r) => r.orielCpuPct))) : null,
    publishOnlyJanusCpuPct: zero.length ? round1(median(zero.map((r) => r.janusCpuPct))) : null,
    publishBranchOrielCpuPct: diff('orielCpuPct'),
    publishBranchOrielRssMiB: diff('orielRssMiB'),
    publishBranchJanusCpuPct: diff('janusCpuPct'),
    // Keyframes forced on request, summed over the windows with and without a publisher.
    publishOffKeyframes: off.reduce((s, r) => s + r.keyframesForced, 0),
    publishOnKeyframes: on.reduce((s, r) => s + r.keyframesForced, 0),
    stepKeyframes: res.steps.runs.reduce((s, r) => s + r.keyframesForced, 0),
    framesDirect: frames(withViewers.filter((r) => r.side === 'direct')),
    framesSfu: frames(withViewers.filter((r) => r.side === 'sfu')),
    starvedWindows: res.steps.runs.concat(pub).filter((r) => r.encodedFps < 0.9 * res.config.framerate)
      .map((r) => ({ label: r.label, encodedFps: r.encodedFps, machineBusyPct: r.machineBusyPct, otherLoadPct: r.otherLoadPct })),
    maxOtherLoadPct: Math.max(...res.steps.runs.concat(pub).map((r) => r.otherLoadPct)),
    loadAvgRange: [Math.min(...res.steps.runs.concat(pub).map((r) => r.loadAvg[0])), Math.max(...res.steps.runs.concat(pub).map((r) => r.loadAvg[0]))],
  };
}

// -------------------------------------------------------------- report

function whatTheNumbersSay(res) {
  const d = res.derived;
  const cores = res.machine.cores;
  const top = Math.max(...res.steps.runs.map((r) => r.viewers));
  const at = (side, n) => res.steps.runs.find((r) => r.side === side && r.viewers === n);
  const out = [];
  if (d.orielPerDirect && d.janusPerSubscriber) {
    out.push(`Each added direct viewer costs oriel ${fmt(d.orielPerDirect.slope, 2)} % of a core (least-squares slope over 0-${top} viewers, R² ${fmt(d.orielPerDirect.r2, 2)}); ` +
      `each added subscriber through Janus costs Janus ${fmt(d.janusPerSubscriber.slope, 2)} % (R² ${fmt(d.janusPerSubscriber.r2, 2)}), ` +
      (d.ratio !== null ? `${fmt(d.ratio, 2)} times oriel's figure. ` : '. ') +
      `Both do the same per-viewer work on the same RTP (SRTP, ICE/DTLS, RTCP): oriel with a GStreamer webrtcbin per viewer (${fmt(d.orielThreadsPerDirect?.slope, 1)} threads and ${fmt(d.orielRssPerDirect?.slope, 2)} MiB per viewer here), ` +
      `Janus with its own forwarding (${fmt(d.janusThreadsPerSubscriber?.slope, 1)} threads and ${fmt(d.janusRssPerSubscriber?.slope, 2)} MiB per subscriber).`);
  }
  if (d.orielSteps?.length && d.janusSteps?.length) {
    const range = (st) => {
      const lo = st.reduce((a, x) => (x.cpuPctPerViewer < a.cpuPctPerViewer ? x : a));
      const hi = st.reduce((a, x) => (x.cpuPctPerViewer > a.cpuPctPerViewer ? x : a));
      return `${fmt(lo.cpuPctPerViewer, 2)} % (${lo.from} → ${lo.to}) to ${fmt(hi.cpuPctPerViewer, 2)} % (${hi.from} → ${hi.to})`;
    };
    const last = (st) => st[st.length - 1];
    out.push(`Step by step, oriel's CPU per added direct viewer ranges from ${range(d.orielSteps)}, Janus's per added subscriber from ${range(d.janusSteps)}; ` +
      `over the last step (${last(d.orielSteps).from} → ${last(d.orielSteps).to}) oriel added ${fmt(last(d.orielSteps).cpuPctPerViewer, 2)} % per viewer and Janus ${fmt(last(d.janusSteps).cpuPctPerViewer, 2)} %. ` +
      `The R² of each slope says how straight its line is; single steps on a shared ${cores}-core machine are noisy.`);
  }
  if (d.orielPerSubscriber && d.janusPerDirect) {
    out.push(`Cross-check: Janus subscribers cost oriel ${fmt(d.orielPerSubscriber.slope, 2)} % per subscriber (oriel sends Janus one stream whatever the audience), ` +
      `and direct viewers cost Janus ${fmt(d.janusPerDirect.slope, 2)} % per viewer; both should be near 0, and their size is this run's noise.`);
  }
  if (d.publishBranchOrielCpuPct !== null) {
    out.push(`The publish branch itself (one direct viewer connected, publishing stopped and started, ${res.config.publishRounds} pair(s) of windows, medians) costs oriel ${fmt(d.publishBranchOrielCpuPct)} % of a core ` +
      `and ${fmt(d.publishBranchOrielRssMiB)} MiB; receiving that publisher costs Janus ${fmt(d.publishBranchJanusCpuPct)} %. ` +
      `With publishing as its only peer oriel uses ${fmt(d.publishOnlyOrielCpuPct)} % (capture, colour conversion, the one x264 encode, the branch) and Janus ${fmt(d.publishOnlyJanusCpuPct)} %. ` +
      `Keyframes oriel forced on request: ${d.publishOnKeyframes} in the ${res.publish.filter((r) => r.publishing).length} windows with the branch, ${d.publishOffKeyframes} in the ${res.publish.filter((r) => !r.publishing).length} without, ` +
      `${d.stepKeyframes} over the ${res.steps.runs.length} windows of the steps (the room's fir_freq is ${res.janus.firFreqSec ?? '?'} s).`);
  }
  if (d.orielPerDirect && d.janusPerSubscriber) {
    const o = at('direct', top);
    const j = at('sfu', top);
    if (o && j) {
      out.push(`At ${top} viewers: oriel alone serving them directly ${fmt(o.orielCpuPct)} % (+ Janus idling with the publisher ${fmt(o.janusCpuPct)} %); ` +
        `through Janus, oriel ${fmt(j.orielCpuPct)} % + Janus ${fmt(j.janusCpuPct)} % = ${fmt(j.orielCpuPct + j.janusCpuPct)} %. ` +
        `An SFU moves the per-viewer cost off the desktop's machine (and its uplink) onto whatever runs Janus; here both ran on the same ${cores} cores.`);
    }
  }
  for (const [name, f] of [['direct', d.framesDirect], ['via Janus', d.framesSfu]]) {
    if (f.everyoneGotEveryFrame === null) continue;
    out.push(f.everyoneGotEveryFrame
      ? `Every viewer ${name} got every frame oriel encoded in every window (largest shortfall ${f.maxDeficit} frame(s), within the window's slack).`
      : `Viewers ${name}: ${f.windowsMissingFrames} window(s) had a viewer short by more than the slack, worst ${f.maxDeficit} frames; ${f.packetsLost} packets missing by sequence number over all windows.`);
  }
  if (res.steps.stoppedEarly) {
    const s = res.steps.stoppedEarly;
    out.push(`**The machine could not keep up** at ${s.viewers} viewers (${SIDE_NAME[s.side]}: ${s.reason}); larger counts were not measured.`);
  }
  if (d.starvedWindows.length) {
    out.push(`In ${d.starvedWindows.length} window(s) oriel encoded below 90 % of ${res.config.framerate} fps (${d.starvedWindows.map((w) => `${w.label}: ${fmt(w.encodedFps)} fps, other load ${fmt(w.otherLoadPct)} %`).join('; ')}); CPU there is what the process was given, not what it needed.`);
  }
  if (d.maxOtherLoadPct > 20) {
    out.push(`Other load on the machine reached ${fmt(d.maxOtherLoadPct)} % (of ${cores * 100} %) in some window, and the 1-minute load average ranged ${fmt(d.loadAvgRange[0], 2)}-${fmt(d.loadAvgRange[1], 2)} over the run; ` +
      `each process's CPU is its own time, but contention can inflate it, and the slopes' R² says how much of the step-to-step change the viewers explain.`);
  }
  return out.map((x) => `- ${x}`).join('\n');
}

/** This part's section of BENCHMARKS.md. */
export function render(res, jsonRel) {
  const m = res.machine;
  const a = res.agent;
  const d = res.derived;
  const L = [];
  L.push(`## Janus per subscriber against oriel per direct viewer (0-${Math.max(...res.steps.runs.map((r) => r.viewers))} viewers, one run)`);
  L.push('');
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}).`);
  L.push('');
  L.push(`Agent \`oriel ${res.agentArgs.join(' ').replace(JANUS_SECRET, '(secret)')}\` (${a.build} build), encoder ${res.healthz?.encoder ?? '?'}, ` +
    `${res.config.width}x${res.config.height} @ ${res.config.framerate} fps, ${res.config.bitrateKbps} kbit/s; screen: Xvfb showing \`${res.display.pipeline}\` ` +
    `(${res.display.covers ? 'covers the screen' : '**does not cover the screen**'}). Janus ${res.janus.version ?? '?'} (Debian package; \`tests/janus/*.in\`: HTTP transport and VideoRoom only, ` +
    `room ${res.janus.room}: H.264, fir_freq ${res.janus.firFreqSec ?? '?'} s; ICE on ${res.janus.iface}). Load average at start: ${m.loadAvgAtStart.join(' ')}; ` +
    `1-minute load average during the run, this part's own processes included: ${fmt(d.loadAvgRange[0], 2)}-${fmt(d.loadAvgRange[1], 2)}; ` +
    `CPU of everything else on the machine at most ${fmt(d.maxOtherLoadPct)} % (of ${m.cores * 100} %) in any window.`);
  L.push('');
  if (a.build !== 'release') {
    L.push(`**Note:** this run used a **${a.build}** build of the agent; CPU figures of a release build are lower.`);
    L.push('');
  }
  L.push(`oriel publishes its shared encode into the room for the whole run. The viewers are \`bench_receiver\` viewers (webrtcbin into a fakesink, no decoding, whole frames counted), ` +
    `either direct (\`--link\`, oriel's signalling, one webrtcbin branch each in oriel) or subscribers of oriel's publisher through Janus (\`--janus\`, Janus's HTTP API like \`web-client/sfu.js\`): ` +
    `the same receivers, only the server differs. At each count only one side's viewers are connected; the sides alternate which goes first. ` +
    `CPU = utime+stime of the oriel and of the janus process from \`/proc/PID/stat\` over a ${res.config.windowMs / 1000} s window after ${res.config.settleMs / 1000} s of settling, in % of one core; RSS sampled every second (medians). ` +
    `"frames" = frames each viewer received in the window against oriel's \`oriel_frames_encoded_total\` over the same window, with ${res.config.frameSlack} frames of slack plus the frames encoded while the counters are read. ` +
    `Marginal costs are least-squares slopes over every count measured, 0 included (oriel keeps encoding for Janus with no viewer).`);
  L.push('');
  L.push('| viewers | oriel CPU %, direct | Janus CPU %, direct | oriel CPU %, via Janus | Janus CPU %, via Janus | oriel RSS MiB direct / via | Janus RSS MiB direct / via | frames per viewer min / median, direct | via Janus | every viewer every frame direct / via | encoded fps direct / via | receivers CPU % direct / via | machine busy % (of ' + m.cores * 100 + ') direct / via |');
  L.push('|---:|---:|---:|---:|---:|---|---|---|---|---|---|---|---|');
  const ns = [...new Set(res.steps.runs.map((r) => r.viewers))];
  const ev = (r) => (!r?.viewers ? '-' : r.everyoneGotEveryFrame ? 'yes' : `**no** (-${r.maxDeficit})`);
  for (const n of ns) {
    const o = res.steps.runs.find((r) => r.side === 'direct' && r.viewers === n);
    const j = res.steps.runs.find((r) => r.side === 'sfu' && r.viewers === n);
    const fr = (r) => (r?.viewers ? `${r.minFrames} / ${r.medianFrames}` : '-');
    L.push(`| ${n} | **${fmt(o?.orielCpuPct)}** | ${fmt(o?.janusCpuPct)} | ${fmt(j?.orielCpuPct)} | **${fmt(j?.janusCpuPct)}** | ${fmt(o?.orielRssMiB)} / ${fmt(j?.orielRssMiB)} | ${fmt(o?.janusRssMiB)} / ${fmt(j?.janusRssMiB)} | ` +
      `${fr(o)} | ${fr(j)} | ${ev(o)} / ${ev(j)} | ${fmt(o?.encodedFps)} / ${fmt(j?.encodedFps)} | ${fmt(o?.receiversCpuPct)} / ${fmt(j?.receiversCpuPct)} | ${fmt(o?.machineBusyPct)} / ${fmt(j?.machineBusyPct)} |`);
  }
  L.push('');
  L.push('Marginal cost per added viewer (least-squares slope of CPU against the count):');
  L.push('');
  L.push('| | CPU % of a core per viewer | R² | RSS MiB per viewer | threads per viewer |');
  L.push('|---|---:|---:|---:|---:|');
  const row = (name, f, rss, thr) => L.push(`| ${name} | ${f ? `**${fmt(f.slope, 2)}**` : 'n/a'} | ${fmt(f?.r2, 2)} | ${fmt(rss?.slope, 2)} | ${fmt(thr?.slope, 1)} |`);
  row('oriel, per direct viewer', d.orielPerDirect, d.orielRssPerDirect, d.orielThreadsPerDirect);
  row('Janus, per subscriber through Janus', d.janusPerSubscriber, d.janusRssPerSubscriber, d.janusThreadsPerSubscriber);
  L.push(`| ratio Janus / oriel | **${fmt(d.ratio, 2)}** | | | |`);
  const steps = (d.orielSteps ?? []).map((o, i) => [o, d.janusSteps?.[i]]);
  for (const [o, j] of steps) L.push(`| step ${o.from} → ${o.to}: oriel / Janus | ${fmt(o.cpuPctPerViewer, 2)} / ${fmt(j?.cpuPctPerViewer, 2)} | | | |`);
  row('check: oriel, per subscriber through Janus', d.orielPerSubscriber, null, null);
  row('check: Janus, per direct viewer of oriel', d.janusPerDirect, null, null);
  L.push('');
  if (res.publish?.length) {
    L.push(`The publish branch (one direct viewer connected throughout; \`oriel publish stop\` / \`start\`): oriel **${fmt(d.publishBranchOrielCpuPct)}** % of a core and ${fmt(d.publishBranchOrielRssMiB)} MiB for the branch, ` +
      `Janus ${fmt(d.publishBranchJanusCpuPct)} % for receiving it (medians, on minus off); oriel with publishing as its only peer: ${fmt(d.publishOnlyOrielCpuPct)} %.`);
    L.push('');
    L.push('| # | publishing | oriel CPU % | Janus CPU % | oriel RSS MiB | Janus RSS MiB | viewer frames / encoded | keyframes forced | machine busy % |');
    L.push('|---:|---|---:|---:|---:|---:|---|---:|---:|');
    res.publish.forEach((r, i) => {
      L.push(`| ${i + 1} | ${r.publishing ? 'on' : 'off'} | ${fmt(r.orielCpuPct)} | ${fmt(r.janusCpuPct)} | ${fmt(r.orielRssMiB)} | ${fmt(r.janusRssMiB)} | ${r.minFrames} / ${r.framesEncoded} | ${r.keyframesForced} | ${fmt(r.machineBusyPct)} |`);
    });
    L.push('');
  }
  L.push('<details><summary>Every window</summary>');
  L.push('');
  L.push('| # | side | viewers | oriel CPU % / threads | Janus CPU % / threads | encoded (fps) | frames per viewer | packets lost | most packets short | publish branch sent / dropped pkts | keyframes forced / requested | other load % | load avg 1 min |');
  L.push('|---:|---|---:|---|---|---|---|---:|---:|---|---|---:|---:|');
  res.steps.runs.concat(res.publish ?? []).forEach((r, i) => {
    L.push(`| ${i + 1} | ${r.side === 'publish' ? `publish ${r.publishing ? 'on' : 'off'}` : SIDE_NAME[r.side]} | ${r.viewers} | ${fmt(r.orielCpuPct)} / ${r.orielThreads} | ${fmt(r.janusCpuPct)} / ${r.janusThreads} | ` +
      `${r.framesEncoded} (${fmt(r.encodedFps)}) | ${r.perViewer.map((v) => (v.gotEveryFrame ? v.frames : `**${v.frames}**`)).join(', ') || '-'} | ${r.packetsLost} | ${r.maxPacketDeficit ?? '-'} | ` +
      `${r.publishSentPackets} / ${r.publishDroppedPackets} | ${r.keyframesForced} / ${r.keyframesRequested} | ${fmt(r.otherLoadPct)} | ${fmt(r.loadAvg[0], 2)} |`);
  });
  L.push('');
  L.push('</details>');
  L.push('');
  L.push(...readingAndOddities(whatTheNumbersSay(res), res.notes));
  return L.join('\n');
}

/** One-line findings for the top of BENCHMARKS.md. */
export function headline(res) {
  const d = res.derived;
  const out = [];
  if (d.orielPerDirect && d.janusPerSubscriber) {
    out.push(`Janus costs ${fmt(d.janusPerSubscriber.slope, 2)} % of a core per subscriber against oriel's ${fmt(d.orielPerDirect.slope, 2)} % per direct viewer (ratio ${fmt(d.ratio, 2)}, same run); ` +
      `oriel's publish branch costs it ${fmt(d.publishBranchOrielCpuPct)} % (part \`sfu\`).`);
  }
  const f = [d.framesDirect, d.framesSfu];
  if (f.every((x) => x.everyoneGotEveryFrame)) out.push('Every viewer, direct or through Janus, got every encoded frame (part `sfu`).');
  else if (f.some((x) => x.everyoneGotEveryFrame === false)) out.push(`Not every viewer got every frame: direct ${d.framesDirect.windowsMissingFrames} window(s), via Janus ${d.framesSfu.windowsMissingFrames} window(s) with a shortfall (part \`sfu\`).`);
  if (res.steps.stoppedEarly) out.push(`SFU comparison stopped at ${res.steps.stoppedEarly.viewers} viewers: the machine could not keep up (part \`sfu\`).`);
  return out;
}

function oddities(res, agentLog, rxs) {
  const notes = [];
  if (res.agent.build !== 'release') notes.push(`agent is a ${res.agent.build} build`);
  if (!res.display.covers) notes.push('the moving window does not cover the screen');
  for (const r of res.steps.runs.concat(res.publish ?? [])) {
    const bad = r.perViewer.filter((v) => v.state !== 'connected');
    if (bad.length) notes.push(`${r.label}: ${bad.length} viewer(s) not connected at the end (${bad.map((v) => `${v.id}:${v.state}`).join(', ')})`);
    if (r.publishDroppedPackets) notes.push(`${r.label}: oriel's queue for the publish branch dropped ${r.publishDroppedPackets} packet(s)`);
  }
  if (res.steps.stoppedEarly) notes.push(`stepping stopped at ${res.steps.stoppedEarly.viewers} viewers: ${res.steps.stoppedEarly.reason}`);
  notes.push(...joinProblems);
  for (const rx of rxs) {
    const n = receiverErrorsNote(rx);
    if (n) notes.push(`${rx === rxs[0] ? 'direct' : 'via Janus'}: ${n}`);
  }
  const janusErrors = res.janus.logErrors ?? [];
  if (janusErrors.length) notes.push(`Janus logged ${janusErrors.length} error line(s), e.g. \`${janusErrors[0].replace(/`/g, "'").slice(0, 160)}\``);
  noteAgentWarnings(res, notes, agentLog);
  return notes;
}

function summaryText(res) {
  const d = res.derived;
  const L = [''];
  L.push(`oriel bench sfu ${res.startedAt} (${res.agent.build} build, ${res.healthz?.encoder ?? '?'}; load ${fmt(d.loadAvgRange[0], 2)}-${fmt(d.loadAvgRange[1], 2)})`);
  L.push('side      viewers  orielCPU%  janusCPU%  encoded fps  frames min/med  every frame  machine%');
  for (const r of res.steps.runs.concat(res.publish ?? [])) {
    const side = r.side === 'publish' ? `pub ${r.publishing ? 'on' : 'off'}` : r.side;
    L.push(`${side.padEnd(8)}  ${String(r.viewers).padStart(7)}  ${fmt(r.orielCpuPct).padStart(9)}  ${fmt(r.janusCpuPct).padStart(9)}  ${fmt(r.encodedFps).padStart(11)}  ` +
      `${(r.viewers ? `${r.minFrames}/${r.medianFrames}` : '-').padStart(14)}  ${String(r.viewers ? r.everyoneGotEveryFrame : '-').padStart(11)}  ${fmt(r.machineBusyPct).padStart(8)}`);
  }
  L.push(`per viewer: oriel direct ${fmt(d.orielPerDirect?.slope, 2)} % (R² ${fmt(d.orielPerDirect?.r2, 2)}), Janus per subscriber ${fmt(d.janusPerSubscriber?.slope, 2)} % (R² ${fmt(d.janusPerSubscriber?.r2, 2)}), ratio ${fmt(d.ratio, 2)}`);
  L.push(`publish branch: oriel ${fmt(d.publishBranchOrielCpuPct)} %, Janus receiving it ${fmt(d.publishBranchJanusCpuPct)} %; oriel publishing only ${fmt(d.publishOnlyOrielCpuPct)} %`);
  for (const n of res.notes ?? []) L.push(`note: ${n}`);
  return L.join('\n');
}

// ---------------------------------------------------------------- main

async function main(res) {
  res.command = 'cd bench && node sfu.mjs';
  res.config = {
    width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps,
    windowMs: CFG.windowMs, settleMs: CFG.settleMs, viewers: STEPS, publishRounds: PUBLISH_ROUNDS, minFpsShare: MIN_FPS_SHARE,
    frameSlack: FRAME_SLACK, scene: CFG.scene,
  };
  const missing = missingJanus();
  if (missing) throw new Error(`Janus is not installed (missing ${missing.join(', ')}): apt-get install janus`);
  res.machine = machineInfo();
  res.agent = agentInfo();
  log(`agent ${res.agent.bin} (${res.agent.build}), ${res.machine.cores} cores, load ${res.machine.loadAvgAtStart.join(' ')}`);
  res.display = await startDisplay();
  const janus = await startJanus();
  res.janus = {
    version: janusVersion(sh), url: janus.url, iface: janus.iface, room: JANUS_ROOM, feed: FEED,
    firFreqSec: Number((janus.config['janus.plugin.videoroom.jcfg'].match(/fir_freq\s*=\s*(\d+)/) || [])[1]) || null,
    config: janus.config,
  };
  log(`janus pid ${janus.pid} on ${janus.url} (ICE on ${janus.iface})`);
  CFG.agentExtraArgs.push('--publish', `janus:${janus.url},room=${JANUS_ROOM}`, '--janus-secret', JANUS_SECRET);
  const agent = await startAgent(res.display.display);
  res.agentArgs = agent.args();
  res.healthz = await agent.healthz();
  await waitFor(() => publishLive(agent), 30000, 'the agent publishing into Janus (live)', 250);
  log(`agent pid ${agent.pid} on ${agent.url}, publishing into room ${JANUS_ROOM}`);
  const rxs = [
    await Receivers.start(agent.viewerUrl, { name: 'bench-sfu-direct' }),
    await Receivers.startJanus(`${janus.url},room=${JANUS_ROOM},feed=${FEED}`, { name: 'bench-sfu-janus' }),
  ];
  res.receivers = rxs.map((rx) => ({ bin: rx.bin, pid: rx.pid }));
  const ctx = { agent, janus, rxs, rx: { direct: rxs[0], sfu: rxs[1] } };
  // Warm-up: one viewer of each kind plays briefly and leaves, so first-run
  // costs (x264 keyframes, DTLS certificates, thread pools) are paid.
  await setCounts(ctx, { direct: 1, sfu: 1 });
  await sleep(1000);
  await setCounts(ctx, { direct: 0, sfu: 0 });
  res.steps = await stepViewers(ctx);
  res.publish = await publishBranch(ctx);
  res.receiverExits = [];
  for (const rx of rxs) res.receiverExits.push(await rx.quit());
  res.metricsAtEnd = await agent.metrics();
  if (!agent.alive) throw new Error('the agent died during the run');
  if (janus.rec.exitCode !== undefined) throw new Error('Janus died during the run');
  res.janus.logErrors = janus.rec.log.filter((l) => /\[ERR\]|\bERROR\b/.test(l)).slice(0, 50);
  const agentLog = [...agent.rec.log];
  res.agentLogFile = saveAgentLog(agent.rec.log, res.startedAt, 'sfu');
  res.derived = derive(res);
  res.notes = oddities(res, agentLog, rxs);
  res.receiverExits.forEach((code, i) => {
    if (code !== 0) res.notes.push(`bench_receiver (${i ? 'via Janus' : 'direct'}) exited with ${code}`);
  });
  return summaryText(res);
}

if (isMain(import.meta.url)) runPart('sfu', main);
