#!/usr/bin/env node
// oriel benchmark part `ttff`: how long a joining browser waits for its first
// decoded frame while other viewers are connected, and whether those viewers
// keep receiving meanwhile.
//
//   cd bench && node ttff.mjs      (or `make bench-ttff`)
//
// What it does, unattended (about 1.5 minutes on a 2-core machine):
//   1. Xvfb with full-screen moving content (BENCH_SCENE=bars), the agent on
//      it at 720p30, default bitrate.
//   2. BENCH_TTFF_VIEWERS (8) lightweight receivers (examples/bench_receiver,
//      webrtcbin into fakesink, one process) join and play.
//   3. BENCH_TTFF_JOINS (20) times: a fresh Chromium page opens the viewer
//      link and waits for its first presented frame, then leaves. Recorded:
//      `window.oriel.status().firstFrameSinceConnectMs` (WebSocket open ->
//      first presented frame, as clients.mjs does), `firstFrameSinceLoadMs`,
//      and the bench's own time from navigation start to the frame; the
//      agent's keyframe counters per join.
//   4. The background viewers' frame counts over the whole series against
//      the frames the agent encoded (oriel_frames_encoded_total), and per join.
//
// Knobs (environment): ORIEL_BIN, BENCH_RECEIVER, CHROMIUM,
// BENCH_TTFF_VIEWERS (8), BENCH_TTFF_JOINS (20), BENCH_TTFF_JOIN_TIMEOUT_MS
// (10000), BENCH_SETTLE_MS (3000), BENCH_FRAME_SLACK (2), BENCH_SCENE,
// BENCH_NO_MARKDOWN=1, BENCH_TIMEOUT_MS (540000), BENCH_AGENT_ARGS.

import { performance } from 'node:perf_hooks';
import {
  CFG, agentInfo, closeClient, envNum, fmt, launchBrowser, log, machineInfo, median, openClient, quantile, round1,
  sleep, startAgent, startDisplay, status, waitClients, waitPresented,
} from './lib/harness.mjs';
import { isMain, noteAgentWarnings, readingAndOddities, runPart, saveAgentLog } from './lib/run.mjs';
import { Receivers, receiverErrorsNote } from './lib/receiver.mjs';

const BACKGROUND = envNum('BENCH_TTFF_VIEWERS', 8);
const JOINS = envNum('BENCH_TTFF_JOINS', 20);
const JOIN_TIMEOUT_MS = envNum('BENCH_TTFF_JOIN_TIMEOUT_MS', 10000);
const FRAME_SLACK = envNum('BENCH_FRAME_SLACK', 2);
const MAX_FAILED = 3;

const KF = ['oriel_keyframes_requested_total', 'oriel_keyframes_forced_total', 'oriel_keyframes_coalesced_total'];

/** Background viewers' frames between two stats snapshots, against frames encoded. */
function framesBetween(rx, a, b, encoded) {
  const per = rx.alive.map((id) => {
    const x = a.s.viewers.get(id);
    const y = b.s.viewers.get(id);
    return { id, frames: x && y ? y.frames - x.frames : null, state: y?.state ?? 'missing' };
  });
  const fr = per.map((p) => p.frames).filter((x) => x !== null);
  // Frames that may fall on the wrong side of a snapshot: the fixed slack
  // plus those encoded while the counters were read.
  const slack = FRAME_SLACK + Math.ceil(((a.ms + b.ms) / 1000) * CFG.framerate);
  return {
    slack,
    encoded,
    sec: round1((b.t - a.t) / 1000),
    min: fr.length ? Math.min(...fr) : null,
    median: median(fr),
    maxDeficit: per.length ? Math.max(...per.map((p) => (p.frames === null ? Infinity : encoded - p.frames))) : null,
    everyFrame: per.every((p) => p.frames !== null && encoded - p.frames <= slack),
    notConnected: per.filter((p) => p.state !== 'connected').map((p) => p.id),
    perViewer: per,
  };
}

async function joins(ctx, agent, rx) {
  // The agent's and the viewers' counters asked for at the same moment.
  const snap = async () => {
    const t = performance.now();
    const [m, s] = await Promise.all([agent.metrics(), rx.stats()]);
    return { m, s, t, ms: performance.now() - t };
  };
  const samples = [];
  const first = await snap();
  let prev = first;
  for (let i = 0; i < JOINS; i++) {
    const at = new Date().toISOString();
    const t0 = performance.now();
    const page = await openClient(ctx, agent);
    const loaded = performance.now();
    let sample;
    try {
      const s = await waitPresented(page, JOIN_TIMEOUT_MS);
      const seen = performance.now();
      sample = {
        at,
        firstFrameSinceConnectMs: s.firstFrameSinceConnectMs,
        firstFrameSinceLoadMs: s.firstFrameSinceLoadMs,
        // Navigation start to the bench seeing the frame (polled every 20 ms).
        benchNavToFrameMs: round1(seen - t0),
        pageLoadMs: round1(loaded - t0),
      };
    } catch (e) {
      const st = await status(page).catch(() => null);
      sample = { at, failed: true, error: e.message.split(' (last value')[0], statusAtTimeout: st };
      log(`join ${i + 1} FAILED: no frame within ${JOIN_TIMEOUT_MS} ms; page status ${JSON.stringify(st)}`);
    }
    await closeClient(page);
    await waitClients(agent, BACKGROUND, 15000);
    const now = await snap();
    const md = (k) => (now.m[k] ?? 0) - (prev.m[k] ?? 0);
    sample.keyframes = { requested: md(KF[0]), forced: md(KF[1]), coalesced: md(KF[2]) };
    sample.background = framesBetween(rx, prev, now, md('oriel_frames_encoded_total'));
    delete sample.background.perViewer;
    prev = now;
    samples.push(sample);
    log(`join ${i + 1}/${JOINS}: ${sample.failed ? 'FAILED' : `${fmt(sample.firstFrameSinceConnectMs, 0)} ms since connect, ${fmt(sample.firstFrameSinceLoadMs, 0)} since load`}; ` +
      `background frames min ${sample.background.min} of ${sample.background.encoded} encoded`);
    if (samples.filter((x) => x.failed).length >= MAX_FAILED) {
      log(`${MAX_FAILED} failed joins, stopping early`);
      break;
    }
    await sleep(200);
  }
  const whole = framesBetween(rx, first, prev, (prev.m.oriel_frames_encoded_total ?? 0) - (first.m.oriel_frames_encoded_total ?? 0));
  return { samples, background: whole };
}

function dist(all, k) {
  const xs = all.filter((x) => !x.failed).map((x) => x[k]);
  return {
    n: xs.length,
    failed: all.filter((x) => x.failed).length,
    p50: round1(quantile(xs, 0.5)),
    p95: round1(quantile(xs, 0.95)),
    max: round1(xs.length ? Math.max(...xs) : null),
    min: round1(xs.length ? Math.min(...xs) : null),
  };
}

function derive(res) {
  const s = res.ttff.samples;
  const avg = (k) => (s.length ? s.reduce((a, x) => a + (x.keyframes?.[k] ?? 0), 0) / s.length : null);
  return {
    sinceConnect: dist(s, 'firstFrameSinceConnectMs'),
    sinceLoad: dist(s, 'firstFrameSinceLoadMs'),
    benchNavToFrame: dist(s, 'benchNavToFrameMs'),
    keyframesRequestedPerJoin: round1(avg('requested')),
    keyframesForcedPerJoin: round1(avg('forced')),
    backgroundEveryFrame: res.ttff.background.everyFrame,
    joinsWithBackgroundShortfall: s.filter((x) => x.background && !x.background.everyFrame).length,
  };
}

function whatTheNumbersSay(res) {
  const d = res.derived;
  const c = d.sinceConnect;
  const bg = res.ttff.background;
  const out = [];
  out.push(`With ${res.config.background} other viewers playing, a joining Chromium page shows its first frame ${fmt(c.p50, 0)} ms after its WebSocket opens ` +
    `(p50 of ${c.n}; p95 ${fmt(c.p95, 0)}, max ${fmt(c.max, 0)}), ${fmt(d.sinceLoad.p50, 0)} ms after the page load (p50)` +
    (c.failed ? `; **${c.failed} join(s) got no frame within ${res.config.joinTimeoutMs / 1000} s**` : '') + '. ' +
    `That time covers signalling, ICE and DTLS on loopback, then waiting for a keyframe: each join caused on average ` +
    `${fmt(d.keyframesRequestedPerJoin)} keyframe request(s) and ${fmt(d.keyframesForcedPerJoin)} forced keyframe(s) on the shared encoder.`);
  if (c.p95 !== null && c.p50 !== null && c.p95 > 2 * c.p50) {
    out.push(`The tail is long (p95 more than twice p50): some joins wait for a later keyframe, e.g. when their request falls inside the coalescing window of an earlier one.`);
  }
  if (bg.everyFrame) {
    out.push(`The ${res.config.background} background viewers got every encoded frame over the whole series (${bg.encoded} frames in ${fmt(bg.sec, 0)} s; largest shortfall ${bg.maxDeficit}): joins did not disturb them.`);
  } else {
    out.push(`The background viewers did not all get every frame: over ${fmt(bg.sec, 0)} s the agent encoded ${bg.encoded} frames, the worst viewer missed ${bg.maxDeficit} ` +
      `(${d.joinsWithBackgroundShortfall} of ${res.ttff.samples.length} joins had a shortfall beyond the slack in their interval).`);
  }
  return out.map((x) => `- ${x}`).join('\n');
}

/** This part's section of BENCHMARKS.md. */
export function render(res, jsonRel) {
  const d = res.derived;
  const L = [];
  L.push(`## Time to first frame with ${res.config.background} viewers connected`);
  L.push('');
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}).`);
  L.push('');
  L.push(`Agent \`oriel ${res.agentArgs.join(' ')}\` (${res.agent.build} build), encoder ${res.healthz?.encoder ?? '?'}, ` +
    `${res.config.width}x${res.config.height} @ ${res.config.framerate} fps; screen: \`${res.display.pipeline}\`. Load average at start: ${res.machine.loadAvgAtStart.join(' ')}.`);
  L.push('');
  if (res.agent.build !== 'release') {
    L.push(`**Note:** this run used a **${res.agent.build}** build of the agent.`);
    L.push('');
  }
  L.push(`${res.config.background} \`bench_receiver\` viewers (webrtcbin into fakesink, no decoding) play throughout. ${res.config.joins} times, a fresh Chromium page opens the viewer link, ` +
    `waits for its first presented frame (\`requestVideoFrameCallback\`), then leaves (bye). "since connect" = \`window.oriel.status().firstFrameSinceConnectMs\` ` +
    `(WebSocket open to first presented frame); "since load" = from the page's load; "navigation to frame" = the bench's own clock from \`page.goto\` to seeing the frame ` +
    `(20 ms polling). Nearest-rank percentiles. Keyframe counts are the agent's (\`oriel_keyframes_*_total\`) over each join.`);
  L.push('');
  L.push('| measure | joins with a frame | failed | p50 ms | p95 ms | max ms | min ms |');
  L.push('|---|---:|---:|---:|---:|---:|---:|');
  for (const [name, x] of [['since connect', d.sinceConnect], ['since page load', d.sinceLoad], ['navigation to frame (bench clock)', d.benchNavToFrame]]) {
    L.push(`| ${name} | ${x.n} | ${x.failed ? `**${x.failed}**` : 0} | **${fmt(x.p50, 0)}** | ${fmt(x.p95, 0)} | ${fmt(x.max, 0)} | ${fmt(x.min, 0)} |`);
  }
  L.push('');
  const bg = res.ttff.background;
  L.push(`Background viewers over the whole series: agent encoded ${bg.encoded} frames in ${fmt(bg.sec, 0)} s; frames per viewer min ${bg.min}, median ${bg.median}; ` +
    `every viewer every frame (slack ${bg.slack}: ${FRAME_SLACK} + frames encoded while the counters were read): ${bg.everyFrame ? 'yes' : '**no**'}${bg.notConnected.length ? `; not connected at the end: ${bg.notConnected.join(', ')}` : ''}. ` +
    `Keyframes per join (mean): ${fmt(d.keyframesRequestedPerJoin)} requested, ${fmt(d.keyframesForcedPerJoin)} forced.`);
  L.push('');
  const seq = res.ttff.samples.map((w) => (w.failed ? `**failed** (${w.at})` : fmt(w.firstFrameSinceConnectMs, 0))).join(', ');
  L.push(`Joins in order (ms since connect): ${seq}.`);
  L.push('');
  L.push(...readingAndOddities(whatTheNumbersSay(res), res.notes));
  return L.join('\n');
}

/** One-line findings for the top of BENCHMARKS.md. */
export function headline(res) {
  const c = res.derived.sinceConnect;
  return [`A browser joining while ${res.config.background} viewers play sees its first frame p50 ${fmt(c.p50, 0)} ms, p95 ${fmt(c.p95, 0)} ms after connecting ` +
    `(${c.n} joins${c.failed ? `, ${c.failed} failed` : ''}); the others ${res.ttff.background.everyFrame ? 'kept every frame' : '**lost frames**'} (part \`ttff\`).`];
}

function oddities(res, agentLog, rx) {
  const notes = [];
  if (res.agent.build !== 'release') notes.push(`agent is a ${res.agent.build} build`);
  if (!res.display.covers) notes.push('the moving window does not cover the screen');
  for (const f of res.ttff.samples.filter((w) => w.failed)) notes.push(`join at ${f.at} got no frame within ${JOIN_TIMEOUT_MS / 1000} s; page status then: ${JSON.stringify(f.statusAtTimeout)}`);
  const rxNote = receiverErrorsNote(rx);
  if (rxNote) notes.push(rxNote);
  noteAgentWarnings(res, notes, agentLog);
  return notes;
}

async function main(res) {
  res.command = 'cd bench && node ttff.mjs';
  res.config = {
    width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps, scene: CFG.scene,
    background: BACKGROUND, joins: JOINS, joinTimeoutMs: JOIN_TIMEOUT_MS, settleMs: CFG.settleMs, frameSlack: FRAME_SLACK,
  };
  res.machine = machineInfo();
  res.agent = agentInfo();
  res.display = await startDisplay();
  const agent = await startAgent(res.display.display);
  res.agentArgs = agent.args();
  res.healthz = await agent.healthz();
  const ctx = await launchBrowser();
  const rx = await Receivers.start(agent.viewerUrl, { name: 'bench-ttff' });
  // Warm-up: Chromium's first page pays its one-off costs outside the series.
  const warm = await openClient(ctx, agent);
  await waitPresented(warm, 20000);
  await closeClient(warm);
  const ids = rx.add(BACKGROUND);
  const first = await rx.waitFirstFrames(ids, 30000);
  res.backgroundJoin = first.map((v) => ({ id: v.id, joinedMs: v.joinedMs, connectedMs: v.connectedMs, firstFrameMs: v.firstFrameMs }));
  await waitClients(agent, BACKGROUND, 15000);
  await sleep(CFG.settleMs);
  res.ttff = await joins(ctx, agent, rx);
  res.receiverExit = await rx.quit();
  if (!agent.alive) throw new Error('the agent died during the run');
  const agentLog = [...agent.rec.log];
  res.agentLogFile = saveAgentLog(agent.rec.log, res.startedAt, 'ttff');
  res.derived = derive(res);
  res.notes = oddities(res, agentLog, rx);
  if (res.receiverExit !== 0) res.notes.push(`bench_receiver exited with ${res.receiverExit}`);
  const c = res.derived.sinceConnect;
  return `\nttff with ${BACKGROUND} viewers: n=${c.n} failed=${c.failed} p50 ${fmt(c.p50, 0)} ms p95 ${fmt(c.p95, 0)} ms max ${fmt(c.max, 0)} ms; ` +
    `background every frame: ${res.ttff.background.everyFrame}\n${(res.notes ?? []).map((n) => `note: ${n}`).join('\n')}`;
}

if (isMain(import.meta.url)) runPart('ttff', main);
