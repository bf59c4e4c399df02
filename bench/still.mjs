#!/usr/bin/env node
// oriel benchmark part `still`: what the X11 capture costs on a still
// desktop and on a moving one, by damage (`--x11-capture damage`) against
// the fixed clock (`--x11-capture clock`, ximagesrc, the default).
//
//   cd bench && node still.mjs      (or `make bench-still`)
//
// What it does, unattended (about 5 minutes):
//   1. A bare Xvfb (nothing moving, the pointer parked) at 720p.
//   2. BENCH_STILL_ROUNDS (3) rounds, the modes alternating (BENCH_STILL_MODES:
//      damage, clock, damage-1conv; see MODE_ARGS): the agent
//      at 720p30, one lightweight viewer (examples/bench_receiver); after
//      BENCH_SETTLE_MS, BENCH_STILL_SECONDS (20) s still, then a full-screen
//      moving scene (BENCH_SCENE) for as long. Recorded per phase: the
//      agent's CPU (% of one core), the frames the agent encoded and the
//      viewer received, the damage capture's grabbed and repeated frames,
//      the agent's RSS, and where a moving frame's time goes (the stage
//      summaries of /metrics).
//
// Knobs (environment): ORIEL_BIN, BENCH_RECEIVER, BENCH_STILL_ROUNDS,
// BENCH_STILL_SECONDS, BENCH_SETTLE_MS, BENCH_SCENE, BENCH_NO_MARKDOWN=1,
// BENCH_TIMEOUT_MS (900000).

import {
  CFG, agentInfo, childEnv, envNum, fmt, launchBrowser, log, machineInfo, median, moverPipeline, procCpuSec, procStatus,
  sleep, start, startAgent, startBareDisplay, stopChild,
} from './lib/harness.mjs';
import { isMain, noteAgentWarnings, readingAndOddities, runPart } from './lib/run.mjs';
import { Receivers, receiverErrorsNote } from './lib/receiver.mjs';
import { ensureSelkies, openSelkiesPage, selkiesPids, selkiesPresentedRate, startSelkies, stopSelkies } from './lib/selkies.mjs';

const ROUNDS = envNum('BENCH_STILL_ROUNDS', 3);
const SECONDS = envNum('BENCH_STILL_SECONDS', 20);
CFG.timeoutMs = envNum('BENCH_TIMEOUT_MS', 900000);
// What is compared: the agent's flags per mode. `damage-1conv` is the
// default with the colour conversion on one thread (--convert-threads 1),
// as it was before the conversion ran on one thread per core.
const MODE_ARGS = {
  damage: ['--x11-capture', 'damage'],
  clock: ['--x11-capture', 'clock'],
  'damage-1conv': ['--x11-capture', 'damage', '--convert-threads', '1'],
  // Not oriel: Selkies 2.1 from PyPI on the same display (bench/lib/selkies.mjs).
  selkies: null,
};
const MODES = (process.env.BENCH_STILL_MODES || 'damage,clock,damage-1conv,selkies').split(',');
const modeArgs = (m) => MODE_ARGS[m]?.join(' ') ?? 'Selkies 2.1, its defaults but the size, rate and bitrate';

/** The agent's and viewer's counters now. */
async function snapshot(agent, rx, id) {
  const m = await agent.metrics();
  const st = await rx.stats();
  return {
    at: Date.now(),
    cpu: procCpuSec(agent.pid),
    encoded: m.oriel_frames_encoded_total ?? null,
    grabbed: m['oriel_capture_frames_total{how="grabbed"}'] ?? null,
    repeated: m['oriel_capture_frames_total{how="repeated"}'] ?? null,
    received: st.viewers.get(id)?.frames ?? null,
    rssMiB: procStatus(agent.pid).rssKb / 1024,
    grabSec: m.oriel_capture_grab_seconds_total ?? null,
    // The stages' p50s over the agent's last 30 s (src/media/traffic.rs).
    stages: Object.fromEntries(STAGES.map(([k, name]) => [k, (m[`${name}{quantile="0.5"}`] ?? NaN) * 1000])),
  };
}

// Capture timestamp to: the converted raw frame, the encoded frame, its
// last RTP packet into the fan-out (ms, p50).
const STAGES = [['converted', 'oriel_capture_to_converted_seconds'], ['encoded', 'oriel_capture_to_encoded_seconds'],
  ['payloaded', 'oriel_capture_to_payloaded_seconds']];

function phase(a, b) {
  const s = (b.at - a.at) / 1000;
  const per = (k) => (a[k] === null || b[k] === null ? null : (b[k] - a[k]) / s);
  return { seconds: s, cpuPct: ((b.cpu - a.cpu) / s) * 100, encodedPerSec: per('encoded'), receivedPerSec: per('received'),
    grabbedPerSec: per('grabbed'), repeatedPerSec: per('repeated'), rssMiB: b.rssMiB,
    // Mean XShm grab per grabbed frame (damage capture only).
    grabMs: a.grabSec === null || b.grabSec === null || b.grabbed === a.grabbed ? null : ((b.grabSec - a.grabSec) / (b.grabbed - a.grabbed)) * 1000,
    ...Object.fromEntries(STAGES.map(([k]) => [`${k}P50Ms`, Number.isFinite(b.stages[k]) ? b.stages[k] : null])) };
}

/**
 * Selkies' processes' CPU seconds (per pid: one that came or went between
 * two samples counts only while both saw it) and RSS.
 */
function selkiesSample(s) {
  const cpu = new Map();
  let rssKb = 0;
  for (const pid of selkiesPids(s)) {
    try {
      cpu.set(pid, procCpuSec(pid));
      rssKb += procStatus(pid).rssKb;
    } catch {
      /* gone */
    }
  }
  return { at: Date.now(), cpu, rssMiB: rssKb / 1024 };
}

function selkiesPhase(a, b, presented) {
  const s = (b.at - a.at) / 1000;
  let cpu = 0;
  for (const [pid, t] of b.cpu) if (a.cpu.has(pid)) cpu += t - a.cpu.get(pid);
  return { seconds: s, cpuPct: (cpu / s) * 100, encodedPerSec: null, receivedPerSec: presented.fps,
    grabbedPerSec: null, repeatedPerSec: null, rssMiB: b.rssMiB, grabMs: null,
    ...Object.fromEntries(STAGES.map(([k]) => [`${k}P50Ms`, null])) };
}

/** The same two phases with Selkies on the display and its page in Chromium (it has no lightweight client). */
async function selkiesRound(display, browser) {
  const s = await startSelkies({ display, width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps });
  let page;
  try {
    ({ page } = await openSelkiesPage(browser, s.url));
    await sleep(CFG.settleMs);
    const s0 = selkiesSample(s);
    const stillRate = await selkiesPresentedRate(page, SECONDS * 1000);
    const s1 = selkiesSample(s);
    const mover = start('mover', 'gst-launch-1.0', moverPipeline(), childEnv({ DISPLAY: display }));
    await sleep(CFG.settleMs);
    const m0 = selkiesSample(s);
    const movingRate = await selkiesPresentedRate(page, SECONDS * 1000);
    const m1 = selkiesSample(s);
    await stopChild(mover);
    return { mode: 'selkies', still: selkiesPhase(s0, s1, stillRate), moving: selkiesPhase(m0, m1, movingRate) };
  } finally {
    await page?.close().catch(() => {});
    await stopSelkies(s);
  }
}

async function round(display, mode, notes, browser) {
  if (mode === 'selkies') return selkiesRound(display, browser);
  const agent = await startAgent(display, { args: MODE_ARGS[mode] });
  const rx = await Receivers.start(agent.viewerUrl, { name: `bench-still-${mode}` });
  const [id] = rx.add(1);
  await rx.waitFirstFrames([id], 30000);
  await sleep(CFG.settleMs);
  const s0 = await snapshot(agent, rx, id);
  await sleep(SECONDS * 1000);
  const s1 = await snapshot(agent, rx, id);
  const mover = start('mover', 'gst-launch-1.0', moverPipeline(), childEnv({ DISPLAY: display }));
  await sleep(CFG.settleMs);
  const m0 = await snapshot(agent, rx, id);
  await sleep(SECONDS * 1000);
  const m1 = await snapshot(agent, rx, id);
  await stopChild(mover);
  const rxNote = receiverErrorsNote(rx);
  if (rxNote) notes.push(`${mode}: ${rxNote}`);
  await rx.quit();
  noteAgentWarnings({}, notes, agent.rec.log);
  await stopChild(agent.rec);
  return { mode, still: phase(s0, s1), moving: phase(m0, m1) };
}

async function main(res) {
  res.command = 'cd bench && node still.mjs';
  res.config = { width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps, scene: CFG.scene, rounds: ROUNDS, seconds: SECONDS, modeArgs: MODE_ARGS };
  res.machine = machineInfo();
  res.agent = agentInfo();
  const { display, xvfb } = await startBareDisplay();
  let browser = null;
  if (MODES.includes('selkies')) {
    res.selkies = await ensureSelkies();
    browser = await launchBrowser();
  }
  res.notes = [];
  res.rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of r % 2 ? [...MODES].reverse() : MODES) {
      log(`round ${r + 1}: ${mode} (${modeArgs(mode)})`);
      const out = await round(display, mode, res.notes, browser);
      log(`  ${JSON.stringify(out)}`);
      res.rounds.push({ round: r + 1, ...out });
    }
  }
  await browser?.close().catch(() => {});
  await stopChild(xvfb);
  res.summary = summarize(res);
  const d = res.summary.damage;
  const c = res.summary.clock;
  return `still: agent CPU on a still desktop ${fmt(d.still.cpuPct)} % (damage) vs ${fmt(c.still.cpuPct)} % (clock); moving ${fmt(d.moving.cpuPct)} % vs ${fmt(c.moving.cpuPct)} %`;
}

/** Medians over the rounds, per mode and phase. */
function summarize(res) {
  const out = {};
  for (const mode of MODES) {
    const rs = res.rounds.filter((r) => r.mode === mode);
    out[mode] = {};
    for (const ph of ['still', 'moving']) {
      const med = (k) => (rs.some((r) => r[ph][k] === null) ? null : median(rs.map((r) => r[ph][k])));
      out[mode][ph] = Object.fromEntries(['cpuPct', 'encodedPerSec', 'receivedPerSec', 'grabbedPerSec', 'repeatedPerSec', 'rssMiB', 'grabMs', ...STAGES.map(([k]) => `${k}P50Ms`)].map((k) => [k, med(k)]));
    }
  }
  return out;
}

// --------------------------------------------------------------- report

export function headline(res) {
  const d = res.summary.damage;
  const c = res.summary.clock;
  const sk = res.summary.selkies;
  const vs = sk ? `; Selkies 2.1 in the same run ${fmt(sk.still.cpuPct)} % still, ${fmt(sk.moving.cpuPct)} % moving` : '';
  return [`A still desktop with one viewer: the agent uses ${fmt(d.still.cpuPct)} % of a core capturing by damage, ${fmt(c.still.cpuPct)} % on the clock; a moving one ${fmt(d.moving.cpuPct)} % against ${fmt(c.moving.cpuPct)} %${vs} (part \`still\`).`];
}

export function render(res, jsonRel) {
  const s = res.summary;
  const modes = Object.keys(s);
  const row = (mode, ph) => {
    const x = s[mode][ph];
    return `| \`${mode}\` | ${ph} | ${fmt(x.cpuPct)} | ${fmt(x.encodedPerSec)} | ${fmt(x.receivedPerSec)} | ${x.grabbedPerSec === null ? '-' : fmt(x.grabbedPerSec)} | ${x.repeatedPerSec === null ? '-' : fmt(x.repeatedPerSec)} | ${fmt(x.rssMiB)} |`;
  };
  const L = [
    '## Capture by damage: a still desktop and a moving one',
    '',
    `Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}).`,
    '',
    `A bare Xvfb at ${res.config.width}x${res.config.height}, the pointer parked; the agent at ${res.config.framerate} fps with one \`bench_receiver\` viewer; ${res.config.seconds} s still, then ${res.config.seconds} s of the full-screen \`${res.config.scene}\` scene. ${res.config.rounds} rounds, the modes alternating (${modes.map((m) => ((res.config.modeArgs ?? MODE_ARGS)[m] ? `\`${m}\`: \`${(res.config.modeArgs ?? MODE_ARGS)[m].join(' ')}\`` : `\`${m}\`: Selkies ${res.selkies?.versions ?? '2.1'} at the same size, rate and bitrate, watched by a Chromium page (it has no lightweight client; frames received are the page's presented ones)`)).join(', ')}), fresh agent each; medians over the rounds. CPU is the agent's (Selkies: all its processes), % of one core.`,
    '',
    '| capture | desktop | agent CPU % | frames encoded /s | frames received /s | grabbed /s | repeated /s | RSS MiB |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    ...['still', 'moving'].flatMap((ph) => modes.map((m) => row(m, ph))),
    '',
  ];
  // Older results have no stage figures.
  if (s.damage.moving.encodedP50Ms !== undefined) {
    const st = (mode) => {
      const x = s[mode].moving;
      const d = (a, b) => (a === null || b === null ? null : a - b);
      return `| \`${mode}\` | ${x.grabMs === null ? '-' : fmt(x.grabMs, 2)} | ${fmt(x.convertedP50Ms, 2)} | ${fmt(d(x.encodedP50Ms, x.convertedP50Ms), 2)} | ${fmt(d(x.payloadedP50Ms, x.encodedP50Ms), 2)} | ${fmt(x.encodedP50Ms, 2)} | ${fmt(x.payloadedP50Ms, 2)} |`;
    };
    L.push('Where a moving frame\'s time goes in the agent (`/metrics`: the capture timestamp to three points of the pipeline, p50 over the agent\'s last 30 s of the moving phase; the stage columns are differences of those p50s, so approximate). Grab is the damage capture\'s own mean time in XShmGetImage and the copy per grabbed frame; "capture → converted" holds it and the colour conversion (BGRx → I420).',
      '',
      '| capture | grab ms (mean) | capture → converted ms | convert → encoded ms | encoded → payloaded ms | capture → encoded p50 ms | capture → payloaded p50 ms |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...modes.filter((m) => m !== 'selkies').map(st), '');
  }
  const reading = `On the still desktop the damage capture encodes ${fmt(s.damage.still.encodedPerSec)} frames a second (its once-a-second repeat) where the clock encodes ${fmt(s.clock.still.encodedPerSec)}; ` +
    `the agent's CPU goes from ${fmt(s.clock.still.cpuPct)} % to ${fmt(s.damage.still.cpuPct)} % of a core. On the moving desktop both encode every frame: ${fmt(s.damage.moving.cpuPct)} % (damage) against ${fmt(s.clock.moving.cpuPct)} % (clock).` +
    (s.selkies ? ` Selkies 2.1 in the same run: ${fmt(s.selkies.still.cpuPct)} % of a core still (its page presented ${fmt(s.selkies.still.receivedPerSec)} frames a second), ${fmt(s.selkies.moving.cpuPct)} % moving; RSS ${fmt(s.selkies.moving.rssMiB)} MiB against oriel's ${fmt(s.damage.moving.rssMiB)}.` : '');
  L.push(...readingAndOddities(reading, res.notes));
  return L.join('\n');
}

if (isMain(import.meta.url)) runPart('still', main);
