#!/usr/bin/env node
// oriel benchmark part `click`: click-to-photon, what a user feels when they
// click on the remote desktop: from the click in the page to the first
// presented frame that shows the desktop's answer. oriel (capture by damage,
// the default, and on the clock) and Selkies 2.1 in the same run.
//
//   cd bench && node click.mjs      (or `make bench-click`)
//
// What it does, unattended (about 6 minutes):
//   1. A bare Xvfb at 720p with examples/click_probe covering the screen: a
//      window that flips dark <-> light on every button press it receives.
//   2. For each frame rate (BENCH_CLICK_RATES, 30,60) and agent
//      (BENCH_CLICK_AGENTS: oriel, oriel-clock, selkies), BENCH_CLICK_ROUNDS
//      (2) rounds, the agents alternating: a fresh agent, one Chromium page
//      that controls it (oriel: the controller link; Selkies: its page, which
//      sends input for everyone), and BENCH_CLICK_CLICKS (30) left clicks by
//      playwright's mouse at the video's centre, each 300-800 ms after the
//      previous answer (random: a click lands at any moment of a frame).
//   3. In the page, a capture-phase mousedown listener notes the click's
//      event time; a requestVideoFrameCallback reader takes each presented
//      frame's patch a quarter in from the top-left, clear of the pointer (WebCodecs VideoFrame.copyTo of 16x16 luma, frames
//      whose pixels are not the ones the callback describes are skipped) and
//      records the first frame of the other colour: click-to-photon is its
//      presentationTime minus the event time, both on the page's clock.
//      A click the probe never flipped for (its log) is "lost on the way
//      in"; one it flipped for but no frame showed within 3 s, "not seen".
//
// Knobs (environment): ORIEL_BIN, BENCH_CLICK_RATES, BENCH_CLICK_AGENTS,
// BENCH_CLICK_ROUNDS, BENCH_CLICK_CLICKS, CLICK_PROBE (the probe binary),
// BENCH_NO_MARKDOWN=1, BENCH_TIMEOUT_MS (1200000).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CFG, REPO_ROOT, agentInfo, childEnv, envNum, fmt, launchBrowser, log, machineInfo, pidsCpuSec, procStatus, quantile,
  round1, sleep, start, startAgent, startBareDisplay, stopChild, sysCpu, waitFor, waitForLine, waitPresented,
} from './lib/harness.mjs';
import { isMain, noteAgentWarnings, readingAndOddities, runPart } from './lib/run.mjs';
import {
  SELKIES_VIDEO, ensureSelkies, openSelkiesPage, selkiesEncoder, selkiesPids, startSelkies, stopSelkies,
} from './lib/selkies.mjs';

const RATES = (process.env.BENCH_CLICK_RATES || '30,60').split(',').map(Number);
const AGENTS = (process.env.BENCH_CLICK_AGENTS || 'oriel,oriel-clock,selkies').split(',');
const ROUNDS = envNum('BENCH_CLICK_ROUNDS', 2);
const CLICKS = envNum('BENCH_CLICK_CLICKS', 30);
const PROBE = process.env.CLICK_PROBE || path.join(REPO_ROOT, 'target/release/examples/click_probe');
const ANSWER_MS = 3000;
CFG.timeoutMs = envNum('BENCH_TIMEOUT_MS', 1200000);

const LABEL = {
  oriel: 'oriel (capture by damage, the default)',
  'oriel-clock': 'oriel `--x11-capture clock`',
  selkies: 'Selkies 2.1.0 (WebRTC, x264)',
};

/** Runs in the page: the click recorder on the <video> `sel`. */
function installClickRecorder(sel) {
  const video = document.querySelector(sel);
  const rec = { clicks: [], pending: null, state: null, trace: [], callbacks: 0, skipped: 0, unclear: 0, errors: 0, error: null };
  window.addEventListener('mousedown', (e) => {
    if (e.button !== 0) return;
    const c = { t: e.timeStamp, from: rec.state, at: null, receiveTime: null };
    rec.clicks.push(c);
    rec.pending = c;
  }, true);
  // The mean luma of a 16x16 patch a quarter of the way in from the
  // top-left, away from the pointer (drawn into oriel's picture where the
  // click was, at the centre), from the decoded frame itself (no RGB
  // conversion of the whole picture), with its timestamp.
  async function centre() {
    const frame = new VideoFrame(video);
    try {
      const vr = frame.visibleRect;
      const rect = { x: (vr.x + vr.width / 4) & ~1, y: (vr.y + vr.height / 4) & ~1, width: 16, height: 16 };
      const buf = new Uint8Array(frame.allocationSize({ rect }));
      const layout = await frame.copyTo(buf, { rect });
      const { offset, stride } = layout[0];
      const rgb = /^(RGB|BGR)/.test(frame.format ?? '');
      let sum = 0;
      for (let y = 0; y < 16; y++) {
        for (let x = 0; x < 16; x++) {
          const i = offset + y * stride + x * (rgb ? 4 : 1);
          sum += rgb ? (buf[i] + buf[i + 1] + buf[i + 2]) / 3 : buf[i];
        }
      }
      return { lum: sum / 256, ts: frame.timestamp };
    } finally {
      frame.close();
    }
  }
  async function onFrame(now, meta) {
    video.requestVideoFrameCallback(onFrame);
    rec.callbacks++;
    let c;
    try {
      c = await centre();
    } catch (e) {
      rec.errors++;
      rec.error = String(e);
      return;
    }
    // Pixels of another frame than this callback's: its time would be wrong.
    if (meta.mediaTime !== undefined && Math.abs(c.ts - meta.mediaTime * 1e6) > 500) {
      rec.skipped++;
      return;
    }
    // For a look afterwards: the first frames' luma and times.
    if (rec.trace.length < 200) rec.trace.push([Math.round(meta.presentationTime), Math.round(c.lum)]);
    // The probe's colours are 16 and 240: anything between is a blend.
    const state = c.lum > 160 ? 'light' : c.lum < 96 ? 'dark' : null;
    if (state === null) {
      rec.unclear++;
      return;
    }
    rec.state = state;
    const p = rec.pending;
    if (p && p.from !== null && state !== p.from && meta.presentationTime >= p.t) {
      p.at = meta.presentationTime;
      p.receiveTime = meta.receiveTime ?? null;
      rec.pending = null;
    }
  }
  video.requestVideoFrameCallback(onFrame);
  window.__click = rec;
}

async function openOrielPage(ctx, agent) {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.goto(agent.controllerUrl, { waitUntil: 'load', timeout: 20000 });
  await waitPresented(page, 30000);
  return page;
}

/** One agent up with its page; `stop()` takes both down. */
async function bringUp(kind, display, ctx, framerate) {
  if (kind === 'selkies') {
    const s = await startSelkies({ display, width: CFG.width, height: CFG.height, framerate, bitrateKbps: CFG.bitrateKbps });
    const { page } = await openSelkiesPage(ctx, s.url);
    return {
      page, sel: SELKIES_VIDEO, pids: () => selkiesPids(s), rec: s.rec, encoder: () => selkiesEncoder(s),
      stop: async () => { await page.close().catch(() => {}); await stopSelkies(s); },
    };
  }
  CFG.framerate = framerate;
  const agent = await startAgent(display, { args: kind === 'oriel-clock' ? ['--x11-capture', 'clock'] : [] });
  const page = await openOrielPage(ctx, agent);
  return {
    page, sel: 'video', pids: () => [agent.pid], rec: agent.rec, encoder: async () => (await agent.healthz()).encoder ?? null,
    stop: async () => {
      await page.evaluate(() => window.oriel.disconnect()).catch(() => {});
      await page.close().catch(() => {});
      await stopChild(agent.rec);
    },
  };
}

async function measure(kind, framerate, display, ctx, probe, notes) {
  const up = await bringUp(kind, display, ctx, framerate);
  const { page } = up;
  try {
    await page.evaluate(installClickRecorder, up.sel);
    const box = await page.$eval(up.sel, (v) => { const r = v.getBoundingClientRect(); return { x: r.left + r.width / 2, y: r.top + r.height / 2 }; });
    // The pointer goes there once: a click then carries no motion.
    await page.mouse.move(box.x, box.y);
    await sleep(1500);
    const flips0 = probeFlips(probe);
    const pids = up.pids();
    const cpu0 = pidsCpuSec(pids);
    const sys0 = sysCpu();
    const t0 = Date.now();
    for (let i = 0; i < CLICKS; i++) {
      await sleep(300 + Math.random() * 500);
      const n = await page.evaluate(() => window.__click.clicks.length);
      await page.mouse.click(box.x, box.y);
      await waitFor(() => page.evaluate((k) => window.__click.clicks[k]?.at != null, n), ANSWER_MS, 'the answer', 20).catch(() => {});
    }
    await sleep(500);
    const dt = (Date.now() - t0) / 1000;
    const cpuPct = ((pidsCpuSec(pids) - cpu0) / dt) * 100;
    const sys1 = sysCpu();
    const rec = await page.evaluate(() => window.__click);
    const flips = probeFlips(probe) - flips0;
    const ms = rec.clicks.filter((c) => c.at !== null).map((c) => c.at - c.t);
    const rssMiB = pids.reduce((a, p) => { try { return a + procStatus(p).rssKb; } catch { return a; } }, 0) / 1024;
    if (rec.errors) notes.push(`${kind} ${framerate} fps: ${rec.errors} frame(s) could not be read (${rec.error})`);
    return {
      kind, framerate, clicks: rec.clicks.length, flips, answered: ms.length,
      lostOnTheWayIn: Math.max(0, rec.clicks.length - flips), notSeen: Math.max(0, flips - ms.length),
      startedUnknown: rec.clicks.filter((c) => c.from === null).length,
      ms: ms.map(round1), p50: round1(quantile(ms, 0.5)), p99: round1(quantile(ms, 0.99)), max: round1(Math.max(...ms)),
      callbacks: rec.callbacks, skipped: rec.skipped, unclear: rec.unclear, trace: rec.trace,
      clickTimes: rec.clicks.map((c) => Math.round(c.t)),
      cpuPct: round1(cpuPct), rssMiB: round1(rssMiB),
      machineBusyPct: round1(((sys1.busy - sys0.busy) / (sys1.total - sys0.total)) * os.cpus().length * 100),
      encoder: await up.encoder(),
      agentLog: up.rec.log,
    };
  } finally {
    await up.stop();
  }
}

function probeFlips(probe) {
  return probe.log.filter((l) => l.startsWith('click_probe: flip ')).length;
}

async function main(res) {
  res.command = `cd bench && ${CFG.taskset ? `BENCH_TASKSET=${CFG.taskset} ` : ''}node click.mjs`;
  res.machine = machineInfo();
  res.agent = agentInfo();
  res.config = { width: CFG.width, height: CFG.height, bitrateKbps: CFG.bitrateKbps, rates: RATES, agents: AGENTS, rounds: ROUNDS, clicks: CLICKS, taskset: CFG.taskset };
  if (!fs.existsSync(PROBE)) throw new Error(`click probe missing: ${PROBE} (cargo build --release --examples, or set CLICK_PROBE)`);
  if (AGENTS.includes('selkies')) res.selkies = await ensureSelkies();
  const { display, xvfb } = await startBareDisplay();
  const probe = start('click_probe', PROBE, ['--display', display], childEnv({ DISPLAY: display }));
  await waitForLine(probe, /click_probe: ready/, 10000, 'the click probe window');
  const ctx = await launchBrowser();
  res.notes = [];
  res.runs = [];
  for (const framerate of RATES) {
    for (let r = 0; r < ROUNDS; r++) {
      for (const kind of r % 2 ? [...AGENTS].reverse() : AGENTS) {
        log(`${framerate} fps, round ${r + 1}: ${kind}`);
        const out = await measure(kind, framerate, display, ctx, probe, res.notes);
        const { agentLog, ...rest } = out;
        if (kind !== 'selkies') noteAgentWarnings({}, res.notes, agentLog);
        log(`  p50 ${fmt(rest.p50)} ms, p99 ${fmt(rest.p99)} ms, ${rest.answered}/${rest.clicks} answered, CPU ${fmt(rest.cpuPct)} %`);
        res.runs.push({ round: r + 1, ...rest });
      }
    }
  }
  await stopChild(probe);
  await stopChild(xvfb);
  res.summary = summarize(res);
  return RATES.map((f) => `click ${f} fps: ${AGENTS.map((k) => `${k} p50 ${fmt(res.summary[f]?.[k]?.p50)} ms`).join(', ')}`).join('\n');
}

/** Per rate and agent: every round's clicks pooled. */
function summarize(res) {
  const out = {};
  for (const f of res.config.rates) {
    out[f] = {};
    for (const k of res.config.agents) {
      const rs = res.runs.filter((r) => r.framerate === f && r.kind === k);
      const ms = rs.flatMap((r) => r.ms);
      const sum = (key) => rs.reduce((a, r) => a + r[key], 0);
      const mean = (key) => round1(rs.reduce((a, r) => a + r[key], 0) / rs.length);
      out[f][k] = {
        rounds: rs.length, clicks: sum('clicks'), answered: ms.length, lostOnTheWayIn: sum('lostOnTheWayIn'), notSeen: sum('notSeen'),
        p50: round1(quantile(ms, 0.5)), p95: round1(quantile(ms, 0.95)), p99: round1(quantile(ms, 0.99)), max: round1(Math.max(...ms)),
        roundP50s: rs.map((r) => r.p50), cpuPct: mean('cpuPct'), rssMiB: mean('rssMiB'), machineBusyPct: mean('machineBusyPct'),
      };
    }
  }
  return out;
}

// --------------------------------------------------------------- report

export function headline(res) {
  const s = res.summary;
  return res.config.rates.map((f) => {
    const o = s[f].oriel;
    const sk = s[f].selkies;
    const vs = sk ? `, Selkies 2.1 p50 ${fmt(sk.p50)} / p99 ${fmt(sk.p99)} ms (ratio ${fmt(sk.p50 / o.p50, 2)})` : '';
    const pin = res.config.taskset ? `, both agents pinned to CPU ${res.config.taskset}` : '';
    return `Click-to-photon at ${f} fps${pin} (click in the page → the desktop's answer presented): oriel p50 ${fmt(o.p50)} / p99 ${fmt(o.p99)} ms${vs}, same run (part \`${res.part}\`).`;
  });
}

export function render(res, jsonRel) {
  const s = res.summary;
  const L = [
    res.config.taskset ? `## Click-to-photon, both agents on one core (\`taskset -c ${res.config.taskset}\`)` : '## Click-to-photon: a click in the page until its answer is on the page',
    '',
    `Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}).`,
    '',
    `A bare Xvfb at ${res.config.width}x${res.config.height} covered by \`examples/click_probe\`, a window that flips dark/light on every button press. Per frame rate, ${res.config.rounds} rounds with the agents alternating, a fresh agent each time, one Chromium page controlling it, ${res.config.clicks} left clicks per round by playwright's mouse at the video's centre, each 300-800 ms after the previous answer. ` +
      'The page notes each click\'s event time (a capture-phase `mousedown` listener) and reads a patch of every presented frame a quarter in from its top-left corner, clear of the pointer (`requestVideoFrameCallback`, WebCodecs `VideoFrame.copyTo`); click-to-photon is the first frame of the new colour\'s `presentationTime` minus the event time, on the page\'s clock. ' +
      `It contains the page's input handling, the data channel, injection (XTest here), the desktop's answer, the wait for a capture, encode, network (loopback) and decode. Both agents at ${res.config.bitrateKbps} kbit/s x264; CPU is the agent's (Selkies: all its processes) over the clicking, % of one core.` +
      (res.config.taskset ? ` Here both agents ran pinned to CPU ${res.config.taskset} (\`BENCH_TASKSET\`: the slow-machine case on any machine); Chromium and the harness were not.` : '') +
      (res.selkies ? ` Selkies: ${res.selkies.versions ?? ''} from PyPI, \`bench/lib/selkies.mjs\`.` : ''),
    '',
    '| fps | agent | clicks | answered | lost on the way in / not seen | **p50 ms** | p95 ms | p99 ms | max ms | p50 per round | agent CPU % | RSS MiB |',
    '|---:|---|---:|---:|---|---:|---:|---:|---:|---|---:|---:|',
  ];
  for (const f of res.config.rates) {
    for (const k of res.config.agents) {
      const x = s[f][k];
      L.push(`| ${f} | ${LABEL[k] ?? k} | ${x.clicks} | ${x.answered} | ${x.lostOnTheWayIn} / ${x.notSeen} | **${fmt(x.p50)}** | ${fmt(x.p95)} | ${fmt(x.p99)} | ${fmt(x.max)} | ${x.roundP50s.map((v) => fmt(v)).join(' / ')} | ${fmt(x.cpuPct)} | ${fmt(x.rssMiB)} |`);
    }
  }
  L.push('');
  const parts = res.config.rates.map((f) => {
    const o = s[f].oriel;
    const bits = [`At ${f} fps oriel answers a click in ${fmt(o.p50)} ms (p50; p99 ${fmt(o.p99)})`];
    if (s[f]['oriel-clock']) bits.push(`${fmt(s[f]['oriel-clock'].p50)} ms capturing on the clock`);
    if (s[f].selkies) bits.push(`Selkies 2.1 in ${fmt(s[f].selkies.p50)} ms (p99 ${fmt(s[f].selkies.p99)})`);
    return bits.join(', ');
  });
  const reading = `${parts.join('; ')}. Issue 15's goal is a p50 of at most 25 ms at 30 fps, ahead of Selkies.`;
  L.push(...readingAndOddities(reading, res.notes));
  return L.join('\n');
}

if (isMain(import.meta.url)) runPart(CFG.taskset ? 'click-taskset' : 'click', main);
