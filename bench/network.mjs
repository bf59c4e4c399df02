#!/usr/bin/env node
// oriel benchmark part `network`: what a user on a bad network sees, and what
// the agent does about it. The page's media crosses the impairment relay of
// the e2e tests (tests/e2e/impair.mjs: random loss, a shaped link with a
// tail-drop queue, delay each way; playwright routes the page's WebSocket so
// the agent's ICE candidates point at the relay and nothing goes around it).
//
//   cd bench && node network.mjs      (or `make bench-network`)
//
// What it does, unattended (about 7 minutes on a 2-core machine):
//   1. One agent, no X server: `--capture test` with a `--config-dir` whose
//      capture-test fragment is `videotestsrc pattern=snow` (noise, so x264
//      really needs --bitrate), 640x360 at 30 fps, --bitrate 2000,
//      --min-bitrate 200, --input none (as tests/e2e/network.test.mjs).
//   2. One Chromium page on the controller link (the encoder follows the
//      controller's link) through one relay, for phases 3-5:
//   3. Loss: 0, 0.5, 1, 2, 5 % random loss (agent -> page), 20 ms each way;
//      after 5 s of settling a 30 s window each: decoded fps (and the worst
//      1 s), freezes and frozen seconds per minute (getStats freezeCount /
//      totalFreezesDuration), NACKs sent, retransmissions received, keyframes
//      decoded, delivered kbit/s (bytesReceived), the agent's
//      oriel_encoder_bitrate_kbps and oriel_client_estimate_bps (1 s samples).
//   4. Capacity: 8, 2, 1, 0.5 Mbit/s links in that order (each a cut; 300 ms
//      queue, 10 ms each way), the same figures plus the relay queue's
//      backlog (busyUntil - now, floored at 0, every 100 ms; p50/p99): the
//      network's share of the latency a user feels.
//   5. Adaptation, straight after the 8 Mbit/s window (the link has been at
//      8 Mbit/s for its 35 s, more than the 15 s asked for): the link drops
//      to 0.5 Mbit/s; time until the page decodes >= 20 fps in a 1 s window
//      again and until the backlog stays < 100 ms; after 20 s back to
//      8 Mbit/s: time until oriel_encoder_bitrate_kbps >= 1800. Then the
//      remaining capacity levels.
//   6. CPU: the controller leaves; 4 bench_receiver viewers on loopback
//      (webrtcbin into fakesink: 2 cores do not carry 8 browsers next to the
//      agent) and 4 Chromium viewers each on its own 0.5 Mbit/s relay. Agent
//      CPU (utime+stime, % of one core) over 20 s with all 8, and over 10 s
//      with the 4 loopback ones only before, for the cost per narrow viewer.
//   Every window also records the machine's busy time and what of it was not
//   this part's (other people's builds and tests: the machine is shared).
//
// Knobs (environment): ORIEL_BIN, BENCH_RECEIVER, CHROMIUM,
// NETWORK_QUICK=1 (5 s windows, 3 s settling: development only),
// NETWORK_WINDOW_MS (30000), NETWORK_SETTLE_MS (5000),
// NETWORK_LOSSES ("0,0.5,1,2,5", %), NETWORK_CAPACITIES ("8000,2000,1000,500", kbit/s),
// NETWORK_LOW_MS (20000), NETWORK_RECOVER_TIMEOUT_MS (30000),
// NETWORK_CPU_WINDOW_MS (20000), NETWORK_CPU_PERFECT (receiver|chromium:
// what the 4 viewers on a perfect link are), BENCH_NO_MARKDOWN=1,
// BENCH_TIMEOUT_MS (720000 here), BENCH_AGENT_ARGS.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  CFG, agentInfo, chromiumPids, envNum, fmt, launchBrowser, log, machineInfo, median, pidsCpuSec, procCpuSec,
  quantile, round1, rtcStats, sleep, startAgent, status, sysCpu, tmpDirs, waitClients, waitFor,
} from './lib/harness.mjs';
import { isMain, noteAgentWarnings, readingAndOddities, runPart, saveAgentLog } from './lib/run.mjs';
import { Receivers, receiverErrorsNote } from './lib/receiver.mjs';
import { ImpairedLink } from '../tests/e2e/impair.mjs';

const QUICK = process.env.NETWORK_QUICK === '1';
const list = (k, d) => (process.env[k] || d).split(',').map(Number);
const NET = {
  quick: QUICK,
  windowMs: envNum('NETWORK_WINDOW_MS', QUICK ? 5000 : 30000),
  settleMs: envNum('NETWORK_SETTLE_MS', QUICK ? 3000 : 5000),
  lossPct: list('NETWORK_LOSSES', '0,0.5,1,2,5'),
  lossDelayMs: 20,
  // Applied in this order: each a cut, which an estimator follows faster
  // than a rise, so the windows show each link rather than a ramp.
  capacitiesKbps: list('NETWORK_CAPACITIES', '8000,2000,1000,500'),
  capacityQueueMs: 300,
  capacityDelayMs: 10,
  adaptHighKbps: 8000,
  adaptHighMs: 15000,
  adaptLowKbps: 500,
  adaptLowMs: envNum('NETWORK_LOW_MS', QUICK ? 10000 : 20000),
  adaptFps: 20,
  adaptBacklogMs: 100,
  adaptEncoderKbps: 1800,
  recoverTimeoutMs: envNum('NETWORK_RECOVER_TIMEOUT_MS', 30000),
  cpuWindowMs: envNum('NETWORK_CPU_WINDOW_MS', QUICK ? 5000 : 20000),
  cpuBaseWindowMs: QUICK ? 5000 : 10000,
  cpuNarrow: 4,
  cpuPerfect: 4,
  cpuPerfectKind: process.env.NETWORK_CPU_PERFECT || 'receiver',
  cpuNarrowKbps: 500,
  bitrateKbps: 2000,
  minBitrateKbps: 200,
  size: '640x360',
  capture: 'videotestsrc is-live=true pattern=snow ! video/x-raw,width={width},height={height},framerate={framerate}/1',
};
CFG.bitrateKbps = NET.bitrateKbps;
CFG.timeoutMs = envNum('BENCH_TIMEOUT_MS', 720000);

// -------------------------------------------------------------- helpers

/** How long the relay's queue holds a packet now (ms): the link's backlog. */
const backlogMs = (link) => Math.max(0, link.busyUntil - performance.now());

/** A labelled per-client metric of `peer` (Agent.metrics() keys). */
function peerMetric(m, name, peer) {
  const k = Object.keys(m).find((x) => x.startsWith(`${name}{peer="${peer}"`));
  return k === undefined ? null : m[k];
}

/** A page on `url` whose media crosses `link`. */
async function openThrough(ctx, link, url) {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await link.attach(page);
  await page.goto(url, { waitUntil: 'load', timeout: 20000 });
  return page;
}

const waitDecoding = (page, frames, timeoutMs = 20000) =>
  waitFor(async () => ((await status(page)).framesDecoded >= frames ? true : null), timeoutMs, `the page to decode ${frames} frames`, 100);

/** CPU time of everything this part runs, and of the machine, now. */
function cpuProbe(agent, pids, rx) {
  return {
    t: performance.now(),
    agent: procCpuSec(agent.pid),
    chromium: pidsCpuSec(pids),
    node: process.cpuUsage(), // the relays run in this process
    rx: rx ? rx.cpuSec() : 0,
    sys: sysCpu(),
  };
}
function cpuDelta(a, b) {
  const dt = (b.t - a.t) / 1000;
  const pct = (x) => Math.round((x / dt) * 1000) / 10;
  const nodeSec = (b.node.user - a.node.user + b.node.system - a.node.system) / 1e6;
  const r = {
    sec: round1(dt),
    agentPct: pct(b.agent - a.agent),
    chromiumPct: pct(b.chromium - a.chromium),
    benchNodePct: pct(nodeSec),
    receiverPct: pct(b.rx - a.rx),
    machineBusyPct: round1(((b.sys.busy - a.sys.busy) / (b.sys.total - a.sys.total)) * os.cpus().length * 100),
  };
  // Whatever else ran meanwhile (clamped: the /proc reads are not simultaneous).
  r.otherLoadPct = round1(Math.max(0, r.machineBusyPct - r.agentPct - r.chromiumPct - r.benchNodePct - r.receiverPct));
  return r;
}

// ---------------------------------------------------------- one window

/**
 * What `page` saw over `ms` with `link` as it is set now: getStats counters
 * (exact, from the page's own RTCPeerConnection), 1 s samples of the decode
 * rate and the agent's encoder/estimate, 100 ms samples of the relay's backlog.
 */
async function measureWindow(agent, page, link, ms, label) {
  const s0 = await status(page);
  const peer = s0.peerId;
  const r0 = await rtcStats(page);
  const m0 = await agent.metrics();
  const l0 = { ...link.stats };
  const pids = chromiumPids();
  const c0 = cpuProbe(agent, pids, null);
  const backlog = [];
  const timer = setInterval(() => backlog.push(backlogMs(link)), 100);
  const secs = [];
  const t0 = performance.now();
  let prev = r0;
  let m1 = m0;
  try {
    while (performance.now() < t0 + ms - 5) {
      await sleep(Math.min(1000, Math.max(0, t0 + ms - performance.now())));
      const [r, m] = await Promise.all([rtcStats(page), agent.metrics()]);
      if (!r) throw new Error(`${label}: the page has no inbound video stats`);
      secs.push({
        t: Math.round(performance.now() - t0),
        fps: round1((r.framesDecoded - prev.framesDecoded) / ((r.timestamp - prev.timestamp) / 1000)),
        encoderKbps: m.oriel_encoder_bitrate_kbps ?? null,
        estimateKbps: peerMetric(m, 'oriel_client_estimate_bps', peer) === null ? null : Math.round(peerMetric(m, 'oriel_client_estimate_bps', peer) / 1000),
        backlogMs: Math.round(backlogMs(link)),
      });
      prev = r;
      m1 = m;
    }
  } finally {
    clearInterval(timer);
  }
  const c1 = cpuProbe(agent, pids, null);
  const r1 = prev;
  const s1 = await status(page);
  const sec = (r1.timestamp - r0.timestamp) / 1000;
  const d = (k) => r1[k] - r0[k];
  const lost = link.stats.lost - l0.lost;
  const queueDrops = link.stats.queueDrops - l0.queueDrops;
  const forwarded = link.stats.toPage - l0.toPage;
  const md = (k) => (peerMetric(m1, k, peer) ?? 0) - (peerMetric(m0, k, peer) ?? 0);
  const w = {
    label,
    settings: { ...link.settings },
    sec: round1(sec),
    decodedFps: round1(d('framesDecoded') / sec),
    worstSecondFps: secs.length ? Math.min(...secs.map((x) => x.fps)) : null,
    freezes: d('freezeCount'),
    frozenSec: Math.round(d('totalFreezesDuration') * 1000) / 1000,
    freezesPerMin: round1((d('freezeCount') / sec) * 60),
    frozenSecPerMin: Math.round((d('totalFreezesDuration') / sec) * 60 * 100) / 100,
    nacksSent: d('nackCount'),
    plisSent: d('pliCount'),
    retransmissionsReceived: d('retransmittedPacketsReceived'),
    keyframesDecoded: d('keyFramesDecoded'),
    packetsLost: d('packetsLost'),
    deliveredKbps: Math.round((d('bytesReceived') * 8) / sec / 1000),
    encoderKbps: { median: median(secs.map((x) => x.encoderKbps)), min: Math.min(...secs.map((x) => x.encoderKbps)), max: Math.max(...secs.map((x) => x.encoderKbps)) },
    estimateKbps: { median: median(secs.map((x) => x.estimateKbps)), min: Math.min(...secs.map((x) => x.estimateKbps)), max: Math.max(...secs.map((x) => x.estimateKbps)) },
    agentNacks: md('oriel_client_nack_requests_total'),
    agentRetransmitted: md('oriel_client_retransmitted_packets_total'),
    agentQueueDropped: md('oriel_client_dropped_packets_total'),
    // What the agent handed this client's webrtcbin (media and RTX, before SRTP).
    agentSentKbps: Math.round((md('oriel_client_sent_bytes_total') * 8) / sec / 1000),
    agentSentPackets: md('oriel_client_sent_packets_total'),
    agentKeyframesForced: (m1.oriel_keyframes_forced_total ?? 0) - (m0.oriel_keyframes_forced_total ?? 0),
    relay: { forwarded, lost, queueDrops, dropFraction: forwarded + lost + queueDrops ? Math.round(((lost + queueDrops) / (forwarded + lost + queueDrops)) * 10000) / 10000 : null },
    backlogMs: link.settings.kbps > 0 ? { p50: round1(quantile(backlog, 0.5)), p99: round1(quantile(backlog, 0.99)), max: round1(Math.max(...backlog)), samples: backlog.length } : null,
    reconnected: s1.connects !== s0.connects || s1.peerId !== s0.peerId,
    cpu: cpuDelta(c0, c1),
    perSecond: secs,
  };
  log(`${label}: ${fmt(w.decodedFps)} fps (worst 1 s ${fmt(w.worstSecondFps)}), freezes ${w.freezes} (${fmt(w.frozenSec, 2)} s), ` +
    `nack ${w.nacksSent} rtx ${w.retransmissionsReceived} kf ${w.keyframesDecoded}, ${w.deliveredKbps} kbit/s, encoder ${w.encoderKbps.median} (${w.encoderKbps.min}-${w.encoderKbps.max}), ` +
    `estimate ${w.estimateKbps.median} kbit/s, agent sent ${w.agentSentKbps} kbit/s (${w.agentSentPackets} pkts, ${w.agentRetransmitted} rtx), relay lost ${lost} queue-dropped ${queueDrops} of ${forwarded + lost + queueDrops}` +
    (w.backlogMs ? `, backlog p50 ${fmt(w.backlogMs.p50, 0)} p99 ${fmt(w.backlogMs.p99, 0)} ms` : '') +
    `; agent ${fmt(w.cpu.agentPct)} %, machine ${fmt(w.cpu.machineBusyPct)} %, other ${fmt(w.cpu.otherLoadPct)} %`);
  return w;
}

// ------------------------------------------------------------- phases

async function lossPhase(agent, page, link) {
  const out = [];
  for (const pct of NET.lossPct) {
    link.set({ loss: pct / 100, delayMs: NET.lossDelayMs, kbps: 0 });
    await sleep(NET.settleMs);
    out.push(await measureWindow(agent, page, link, NET.windowMs, `loss ${pct} %`));
  }
  return out;
}

/** The capacity levels in order; `after(kbps)` runs after each level's window. */
async function capacityPhase(agent, page, link, after) {
  const out = [];
  for (const kbps of NET.capacitiesKbps) {
    link.set({ loss: 0, delayMs: NET.capacityDelayMs, kbps, queueMs: NET.capacityQueueMs });
    await sleep(NET.settleMs);
    out.push(await measureWindow(agent, page, link, NET.windowMs, `${kbps / 1000} Mbit/s`));
    await after(kbps);
  }
  return out;
}

/** The first t of a series of {t, v} from which `ok(v)` holds to its end (null: not at its end). */
function staysFrom(series, ok) {
  let since = null;
  for (const x of series) {
    if (ok(x.v)) since ??= x.t;
    else since = null;
  }
  return since;
}

async function adaptationPhase(agent, page, link, highAlreadyMs) {
  const peer = (await status(page)).peerId;
  link.set({ loss: 0, delayMs: NET.capacityDelayMs, kbps: NET.adaptHighKbps, queueMs: NET.capacityQueueMs });
  if (highAlreadyMs < NET.adaptHighMs) await sleep(NET.adaptHighMs - highAlreadyMs);
  const m0 = await agent.metrics();
  const before = { encoderKbps: m0.oriel_encoder_bitrate_kbps, estimateKbps: Math.round((peerMetric(m0, 'oriel_client_estimate_bps', peer) ?? 0) / 1000) };
  const q0 = link.stats.queueDrops;
  const r0 = await rtcStats(page);

  // The drop: decode rate (getStats every 250 ms), backlog every 100 ms.
  const t0 = performance.now();
  link.set({ kbps: NET.adaptLowKbps });
  const backlog = [];
  const timer = setInterval(() => backlog.push({ t: performance.now() - t0, v: backlogMs(link) }), 100);
  const frames = [];
  const trace = [];
  let n = 0;
  try {
    while (performance.now() - t0 < NET.adaptLowMs) {
      const r = await rtcStats(page);
      if (r) frames.push({ t: performance.now() - t0, f: r.framesDecoded, ts: r.timestamp });
      if (n++ % 2 === 0) {
        const m = await agent.metrics();
        trace.push({ t: Math.round(performance.now() - t0), encoderKbps: m.oriel_encoder_bitrate_kbps, estimateKbps: Math.round((peerMetric(m, 'oriel_client_estimate_bps', peer) ?? 0) / 1000), backlogMs: Math.round(backlogMs(link)) });
      }
      await sleep(250);
    }
  } finally {
    clearInterval(timer);
  }
  const lowQueueDrops = link.stats.queueDrops - q0;
  const m1 = await agent.metrics();
  const r1 = await rtcStats(page);
  const pd = (k) => (peerMetric(m1, k, peer) ?? 0) - (peerMetric(m0, k, peer) ?? 0);
  const lowSec = (performance.now() - t0) / 1000;
  // Decoded fps over the 1 s before each sample, windows entirely after the drop.
  const fps = [];
  for (let i = 0; i < frames.length; i++) {
    const b = frames[i];
    let j = i;
    while (j > 0 && b.ts - frames[j].ts < 1000) j--;
    const a = frames[j];
    if (b.ts - a.ts < 900 || a.t < 0) continue;
    fps.push({ t: b.t, v: ((b.f - a.f) / (b.ts - a.ts)) * 1000 });
  }
  const firstDip = fps.find((x) => x.v < NET.adaptFps);
  const firstBack = firstDip ? fps.find((x) => x.t > firstDip.t && x.v >= NET.adaptFps) : null;
  const lastDip = [...fps].reverse().find((x) => x.v < NET.adaptFps);
  const fpsStays = staysFrom(fps, (v) => v >= NET.adaptFps);
  const backlogStays = staysFrom(backlog, (v) => v < NET.adaptBacklogMs);
  const sawBacklog = backlog.some((x) => x.v >= NET.adaptBacklogMs);
  const low = {
    lowestFps: fps.length ? round1(Math.min(...fps.map((x) => x.v))) : null,
    // Until the first 1 s window of >= 20 fps after the first one below.
    fpsBackMs: firstDip ? (firstBack ? Math.round(firstBack.t) : null) : 0,
    // Until the decode rate stays >= 20 fps (last window below 20, then all at or above).
    fpsStaysMs: fpsStays === null ? null : lastDip ? Math.round(fpsStays) : 0,
    fpsDipped: Boolean(firstDip),
    peakBacklogMs: round1(Math.max(0, ...backlog.map((x) => x.v))),
    backlogStaysMs: backlogStays === null ? null : sawBacklog ? Math.round(backlogStays) : 0,
    queueDrops: lowQueueDrops,
    // What the agent sent this client meanwhile: media, and retransmissions on top.
    agentSentKbps: Math.round((pd('oriel_client_sent_bytes_total') * 8) / lowSec / 1000),
    agentSentPackets: pd('oriel_client_sent_packets_total'),
    agentRetransmitted: pd('oriel_client_retransmitted_packets_total'),
    pageNacks: r0 && r1 ? r1.nackCount - r0.nackCount : null,
    pagePlis: r0 && r1 ? r1.pliCount - r0.pliCount : null,
    freezes: r0 && r1 ? r1.freezeCount - r0.freezeCount : null,
    frozenSec: r0 && r1 ? round1(r1.totalFreezesDuration - r0.totalFreezesDuration) : null,
    encoderKbpsAtEnd: trace.length ? trace[trace.length - 1].encoderKbps : null,
    estimateKbpsAtEnd: trace.length ? trace[trace.length - 1].estimateKbps : null,
    fps1s: fps.map((x) => ({ t: Math.round(x.t), fps: round1(x.v) })),
    backlogEvery500ms: backlog.filter((_, i) => i % 5 === 0).map((x) => ({ t: Math.round(x.t), ms: Math.round(x.v) })),
    trace,
  };
  log(`adaptation: drop to ${NET.adaptLowKbps} kbit/s: lowest 1 s ${fmt(low.lowestFps)} fps, >= ${NET.adaptFps} fps again after ${low.fpsBackMs} ms ` +
    `(stays from ${low.fpsStaysMs} ms), peak backlog ${fmt(low.peakBacklogMs, 0)} ms, < ${NET.adaptBacklogMs} ms from ${low.backlogStaysMs} ms; encoder ${low.encoderKbpsAtEnd} kbit/s at the end; ` +
    `agent sent ${low.agentSentKbps} kbit/s (${low.agentSentPackets} pkts) + ${low.agentRetransmitted} rtx, page nack/pli ${low.pageNacks}/${low.pagePlis}, relay queue drops ${low.queueDrops}, frozen ${low.frozenSec} s`);

  // The lift: how fast the encoder gets back.
  const t1 = performance.now();
  link.set({ kbps: NET.adaptHighKbps });
  const upTrace = [];
  let upMs = null;
  while (performance.now() - t1 < NET.recoverTimeoutMs) {
    const m = await agent.metrics();
    const t = Math.round(performance.now() - t1);
    upTrace.push({ t, encoderKbps: m.oriel_encoder_bitrate_kbps, estimateKbps: Math.round((peerMetric(m, 'oriel_client_estimate_bps', peer) ?? 0) / 1000) });
    if (m.oriel_encoder_bitrate_kbps >= NET.adaptEncoderKbps) {
      upMs = t;
      break;
    }
    await sleep(250);
  }
  const s = await status(page);
  const up = { encoderBackMs: upMs, encoderKbpsAtEnd: upTrace[upTrace.length - 1]?.encoderKbps ?? null, trace: upTrace };
  log(`adaptation: lift to ${NET.adaptHighKbps} kbit/s: encoder >= ${NET.adaptEncoderKbps} kbit/s after ${upMs ?? `more than ${NET.recoverTimeoutMs}`} ms`);
  return { highHeldMs: Math.max(highAlreadyMs, NET.adaptHighMs), before, low, up, connects: s.connects };
}

/** Agent CPU with `perfect` loopback viewers, then with `narrow` Chromium viewers on 0.5 Mbit/s links too. */
async function cpuPhase(ctx, agent) {
  const pages = [];
  const links = [];
  let rx = null;
  const out = { perfectKind: NET.cpuPerfectKind, windows: [] };
  const window = async (label, ms) => {
    await sleep(NET.settleMs);
    if (!agent.alive) throw new Error('the agent died');
    const pids = chromiumPids();
    const f0 = await Promise.all(pages.map((p) => rtcStats(p)));
    const rx0 = rx ? await rx.stats() : null;
    const m0 = await agent.metrics();
    const c0 = cpuProbe(agent, pids, rx);
    await sleep(ms);
    const c1 = cpuProbe(agent, pids, rx);
    const m1 = await agent.metrics();
    const rx1 = rx ? await rx.stats() : null;
    const f1 = await Promise.all(pages.map((p) => rtcStats(p)));
    const h = await agent.healthz();
    const cpu = cpuDelta(c0, c1);
    const encoded = (m1.oriel_frames_encoded_total ?? 0) - (m0.oriel_frames_encoded_total ?? 0);
    const w = {
      label, viewers: h.clients, peers: h.peers, cpu,
      encodedFps: round1(encoded / cpu.sec),
      encoderKbps: m1.oriel_encoder_bitrate_kbps ?? null,
      pageFps: pages.map((_, i) => (f0[i] && f1[i] ? round1(((f1[i].framesDecoded - f0[i].framesDecoded) / (f1[i].timestamp - f0[i].timestamp)) * 1000) : null)),
      pageKbps: pages.map((_, i) => (f0[i] && f1[i] ? Math.round(((f1[i].bytesReceived - f0[i].bytesReceived) * 8) / (f1[i].timestamp - f0[i].timestamp)) : null)),
      pageNacks: pages.map((_, i) => (f0[i] && f1[i] ? f1[i].nackCount - f0[i].nackCount : null)),
      pagePlis: pages.map((_, i) => (f0[i] && f1[i] ? f1[i].pliCount - f0[i].pliCount : null)),
      agentRetransmitted: Object.entries(m1).filter(([k]) => k.startsWith('oriel_client_retransmitted_packets_total{')).reduce((a, [k, v]) => a + v - (m0[k] ?? 0), 0),
      keyframesForced: (m1.oriel_keyframes_forced_total ?? 0) - (m0.oriel_keyframes_forced_total ?? 0),
      // A cheaper shared encode for viewers on slow links, where the agent has one (null: no such metric).
      videoEncoders: m1.oriel_video_encoders ?? null,
      rungs: m1.oriel_rungs ?? null,
      rungBitrateKbps: m1.oriel_rung_bitrate_kbps ?? null,
      receiverFps: rx ? rx.alive.map((id) => round1(((rx1.viewers.get(id)?.frames ?? 0) - (rx0.viewers.get(id)?.frames ?? 0)) / cpu.sec)) : [],
      narrowBacklogMs: links.filter((l) => l.settings.kbps > 0).map((l) => Math.round(backlogMs(l))),
    };
    log(`cpu ${label}: ${w.viewers} viewer(s), agent ${fmt(cpu.agentPct)} % of a core, encoded ${fmt(w.encodedFps)} fps at ${w.encoderKbps} kbit/s; ` +
      `pages fps [${w.pageFps.map((x) => fmt(x)).join(', ')}] kbit/s [${w.pageKbps.join(', ')}] nack/pli [${w.pageNacks.map((x, i) => `${x}/${w.pagePlis[i]}`).join(', ')}], ` +
      `agent rtx ${w.agentRetransmitted}, keyframes forced ${w.keyframesForced}, encoders ${w.videoEncoders} rungs ${w.rungs} at ${w.rungBitrateKbps} kbit/s, receivers fps [${w.receiverFps.map((x) => fmt(x)).join(', ')}]; ` +
      `chromium ${fmt(cpu.chromiumPct)} %, receivers ${fmt(cpu.receiverPct)} %, relay (node) ${fmt(cpu.benchNodePct)} %, machine ${fmt(cpu.machineBusyPct)} %, other ${fmt(cpu.otherLoadPct)} %`);
    out.windows.push(w);
    return w;
  };
  try {
    // The perfect viewers: loopback, no relay.
    if (NET.cpuPerfectKind === 'chromium') {
      for (let i = 0; i < NET.cpuPerfect; i++) {
        const l = new ImpairedLink();
        links.push(l);
        const p = await openThrough(ctx, l, agent.viewerUrl);
        pages.push(p);
        await waitDecoding(p, 10);
      }
    } else {
      rx = await Receivers.start(agent.viewerUrl, { name: 'bench-network' });
      out.receiverExtraNote = 'bench_receiver: webrtcbin into fakesink, no decoding';
      await rx.waitFirstFrames(rx.add(NET.cpuPerfect), 30000);
    }
    await waitClients(agent, NET.cpuPerfect, 20000);
    const base = await window(`${NET.cpuPerfect} perfect`, NET.cpuBaseWindowMs);
    for (let i = 0; i < NET.cpuNarrow; i++) {
      const l = new ImpairedLink({ kbps: NET.cpuNarrowKbps, queueMs: NET.capacityQueueMs, delayMs: NET.capacityDelayMs, seed: 11 + i });
      links.push(l);
      const p = await openThrough(ctx, l, agent.viewerUrl);
      pages.push(p);
      // Connected is enough: a viewer's narrow link is not the encoder's
      // concern, and the page may get few whole frames through it.
      await waitFor(async () => (await status(p)).pcState === 'connected', 20000, `narrow viewer ${i + 1} to connect`, 100);
    }
    await waitClients(agent, NET.cpuPerfect + NET.cpuNarrow, 20000);
    const all = await window(`${NET.cpuPerfect} perfect + ${NET.cpuNarrow} at ${NET.cpuNarrowKbps / 1000} Mbit/s`, NET.cpuWindowMs);
    out.agentPct = all.cpu.agentPct;
    out.basePct = base.cpu.agentPct;
    out.perNarrowViewerPct = round1((all.cpu.agentPct - base.cpu.agentPct) / NET.cpuNarrow);
    if (rx) {
      out.receiverExit = await rx.quit();
      out.receiverErrors = receiverErrorsNote(rx);
    }
  } finally {
    for (const p of pages) {
      await p.evaluate(() => window.oriel.disconnect()).catch(() => {});
      await p.close().catch(() => {});
    }
    for (const l of links) l.close();
  }
  return out;
}

// ------------------------------------------------------------ report

const pctLabel = (x) => `${x} %`;
const mbit = (kbps) => `${kbps / 1000} Mbit/s`;

function whatTheNumbersSay(res) {
  const out = [];
  const L = res.loss ?? [];
  const C = res.capacity ?? [];
  const l0 = L.find((w) => w.settings.loss === 0);
  const l2 = L.find((w) => Math.abs(w.settings.loss - 0.02) < 1e-9);
  const l5 = L.find((w) => Math.abs(w.settings.loss - 0.05) < 1e-9);
  if (l0 && l5) {
    out.push(`Random loss: from ${fmt(l0.decodedFps)} fps without loss to ${fmt(l5.decodedFps)} fps at 5 % (worst second ${fmt(l5.worstSecondFps)} fps), ` +
      `${fmt(l5.freezesPerMin)} freezes and ${fmt(l5.frozenSecPerMin, 2)} s frozen per minute there` +
      (l2 ? `; at 2 % ${fmt(l2.decodedFps)} fps, ${fmt(l2.frozenSecPerMin, 2)} s frozen per minute` : '') + '. ' +
      `NACKs scale with loss (${L.map((w) => w.nacksSent).join(', ')} over the windows) and retransmissions follow (${L.map((w) => w.retransmissionsReceived).join(', ')}); ` +
      `the encoder ran at ${L.map((w) => w.encoderKbps.median).join(', ')} kbit/s (medians) and the page received ${L.map((w) => w.deliveredKbps).join(', ')} kbit/s.`);
  }
  if (C.length) {
    const tight = C.filter((w) => w.settings.kbps < res.config.bitrateKbps);
    out.push(`Capacity: ${C.map((w) => `${mbit(w.settings.kbps)} ${fmt(w.decodedFps)} fps, backlog p50/p99 ${fmt(w.backlogMs?.p50, 0)}/${fmt(w.backlogMs?.p99, 0)} ms`).join('; ')}. ` +
      (tight.length ? `On the links narrower than --bitrate the encoder ran at ${tight.map((w) => `${w.encoderKbps.median}`).join(', ')} kbit/s (medians) for ${tight.map((w) => w.settings.kbps).join(', ')} kbit/s of link. ` : '') +
      `The backlog is what the network adds to the glass-to-glass latency on top of the ${res.config.capacityDelayMs} ms of delay.` +
      (tight.length ? ` Retransmissions were ${tight.map((w) => `${fmt((100 * w.agentRetransmitted) / Math.max(1, w.agentRetransmitted + w.agentSentPackets), 0)} %`).join(', ')} of the packets the agent sent on those links.` : ''));
  }
  const a = res.adaptation;
  if (a) {
    out.push(`Adaptation: after the drop to ${mbit(res.config.adaptLowKbps)} the page ` +
      (a.low.fpsDipped ? `fell to ${fmt(a.low.lowestFps)} fps in its worst second and decoded >= ${res.config.adaptFps} fps again after ${a.low.fpsBackMs === null ? `more than ${res.config.adaptLowMs / 1000} s` : `${fmt(a.low.fpsBackMs / 1000)} s`}` :
        `never fell below ${res.config.adaptFps} fps (lowest 1 s window ${fmt(a.low.lowestFps)})`) +
      `; the queue peaked at ${fmt(a.low.peakBacklogMs, 0)} ms and stayed under ${res.config.adaptBacklogMs} ms from ${a.low.backlogStaysMs === null ? '**never, within the window**' : `${fmt(a.low.backlogStaysMs / 1000)} s`}. ` +
      `Back at ${mbit(res.config.adaptHighKbps)} the encoder reached ${res.config.adaptEncoderKbps} kbit/s after ${a.up.encoderBackMs === null ? `**more than ${res.config.recoverTimeoutMs / 1000} s**` : `${fmt(a.up.encoderBackMs / 1000)} s`}.`);
  }
  const c = res.cpu;
  if (c) {
    const all = c.windows[c.windows.length - 1];
    out.push(`CPU: ${fmt(c.agentPct)} % of one core for ${res.config.cpuPerfect + res.config.cpuNarrow} viewers; ` +
      `the ${res.config.cpuNarrow} Chromium viewers on ${mbit(res.config.cpuNarrowKbps)} links add ${fmt(c.perNarrowViewerPct)} % each over the ${res.config.cpuPerfect} loopback ${c.perfectKind === 'receiver' ? 'bench_receiver viewers' : 'Chromium viewers'} alone (${fmt(c.basePct)} %). ` +
      `Those viewers decoded ${all.pageFps.map((x) => fmt(x)).join(', ')} fps; without a driver the shared encoder stays at --bitrate (${all.encoderKbps} kbit/s)` +
      (all.rungs ? ` and they read the cheaper rung at ${all.rungBitrateKbps} kbit/s, whose encode is part of their cost` : ', more than their links carry') +
      `; the agent answered their NACKs with ${all.agentRetransmitted} retransmissions in the window.`);
  }
  return out.map((x) => `- ${x}`).join('\n');
}

/** This part's section of BENCHMARKS.md. */
export function render(res, jsonRel) {
  const cfg = res.config;
  const L = [];
  L.push('## Networks: loss, capacity, adaptation');
  L.push('');
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}).`);
  L.push('');
  L.push(`Machine: ${res.machine.cpuModel}, ${res.machine.cores} cores (from /proc/cpuinfo); every figure below is from this run on it. ` +
    `Agent \`oriel ${res.agentArgs.join(' ')}\` (${res.agent.build} build), encoder ${res.healthz?.encoder ?? '?'}; capture \`${cfg.capture}\` at ${cfg.size}, ${cfg.framerate} fps ` +
    `(noise: x264 needs all of --bitrate). Load average at start: ${res.machine.loadAvgAtStart.join(' ')}; ` +
    `load not from this part (machine busy minus the agent, Chromium, this node process and the receivers) up to ${fmt(res.derived.maxOtherLoadPct)} % of ${res.machine.cores * 100} % in a window (median ${fmt(res.derived.medianOtherLoadPct)} %).`);
  L.push('');
  if (res.agent.build !== 'release') L.push(`**Note:** this run used a **${res.agent.build}** build of the agent.`, '');
  if (cfg.quick) L.push('**Note:** a quick run (NETWORK_QUICK=1): short windows, not for comparison.', '');
  L.push(`Method: one Chromium page on the **controller** link (the encoder follows the controller's link estimate) whose media crosses the e2e tests' impairment relay ` +
    `(\`tests/e2e/impair.mjs\`: the page's WebSocket is routed by playwright so every ICE candidate of the agent points at a UDP relay in the bench's node process; ` +
    `loss, shaping and queue apply from the agent to the page, the delay both ways). One session throughout: each setting is applied to the running session, ` +
    `then ${cfg.settleMs / 1000} s of settling, then a ${cfg.windowMs / 1000} s window. Counters are getStats() \`inbound-rtp\` deltas read in the page ` +
    `(freezes: Chromium's \`freezeCount\`/\`totalFreezesDuration\`); "worst 1 s" is the lowest decode rate in the window's 1 s samples; encoder and estimate are ` +
    `\`oriel_encoder_bitrate_kbps\` and the page's \`oriel_client_estimate_bps\` from /metrics, sampled every second (median, min-max); "relay dropped" counts the relay's random loss and queue (tail) drops. ` +
    `Backlog = \`link.busyUntil - now\` (floored at 0) every 100 ms: how long a packet entering the link's queue waits, nearest-rank p50/p99.`);
  L.push('');
  L.push(`### Random loss (${cfg.lossDelayMs} ms each way, ${cfg.lossDelayMs * 2} ms RTT, no capacity limit)`);
  L.push('');
  L.push('| loss | decoded fps | worst 1 s | freezes /min | frozen s /min | NACKs sent | retransmissions received / sent by the agent | keyframes decoded | delivered kbit/s | encoder kbit/s | estimate kbit/s | relay dropped | agent CPU % | other load % |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|');
  for (const w of res.loss) {
    L.push(`| ${pctLabel(round1(w.settings.loss * 100))} | **${fmt(w.decodedFps)}** | ${fmt(w.worstSecondFps)} | ${fmt(w.freezesPerMin)} | **${fmt(w.frozenSecPerMin, 2)}** | ${w.nacksSent} | ${w.retransmissionsReceived} / ${w.agentRetransmitted} | ` +
      `${w.keyframesDecoded} | ${w.deliveredKbps} | ${w.encoderKbps.median} (${w.encoderKbps.min}-${w.encoderKbps.max}) | ${w.estimateKbps.median} (${w.estimateKbps.min}-${w.estimateKbps.max}) | ` +
      `${w.relay.lost + w.relay.queueDrops} (${fmt(w.relay.dropFraction * 100, 2)} %) | ${fmt(w.cpu.agentPct)} | ${fmt(w.cpu.otherLoadPct)} |${w.reconnected ? ' **reconnected**' : ''}`);
  }
  L.push('');
  L.push(`### Capacity (${cfg.capacityQueueMs} ms tail-drop queue, ${cfg.capacityDelayMs} ms each way, no random loss; applied in this order)`);
  L.push('');
  L.push('| link | decoded fps | worst 1 s | freezes /min | frozen s /min | NACKs sent | retransmissions received / sent by the agent | keyframes decoded | delivered kbit/s | encoder kbit/s | estimate kbit/s | **backlog p50 / p99 ms** | queue drops | agent CPU % | other load % |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|---:|---:|');
  for (const w of res.capacity) {
    L.push(`| ${mbit(w.settings.kbps)} | **${fmt(w.decodedFps)}** | ${fmt(w.worstSecondFps)} | ${fmt(w.freezesPerMin)} | **${fmt(w.frozenSecPerMin, 2)}** | ${w.nacksSent} | ${w.retransmissionsReceived} / ${w.agentRetransmitted} | ` +
      `${w.keyframesDecoded} | ${w.deliveredKbps} | ${w.encoderKbps.median} (${w.encoderKbps.min}-${w.encoderKbps.max}) | ${w.estimateKbps.median} (${w.estimateKbps.min}-${w.estimateKbps.max}) | ` +
      `**${fmt(w.backlogMs?.p50, 0)} / ${fmt(w.backlogMs?.p99, 0)}** | ${w.relay.queueDrops} | ${fmt(w.cpu.agentPct)} | ${fmt(w.cpu.otherLoadPct)} |${w.reconnected ? ' **reconnected**' : ''}`);
  }
  L.push('');
  const a = res.adaptation;
  L.push('### Adaptation');
  L.push('');
  L.push(`The same session, straight after the ${mbit(cfg.adaptHighKbps)} window (the link had been at ${mbit(cfg.adaptHighKbps)} for ${fmt(a.highHeldMs / 1000, 0)} s; encoder ${a.before.encoderKbps} kbit/s, estimate ${a.before.estimateKbps} kbit/s): ` +
    `the link drops to ${mbit(cfg.adaptLowKbps)} for ${cfg.adaptLowMs / 1000} s, then goes back to ${mbit(cfg.adaptHighKbps)}. Decode rate from getStats every 250 ms over the preceding 1 s (windows after the drop only), backlog every 100 ms, /metrics every 250-500 ms.`);
  L.push('');
  L.push('| after | time |');
  L.push('|---|---:|');
  L.push(`| the drop to ${mbit(cfg.adaptLowKbps)}: decoding >= ${cfg.adaptFps} fps in a 1 s window again | **${a.low.fpsDipped ? (a.low.fpsBackMs === null ? `not within ${cfg.adaptLowMs / 1000} s` : `${fmt(a.low.fpsBackMs / 1000)} s`) : `never fell below (0 s)`}** (lowest 1 s: ${fmt(a.low.lowestFps)} fps) |`);
  L.push(`| the drop: decoding >= ${cfg.adaptFps} fps in every 1 s window from then on | ${a.low.fpsStaysMs === null ? `not within ${cfg.adaptLowMs / 1000} s` : `${fmt(a.low.fpsStaysMs / 1000)} s`} |`);
  L.push(`| the drop: backlog < ${cfg.adaptBacklogMs} ms from then on | **${a.low.backlogStaysMs === null ? `not within ${cfg.adaptLowMs / 1000} s` : `${fmt(a.low.backlogStaysMs / 1000)} s`}** (peak ${fmt(a.low.peakBacklogMs, 0)} ms) |`);
  L.push(`| the lift to ${mbit(cfg.adaptHighKbps)}: \`oriel_encoder_bitrate_kbps\` >= ${cfg.adaptEncoderKbps} | **${a.up.encoderBackMs === null ? `not within ${cfg.recoverTimeoutMs / 1000} s` : `${fmt(a.up.encoderBackMs / 1000)} s`}** (from ${a.low.encoderKbpsAtEnd} kbit/s) |`);
  L.push('');
  L.push(`Over the ${cfg.adaptLowMs / 1000} s at ${mbit(cfg.adaptLowKbps)}: the page froze ${a.low.freezes ?? 'n/a'} time(s) for ${fmt(a.low.frozenSec)} s and sent ${a.low.pageNacks ?? 'n/a'} NACKs and ${a.low.pagePlis ?? 'n/a'} PLIs; ` +
    `the agent handed it ${a.low.agentSentPackets} media packets (${a.low.agentSentKbps} kbit/s) and retransmitted ${a.low.agentRetransmitted}; the relay's queue dropped ${a.low.queueDrops} packets.`);
  L.push('');
  const c = res.cpu;
  L.push('### CPU with viewers on narrow links');
  L.push('');
  L.push(`Agent CPU (utime+stime from /proc/PID/stat, % of one core of the ${res.machine.cpuModel}) with ${cfg.cpuPerfect + cfg.cpuNarrow} viewers (viewer link, no controller, so the encoder runs at --bitrate): ` +
    `**${fmt(c.agentPct)} %** over ${cfg.cpuWindowMs / 1000} s, ${cfg.cpuNarrow} of them Chromium pages each on its own ${mbit(cfg.cpuNarrowKbps)} relay (${cfg.capacityQueueMs} ms queue) and ` +
    `${cfg.cpuPerfect} ${c.perfectKind === 'receiver' ? '`bench_receiver` viewers on loopback (webrtcbin into fakesink, no decoding: 2 cores do not carry 8 browsers next to the agent)' : 'Chromium pages on loopback'}; ` +
    `with the ${cfg.cpuPerfect} loopback viewers alone ${fmt(c.basePct)} % (${cfg.cpuBaseWindowMs / 1000} s), so **${fmt(c.perNarrowViewerPct)} %** per narrow-link viewer.`);
  const all = c.windows[c.windows.length - 1];
  L.push('');
  L.push(`In that window: encoded ${fmt(all.encodedFps)} fps at ${all.encoderKbps} kbit/s (${all.keyframesForced} keyframes forced)` +
    (all.rungs ? `, plus ${all.rungs} cheaper rung at ${all.rungBitrateKbps} kbit/s for the slow viewers (${all.videoEncoders} encoders in all)` : all.rungs === 0 ? ', no extra rung' : '') + `; the narrow pages decoded ${all.pageFps.map((x) => fmt(x)).join(', ')} fps, ` +
    `received ${all.pageKbps.join(', ')} kbit/s and sent ${all.pageNacks.join(', ')} NACKs and ${all.pagePlis.join(', ')} PLIs; the agent retransmitted ${all.agentRetransmitted} packets; the loopback viewers got ${all.receiverFps.map((x) => fmt(x, 0)).join(', ')} whole frames/s; ` +
    `Chromium ${fmt(all.cpu.chromiumPct)} %, receivers ${fmt(all.cpu.receiverPct)} %, the relays (node) ${fmt(all.cpu.benchNodePct)} %, machine ${fmt(all.cpu.machineBusyPct)} % of ${res.machine.cores * 100} %, other load ${fmt(all.cpu.otherLoadPct)} %.`);
  L.push('');
  L.push(...readingAndOddities(whatTheNumbersSay(res), res.notes));
  return L.join('\n');
}

/** One-line findings for the top of BENCHMARKS.md. */
export function headline(res) {
  const out = [];
  const l2 = res.loss.find((w) => Math.abs(w.settings.loss - 0.02) < 1e-9);
  const l5 = res.loss.find((w) => Math.abs(w.settings.loss - 0.05) < 1e-9);
  if (l2 && l5) {
    out.push(`Random loss, 40 ms RTT: 2 % → ${fmt(l2.decodedFps)} fps, ${fmt(l2.frozenSecPerMin, 2)} s frozen per minute; 5 % → ${fmt(l5.decodedFps)} fps, ${fmt(l5.frozenSecPerMin, 2)} s frozen per minute (part \`network\`).`);
  }
  const c05 = res.capacity.find((w) => w.settings.kbps === 500);
  if (c05) out.push(`A 0.5 Mbit/s link: ${fmt(c05.decodedFps)} fps, encoder ${c05.encoderKbps.median} kbit/s, queue backlog p50 ${fmt(c05.backlogMs?.p50, 0)} / p99 ${fmt(c05.backlogMs?.p99, 0)} ms (part \`network\`).`);
  const a = res.adaptation;
  if (a) {
    out.push(`8 → 0.5 Mbit/s: ${a.low.fpsDipped ? `>= 20 fps again after ${a.low.fpsBackMs === null ? 'more than the window' : `${fmt(a.low.fpsBackMs / 1000)} s`}` : 'never below 20 fps'}, backlog < 100 ms from ${a.low.backlogStaysMs === null ? 'never' : `${fmt(a.low.backlogStaysMs / 1000)} s`}; ` +
      `back to 8 Mbit/s: encoder >= 1800 kbit/s after ${a.up.encoderBackMs === null ? 'more than the timeout' : `${fmt(a.up.encoderBackMs / 1000)} s`} (part \`network\`).`);
  }
  if (res.cpu) {
    const all = res.cpu.windows[res.cpu.windows.length - 1];
    out.push(`8 viewers, 4 of them on 0.5 Mbit/s links: the agent uses ${fmt(res.cpu.agentPct)} % of a core, ${fmt(res.cpu.perNarrowViewerPct)} % per narrow-link viewer; ` +
      `those decode ${all.pageFps.map((x) => fmt(x, 0)).join(', ')} fps (part \`network\`).`);
  }
  return out;
}

function oddities(res, agentLog) {
  const notes = [];
  if (res.agent.build !== 'release') notes.push(`agent is a ${res.agent.build} build`);
  if (res.config.quick) notes.push('quick run (NETWORK_QUICK=1)');
  const busy = [];
  for (const w of [...res.loss, ...res.capacity]) {
    if (w.reconnected) notes.push(`${w.label}: the page reconnected during the window`);
    if (w.cpu.otherLoadPct > 30) busy.push(`${w.label} ${fmt(w.cpu.otherLoadPct, 0)} %`);
    if (w.decodedFps > 1.1 * res.config.framerate) {
      notes.push(`${w.label}: the page decoded ${fmt(w.decodedFps)} fps, more than the ${res.config.framerate} encoded: frames held back by a freeze before the window were decoded inside it`);
    }
  }
  const l0 = res.loss.find((w) => w.settings.loss === 0);
  if (l0 && l0.decodedFps < 0.9 * res.config.framerate) notes.push(`without loss the page decoded only ${fmt(l0.decodedFps)} fps`);
  if (res.adaptation?.connects > 1) notes.push(`the controller page connected ${res.adaptation.connects} times over the run`);
  for (const w of res.cpu?.windows ?? []) {
    if (w.encodedFps < 0.9 * res.config.framerate) notes.push(`cpu ${w.label}: the agent encoded only ${fmt(w.encodedFps)} fps: its CPU there is what it was given`);
    if (w.cpu.otherLoadPct > 30) busy.push(`cpu ${w.label} ${fmt(w.cpu.otherLoadPct, 0)} %`);
  }
  if (busy.length) notes.push(`other load on the machine (not this part's) above 30 % of ${res.machine.cores * 100} % in: ${busy.join(', ')}`);
  const low = res.adaptation?.low;
  if (low && low.agentRetransmitted > low.agentSentPackets) {
    notes.push(`during the ${res.config.adaptLowMs / 1000} s at ${mbit(res.config.adaptLowKbps)} the agent retransmitted ${low.agentRetransmitted} packets, ` +
      `${fmt(low.agentRetransmitted / Math.max(1, low.agentSentPackets))}x the ${low.agentSentPackets} media packets it sent: retransmissions go out on top of the encoder's rate into a link that is already full`);
  }
  const all = res.cpu?.windows?.[res.cpu.windows.length - 1];
  if (all?.pageFps?.length && all.pageFps.every((x) => x !== null && x < 1)) {
    notes.push(`the ${all.pageFps.length} viewers on ${mbit(res.config.cpuNarrowKbps)} links decoded no frames (${all.pageFps.map((x) => fmt(x)).join(', ')} fps) while receiving ${all.pageKbps.join(', ')} kbit/s; ` +
      `the agent retransmitted ${all.agentRetransmitted} packets to them in ${fmt(all.cpu.sec, 0)} s (${fmt(all.agentRetransmitted / all.cpu.sec / all.pageFps.length, 0)} per viewer per second)`);
  }
  if (res.cpu?.receiverErrors) notes.push(res.cpu.receiverErrors);
  if (res.cpu?.receiverExit !== undefined && res.cpu.receiverExit !== 0) notes.push(`bench_receiver exited with ${res.cpu.receiverExit}`);
  noteAgentWarnings(res, notes, agentLog);
  return notes;
}

function derive(res) {
  const others = [...res.loss, ...res.capacity].map((w) => w.cpu.otherLoadPct).concat((res.cpu?.windows ?? []).map((w) => w.cpu.otherLoadPct));
  return { maxOtherLoadPct: others.length ? Math.max(...others) : null, medianOtherLoadPct: round1(median(others)) };
}

async function main(res) {
  res.command = 'cd bench && node network.mjs';
  res.config = { ...NET, framerate: CFG.framerate };
  res.machine = machineInfo();
  res.agent = agentInfo();
  log(`agent ${res.agent.bin} (${res.agent.build}), ${res.machine.cores} cores (${res.machine.cpuModel}), load ${res.machine.loadAvgAtStart.join(' ')}${QUICK ? ', QUICK' : ''}`);
  const config = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-bench-net-'));
  tmpDirs.push(config);
  fs.mkdirSync(path.join(config, 'pipelines'));
  fs.writeFileSync(path.join(config, 'pipelines', 'capture-test.txt'), `${NET.capture}\n`);
  const agent = await startAgent(null, {
    capture: 'test',
    args: ['--config-dir', config, '--virtual-display-size', NET.size, '--min-bitrate', String(NET.minBitrateKbps), '--input', 'none'],
  });
  res.agentArgs = agent.args().map((a) => (a.startsWith(os.tmpdir()) ? '<tmp>' : a));
  const ctx = await launchBrowser();

  const link = new ImpairedLink({ delayMs: NET.lossDelayMs });
  const page = await openThrough(ctx, link, agent.controllerUrl);
  try {
    await waitDecoding(page, 10);
    res.healthz = await agent.healthz();
    res.role = (await status(page)).role;
    res.loss = await lossPhase(agent, page, link);
    // Adaptation right after the 8 Mbit/s window (its 35 s at 8 Mbit/s are
    // the 15 s to start from), or on its own after the capacity levels.
    res.capacity = await capacityPhase(agent, page, link, async (kbps) => {
      if (kbps === NET.adaptHighKbps && !res.adaptation) res.adaptation = await adaptationPhase(agent, page, link, NET.settleMs + NET.windowMs);
    });
    res.adaptation ??= await adaptationPhase(agent, page, link, 0);
  } finally {
    await page.evaluate(() => window.oriel.disconnect()).catch(() => {});
    await page.close().catch(() => {});
    link.close();
  }
  await waitClients(agent, 0, 15000).catch(() => {});
  res.cpu = await cpuPhase(ctx, agent);
  if (!agent.alive) throw new Error('the agent died during the run');
  const agentLog = [...agent.rec.log];
  res.agentLogFile = saveAgentLog(agent.rec.log, res.startedAt, 'network');
  res.derived = derive(res);
  res.notes = oddities(res, agentLog);
  const a = res.adaptation;
  return `\nnetwork (${res.machine.cpuModel}, ${res.machine.cores} cores)\n` +
    res.loss.map((w) => `  loss ${round1(w.settings.loss * 100)} %: ${fmt(w.decodedFps)} fps, ${fmt(w.frozenSecPerMin, 2)} s frozen/min, nack ${w.nacksSent}, rtx ${w.retransmissionsReceived}, ${w.deliveredKbps} kbit/s, encoder ${w.encoderKbps.median}`).join('\n') + '\n' +
    res.capacity.map((w) => `  ${mbit(w.settings.kbps)}: ${fmt(w.decodedFps)} fps, ${fmt(w.frozenSecPerMin, 2)} s frozen/min, ${w.deliveredKbps} kbit/s, encoder ${w.encoderKbps.median}, backlog p50/p99 ${fmt(w.backlogMs?.p50, 0)}/${fmt(w.backlogMs?.p99, 0)} ms`).join('\n') + '\n' +
    `  adaptation: fps back ${a.low.fpsBackMs} ms, backlog < 100 ms from ${a.low.backlogStaysMs} ms, encoder >= 1800 after ${a.up.encoderBackMs} ms\n` +
    `  cpu: ${fmt(res.cpu.agentPct)} % with 8 viewers, ${fmt(res.cpu.perNarrowViewerPct)} % per narrow viewer\n` +
    `${res.notes.map((n) => `note: ${n}`).join('\n')}`;
}

if (isMain(import.meta.url)) runPart('network', main);
