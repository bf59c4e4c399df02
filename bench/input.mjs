#!/usr/bin/env node
// oriel benchmark part `input`: how long pointer input takes, under a 500 Hz
// pointer-motion stream from a real Chromium page holding a controller link
// (while it also receives the 720p30 video).
//
//   cd bench && node input.mjs        (or `make bench-input`)
//
// Two measurements, on the same events:
//   - inside the agent: data-channel message arrival to the injection call
//     (XTest here) returning, from the agent's `oriel_input_latency_seconds`
//     summary (nearest-rank quantiles over its last 4096 events), read after
//     each round;
//   - end to end: the page's send call to the X server reporting the pointer
//     at that position. `examples/pointer_watch` holds an invisible
//     input-only window over the screen and prints the time of every
//     MotionNotify (CLOCK_REALTIME); every motion the page sends goes to its
//     own pixel, so each report matches one send. Same machine, same clock:
//     the page's time is performance.timeOrigin + performance.now().
// The page paces itself by spinning on performance.now() while it sends (its
// main thread does nothing else meanwhile; video decoding is off that thread):
// a loop that yields between sends (MessageChannel; setTimeout clamps to
// ~4 ms) saw the page's main thread stall for 0.4-0.8 s at a time and reached
// only 350-480 Hz (BENCH_INPUT_YIELD=1 brings it back). Each send is the
// binary `pointer absolute` message on the `motion` channel through
// window.oriel.sendInput, which is what the web client's own pointer handler
// calls.
//
// Knobs (environment): ORIEL_BIN, BENCH_INPUT_HZ (500), BENCH_INPUT_YIELD (0), BENCH_INPUT_SECONDS
// (7.5 per round: with the 0.5 s warm-up, 4000 events fill the agent's
// 4096-event window with this round only), BENCH_INPUT_ROUNDS (3),
// BENCH_NO_MARKDOWN=1, BENCH_TIMEOUT_MS (300000).
import fs from 'node:fs';
import path from 'node:path';
import {
  CFG, agentInfo, childEnv, createLink, envNum, fmt, launchBrowser, log, machineInfo, median, quantile, sleep, start,
  startAgent, startDisplay, stopChild, waitFor, waitForLine,
} from './lib/harness.mjs';
import { isMain, noteAgentWarnings, runPart, saveAgentLog } from './lib/run.mjs';

const HZ = envNum('BENCH_INPUT_HZ', 500);
const SECONDS = envNum('BENCH_INPUT_SECONDS', 7.5);
const ROUNDS = envNum('BENCH_INPUT_ROUNDS', 3);
const WARMUP_SECONDS = 0.5;
CFG.timeoutMs = envNum('BENCH_TIMEOUT_MS', 300000);

const ms = (s) => (s === null || s === undefined ? null : s * 1000);

/** Sends pointer motion from the page at `hz` for `seconds`; returns every send. */
function stream(page, { hz, seconds, first, width, height }) {
  return page.evaluate(async ({ hz, seconds, first, width, height, busy }) => {
    const period = 1000 / hz;
    const sends = []; // [unix ms, px, py]
    let failed = 0;
    const yieldNow = () => new Promise((resolve) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => resolve();
      ch.port2.postMessage(0);
    });
    const t0 = performance.now();
    let next = t0;
    let i = first;
    let behind = 0;
    let last = t0;
    let maxGapMs = 0;
    while (performance.now() - t0 < seconds * 1000) {
      const now = performance.now();
      // The page's own stalls (its main thread busy elsewhere): after one,
      // the motions that fell due are sent at once, as a busy browser would.
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
      if (now < next) {
        if (busy) continue; // spin: nothing else may run on this thread
        await yieldNow();
        continue;
      }
      // A pixel of its own for every send (inner pixels, row by row); the
      // agent maps 0..65535 to 0..width-1 rounding down, so round up here.
      const px = 1 + (i % (width - 2));
      const py = 1 + (Math.floor(i / (width - 2)) % (height - 2));
      const x = Math.ceil((px * 65535) / (width - 1));
      const y = Math.ceil((py * 65535) / (height - 1));
      const t = performance.timeOrigin + performance.now();
      if (window.oriel.sendInput('motion', [1, 0x10, x & 255, x >> 8, y & 255, y >> 8])) sends.push([t, px, py]);
      else failed++;
      i++;
      next += period;
      if (next < now - 250) {
        behind++;
        next = now; // a stall this long is not a stream any more: start afresh
      }
    }
    const elapsedMs = performance.now() - t0;
    return { sends, failed, behind, maxGapMs, elapsedMs, next: i, clockSkewMs: Date.now() - (performance.timeOrigin + performance.now()) };
  }, { hz, seconds, first, width, height, busy: process.env.BENCH_INPUT_YIELD !== '1' });
}

function agentLatency(m) {
  const q = (k) => m[`oriel_input_latency_seconds{quantile="${k}"}`];
  return { p50Ms: ms(q('0.5')), p95Ms: ms(q('0.95')), p99Ms: ms(q('0.99')), maxMs: ms(q('1')) };
}

function summarize(xs) {
  return { n: xs.length, p50: quantile(xs, 0.5), p95: quantile(xs, 0.95), p99: quantile(xs, 0.99), max: xs.length ? Math.max(...xs) : null, min: xs.length ? Math.min(...xs) : null };
}

async function main(res) {
  res.command = 'cd bench && node input.mjs';
  res.config = { width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps, scene: CFG.scene, hz: HZ, seconds: SECONDS, warmupSeconds: WARMUP_SECONDS, rounds: ROUNDS };
  res.machine = machineInfo();
  res.agent = agentInfo();
  const watchBin = path.join(path.dirname(CFG.bin), 'examples', 'pointer_watch');
  if (!fs.existsSync(watchBin)) throw new Error(`${watchBin} is missing: cargo build --release --examples`);

  res.display = await startDisplay();
  const agent = await startAgent(res.display.display);
  res.agentArgs = agent.args();
  res.healthz = await agent.healthz();
  const controllerUrl = createLink(agent, 'controller');
  // After the mover's window exists, so the probe's window goes on top of it.
  const watch = start('pointer_watch', watchBin, ['--display', res.display.display], childEnv({ DISPLAY: res.display.display }));
  await waitForLine(watch, /pointer_watch: ready/, 10000, 'pointer_watch');
  const seen = new Map(); // "x,y" -> unix ms, first report
  watch.listeners.push((line) => {
    const m = line.match(/^(\d+) (-?\d+) (-?\d+)$/);
    if (m && !seen.has(`${m[2]},${m[3]}`)) seen.set(`${m[2]},${m[3]}`, Number(m[1]) / 1000);
  });

  const ctx = await launchBrowser();
  const page = await ctx.newPage();
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.goto(controllerUrl, { waitUntil: 'load', timeout: 20000 });
  await waitFor(() => page.evaluate(() => window.oriel.inputReady()), 20000, 'the controller page to have its input channels');
  await waitFor(async () => (await page.evaluate(() => window.oriel.status())).framesDecoded > 0, 20000, 'the controller page to decode video');
  const m0 = await agent.metrics();
  res.inputBackend = Object.keys(m0).find((k) => k.startsWith('oriel_info{'))?.match(/input="([^"]*)"/)?.[1] ?? null;
  log(`agent pid ${agent.pid}, input backend ${res.inputBackend}, streaming ${HZ} Hz for ${ROUNDS} x ${SECONDS} s`);

  res.rounds = [];
  let next = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const before = await agent.metrics();
    const warm = await stream(page, { hz: HZ, seconds: WARMUP_SECONDS, first: next, width: CFG.width, height: CFG.height });
    next = warm.next;
    const run = await stream(page, { hz: HZ, seconds: SECONDS, first: next, width: CFG.width, height: CFG.height });
    next = run.next;
    await sleep(500); // the last motions reach the X server and the watcher
    const after = await agent.metrics();
    const e2e = [];
    for (const [t, px, py] of run.sends) {
      const s = seen.get(`${px},${py}`);
      if (s !== undefined) e2e.push(s - t);
    }
    const injected = (after.oriel_input_injected_total ?? 0) - (before.oriel_input_injected_total ?? 0);
    const dropped = Object.entries(after).filter(([k]) => k.startsWith('oriel_input_dropped_total'))
      .reduce((a, [k, v]) => a + v - (before[k] ?? 0), 0);
    const round = {
      round: r + 1,
      sent: run.sends.length + warm.sends.length,
      sentInRound: run.sends.length,
      sendFailures: run.failed + warm.failed,
      achievedHz: (run.sends.length / run.elapsedMs) * 1000,
      pageFellBehind: run.behind,
      pageMaxStallMs: run.maxGapMs,
      clockSkewMs: run.clockSkewMs,
      injected,
      dropped,
      agent: agentLatency(after),
      agentWindowEvents: after.oriel_input_injected_total,
      endToEnd: summarize(e2e),
      matched: e2e.length,
      negative: e2e.filter((x) => x < 0).length,
    };
    res.rounds.push(round);
    log(`round ${r + 1}: sent ${round.sent} (${fmt(round.achievedHz)} Hz), injected ${injected}, dropped ${dropped}; ` +
      `agent p50 ${fmt(round.agent.p50Ms, 3)} p99 ${fmt(round.agent.p99Ms, 3)} ms; ` +
      `page -> X p50 ${fmt(round.endToEnd.p50, 2)} p99 ${fmt(round.endToEnd.p99, 2)} ms (${e2e.length} matched)`);
  }
  res.metricsAtEnd = await agent.metrics();
  if (!agent.alive) throw new Error('the agent died during the run');
  res.agentLogFile = saveAgentLog(agent.rec.log, res.startedAt, 'input');
  res.notes = [];
  noteAgentWarnings(res, res.notes, agent.rec.log);
  await stopChild(watch);
  const med = (f) => median(res.rounds.map(f));
  res.summary = {
    agentP50Ms: med((r) => r.agent.p50Ms), agentP95Ms: med((r) => r.agent.p95Ms), agentP99Ms: med((r) => r.agent.p99Ms), agentMaxMs: Math.max(...res.rounds.map((r) => r.agent.maxMs ?? 0)),
    e2eP50Ms: med((r) => r.endToEnd.p50), e2eP95Ms: med((r) => r.endToEnd.p95), e2eP99Ms: med((r) => r.endToEnd.p99), e2eMaxMs: Math.max(...res.rounds.map((r) => r.endToEnd.max ?? 0)),
    achievedHz: med((r) => r.achievedHz),
    injectedPerSent: res.rounds.reduce((a, r) => a + r.injected, 0) / res.rounds.reduce((a, r) => a + r.sent, 0),
    matchedPerSent: res.rounds.reduce((a, r) => a + r.matched, 0) / res.rounds.reduce((a, r) => a + r.sentInRound, 0),
  };
  if (res.rounds.some((r) => r.negative)) res.notes.push(`${res.rounds.reduce((a, r) => a + r.negative, 0)} end-to-end sample(s) were negative (clock mismatch between page and probe)`);
  if (res.rounds.some((r) => r.dropped)) res.notes.push(`the agent dropped ${res.rounds.reduce((a, r) => a + r.dropped, 0)} input message(s)`);
  const s = res.summary;
  return `input latency (${res.inputBackend}), ${fmt(s.achievedHz)} Hz: agent arrival -> injected p50 ${fmt(s.agentP50Ms, 3)} ms p99 ${fmt(s.agentP99Ms, 3)} ms; ` +
    `page send -> X server p50 ${fmt(s.e2eP50Ms, 2)} ms p99 ${fmt(s.e2eP99Ms, 2)} ms`;
}

/** This part's section of BENCHMARKS.md. */
export function render(res, jsonRel) {
  const s = res.summary;
  const c = res.config;
  const L = [];
  L.push('## Input latency under a 500 Hz pointer stream');
  L.push('');
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}).`);
  L.push('');
  L.push(`A Chromium page holding a controller link (and playing the ${c.width}x${c.height}@${c.framerate} stream of the moving \`${c.scene}\` scene) sends ` +
    `pointer-absolute messages on the \`motion\` data channel at ${c.hz} Hz (a loop spinning on \`performance.now()\` and calling \`window.oriel.sendInput\`, ` +
    `which is what the web client's pointer handler calls; yielding between sends let the page stall for up to 0.8 s), ${c.rounds} round(s) of ${c.warmupSeconds} s warm-up + ${c.seconds} s. Every message moves the pointer to a pixel of its own. ` +
    `Input backend: **${res.inputBackend}** (no /dev/uinput on this kernel). Two clocks on one machine:`);
  L.push('');
  L.push('- **agent**: data-channel arrival to the injection call returning, the agent\'s own `oriel_input_latency_seconds` (nearest rank over its last 4096 events, i.e. this round), read after each round;');
  L.push('- **page → X server**: the page\'s send call (performance.timeOrigin + now) to the X server reporting the pointer at that pixel, seen by `examples/pointer_watch` (an invisible input-only window on top of the screen, timestamping each MotionNotify with CLOCK_REALTIME). The probe reads the newest position after a burst, so not every send is matched; each matched one is exact.');
  L.push('');
  L.push('| round | sent | achieved Hz | injected | dropped | agent p50 ms | p95 | p99 | max | page → X p50 ms | p95 | p99 | max | matched |');
  L.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of res.rounds) {
    L.push(`| ${r.round} | ${r.sent} | ${fmt(r.achievedHz)} | ${r.injected} | ${r.dropped} | ${fmt(r.agent.p50Ms, 3)} | ${fmt(r.agent.p95Ms, 3)} | ${fmt(r.agent.p99Ms, 3)} | ${fmt(r.agent.maxMs, 3)} | ` +
      `${fmt(r.endToEnd.p50, 2)} | ${fmt(r.endToEnd.p95, 2)} | ${fmt(r.endToEnd.p99, 2)} | ${fmt(r.endToEnd.max, 2)} | ${r.matched} |`);
  }
  L.push(`| **median** | | ${fmt(s.achievedHz)} | | | **${fmt(s.agentP50Ms, 3)}** | ${fmt(s.agentP95Ms, 3)} | **${fmt(s.agentP99Ms, 3)}** | ${fmt(s.agentMaxMs, 3)} (max) | **${fmt(s.e2eP50Ms, 2)}** | ${fmt(s.e2eP95Ms, 2)} | **${fmt(s.e2eP99Ms, 2)}** | ${fmt(s.e2eMaxMs, 2)} (max) | |`);
  L.push('');
  L.push('### What the numbers say');
  L.push('');
  const share = s.e2eP50Ms ? (100 * s.agentP50Ms) / s.e2eP50Ms : null;
  L.push(`- At the median the agent's own part is ${fmt(s.agentP50Ms * 1000, 0)} µs from the message leaving the data channel to XTest's call returning` +
    `${share !== null ? ` (${fmt(share, 1)} % of the page-to-X-server median of ${fmt(s.e2eP50Ms, 2)} ms)` : ''}; the rest is the page's send path, SCTP over DTLS over loopback, ` +
    `webrtcbin's data-channel delivery into the agent and the X server taking the fake motion.`);
  if (s.agentP99Ms > 10 * s.agentP50Ms) {
    L.push(`- The agent's tail is not injection work: p99 ${fmt(s.agentP99Ms, 3)} ms against a ${fmt(s.agentP50Ms, 3)} ms median means messages waited for the input thread to get a core ` +
      '(the clock starts when webrtcbin hands the message over, and the encoder and the X server share the 2 cores).');
  } else {
    L.push(`- The agent's tail stays close to its median (p99 ${fmt(s.agentP99Ms, 3)} ms): the input thread got a core when it needed one.`);
  }
  L.push(`- ${fmt(100 * s.injectedPerSent, 1)} % of the messages sent were injected (the \`motion\` channel is unordered with no retransmits: on loopback nothing should be lost), at ${fmt(s.achievedHz)} Hz achieved against ${c.hz} asked.`);
  L.push(`- Page to X server: p99 ${fmt(s.e2eP99Ms, 2)} ms, max ${fmt(s.e2eMaxMs, 2)} ms, ${fmt(s.e2eP99Ms / s.e2eP50Ms, 1)}x the median: the page, the agent's encoder and the X server compete for 2 cores, and the tail is scheduling.`);
  if (res.notes?.length) {
    L.push('');
    L.push('### Oddities seen in this run');
    L.push('');
    for (const n of res.notes) L.push(`- ${n}`);
  }
  L.push('');
  return L.join('\n');
}

/** One-line findings for the top of BENCHMARKS.md. */
export function headline(res) {
  const s = res.summary;
  return [`Input at ${fmt(s.achievedHz, 0)} Hz (${res.inputBackend}): data channel to injection done p50 ${fmt(s.agentP50Ms, 3)} ms, p99 ${fmt(s.agentP99Ms, 3)} ms; ` +
    `page send to the X server moving the pointer p50 ${fmt(s.e2eP50Ms, 2)} ms, p99 ${fmt(s.e2eP99Ms, 2)} ms (part \`input\`).`];
}

if (isMain(import.meta.url)) runPart('input', main);
