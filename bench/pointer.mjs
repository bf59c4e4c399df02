#!/usr/bin/env node
// oriel benchmark part `pointer`: how late a viewer sees the remote pointer
// move, drawn by its page (`--pointer page`, the default) against drawn into
// the stream (`--pointer video`, as before), and what the controller's own
// pointer adds when the page draws it.
//
//   cd bench && node pointer.mjs        (or `make bench-pointer`)
//
// A bare Xvfb with a flat root (xsetroot), one agent at a time, two
// Chromium pages of one browser (one clock): the controller moves the
// desktop's pointer through its `motion` channel, between a left and a
// right spot every BENCH_POINTER_GAP_MS; the viewer notes when it first
// shows the pointer on the new side:
//   - page: the first animation frame whose drawn remote pointer (the
//     overlay the page places from the `pointer` channel) is on that side;
//   - video: the first presented video frame (requestVideoFrameCallback)
//     with the pointer's pixels (not the root's colour) around that spot.
// Latency = that time minus the controller's send. The controller's own
// pointer, drawn by its page as the video's CSS cursor, moves with the
// browser's cursor: what it adds is at most one page frame, measured as the
// page's animation-frame interval.
//
// Knobs (environment): ORIEL_BIN, BENCH_POINTER_MOVES (60),
// BENCH_POINTER_GAP_MS (250), BENCH_NO_MARKDOWN=1, BENCH_TIMEOUT_MS (300000).
import { spawnSync } from 'node:child_process';
import {
  CFG, agentInfo, createLink, envNum, fmt, launchBrowser, log, machineInfo, quantile, sleep, startAgent,
  startBareDisplay, status, stopChild, waitFor,
} from './lib/harness.mjs';
import { isMain, noteAgentWarnings, runPart, saveAgentLog } from './lib/run.mjs';

const MOVES = envNum('BENCH_POINTER_MOVES', 60);
const GAP_MS = envNum('BENCH_POINTER_GAP_MS', 250);
CFG.timeoutMs = envNum('BENCH_TIMEOUT_MS', 300000);
const ROOT = '#3060c0';
const Y = 0.5;
const SIDES = [0.2, 0.8]; // of the width

/** The viewer page watches for the pointer on either side; resolves its sightings. */
function watchViewer(page, mode) {
  return page.evaluate(({ mode, sides, y, root }) => {
    const v = document.getElementById('video');
    window.__seen = [];
    const rgb = [1, 3, 5].map((i) => parseInt(root.slice(i, i + 2), 16));
    if (mode === 'page') {
      let last = null;
      const tick = () => {
        const p = window.oriel.status().pointer;
        const side = p.at ? (p.at.x < v.videoWidth / 2 ? 0 : 1) : null;
        if (side !== null && side !== last && p.overlay) {
          window.__seen.push([performance.timeOrigin + performance.now(), side]);
          last = side;
        }
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    } else {
      const c = document.createElement('canvas');
      const ctx = c.getContext('2d', { willReadFrequently: true });
      let last = null;
      const onFrame = (now) => {
        c.width = v.videoWidth;
        c.height = v.videoHeight;
        ctx.drawImage(v, 0, 0);
        const found = sides.map((sx) => {
          const d = ctx.getImageData(Math.round(sx * c.width) - 12, Math.round(y * c.height) - 12, 24, 24).data;
          let stray = 0;
          for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - rgb[0]) + Math.abs(d[i + 1] - rgb[1]) + Math.abs(d[i + 2] - rgb[2]) > 90) stray++;
          return stray >= 20;
        });
        const side = found[0] && !found[1] ? 0 : found[1] && !found[0] ? 1 : null;
        if (side !== null && side !== last) {
          window.__seen.push([performance.timeOrigin + now, side]);
          last = side;
        }
        v.requestVideoFrameCallback(onFrame);
      };
      v.requestVideoFrameCallback(onFrame);
    }
  }, { mode, sides: SIDES, y: Y, root: ROOT });
}

/** The controller moves the pointer side to side; its send times. */
function moveSideToSide(page, moves, gapMs) {
  return page.evaluate(async ({ moves, gapMs, sides, y }) => {
    const sends = [];
    for (let i = 0; i < moves; i++) {
      const side = i % 2;
      const x = Math.round(sides[side] * 65535);
      const yy = Math.round(y * 65535);
      const t = performance.timeOrigin + performance.now();
      window.oriel.sendInput('motion', [1, 0x10, x & 255, x >> 8, yy & 255, yy >> 8]);
      sends.push([t, side]);
      await new Promise((r) => setTimeout(r, gapMs));
    }
    return sends;
  }, { moves, gapMs, sides: SIDES, y: Y });
}

/** The page's animation-frame interval, median over ~2 s. */
function frameTime(page) {
  return page.evaluate(() => new Promise((resolve) => {
    const ts = [];
    const tick = (t) => {
      ts.push(t);
      if (ts.length < 120) requestAnimationFrame(tick);
      else {
        const d = ts.slice(1).map((x, i) => x - ts[i]).sort((a, b) => a - b);
        resolve(d[Math.floor(d.length / 2)]);
      }
    };
    requestAnimationFrame(tick);
  }));
}

function latencies(sends, seen) {
  const out = [];
  for (let i = 0; i < sends.length; i++) {
    const [t, side] = sends[i];
    const until = i + 1 < sends.length ? sends[i + 1][0] : Infinity;
    const s = seen.find(([ts, sd]) => sd === side && ts >= t && ts < until);
    if (s) out.push(s[0] - t);
  }
  return out;
}

const summary = (xs) => ({ n: xs.length, p50: quantile(xs, 0.5), p95: quantile(xs, 0.95), max: xs.length ? Math.max(...xs) : null });

async function oneMode(res, mode, ctx, display) {
  const agent = await startAgent(display, { args: ['--input', 'xtest', '--pointer', mode] });
  const controller = await ctx.newPage();
  const viewer = await ctx.newPage();
  for (const p of [controller, viewer]) p.on('pageerror', (e) => log(`page error: ${e.message}`));
  await controller.goto(agent.controllerUrl, { waitUntil: 'load', timeout: 20000 });
  await viewer.goto(createLink(agent, 'viewer'), { waitUntil: 'load', timeout: 20000 });
  await waitFor(() => controller.evaluate(() => window.oriel.inputReady()), 20000, 'the controller\'s input channels');
  await waitFor(async () => (await status(viewer)).framesDecoded > 0, 20000, 'the viewer to decode');
  await sleep(1000);
  await watchViewer(viewer, mode);
  const sends = await moveSideToSide(controller, MOVES, GAP_MS);
  await sleep(500);
  const seen = await viewer.evaluate(() => window.__seen);
  const lat = latencies(sends, seen);
  const r = { mode, sends: sends.length, matched: lat.length, viewer: summary(lat) };
  if (mode === 'page') {
    // A page in the background gets animation frames twice a second.
    await controller.bringToFront();
    r.controllerFrameMs = await frameTime(controller);
  }
  log(`${mode}: viewer sees the pointer move p50 ${fmt(r.viewer.p50)} ms p95 ${fmt(r.viewer.p95)} ms (${lat.length} of ${sends.length})` +
    (r.controllerFrameMs ? `; the controller's page frame ${fmt(r.controllerFrameMs)} ms` : ''));
  res.agentLogFiles.push(saveAgentLog(agent.rec.log, res.startedAt, `pointer-${mode}`));
  noteAgentWarnings(res, res.notes, agent.rec.log);
  await controller.close();
  await viewer.close();
  await stopChild(agent.rec);
  return r;
}

async function main(res) {
  res.command = 'cd bench && node pointer.mjs';
  res.config = { moves: MOVES, gapMs: GAP_MS, width: CFG.width, height: CFG.height, framerate: CFG.framerate };
  res.machine = machineInfo();
  res.agent = agentInfo();
  res.notes = [];
  res.agentLogFiles = [];
  const d = await startBareDisplay();
  spawnSync('xsetroot', ['-solid', ROOT], { env: { ...process.env, DISPLAY: d.display } });
  const ctx = await launchBrowser();
  res.modes = [];
  for (const mode of ['page', 'video']) res.modes.push(await oneMode(res, mode, ctx, d.display));
  await stopChild(d.xvfb);
  const [page, video] = res.modes;
  res.summary = { pageP50: page.viewer.p50, pageP95: page.viewer.p95, videoP50: video.viewer.p50, videoP95: video.viewer.p95, controllerFrameMs: page.controllerFrameMs };
  const s = res.summary;
  return `pointer: a viewer sees it move p50 ${fmt(s.pageP50)} ms drawn by the page, ${fmt(s.videoP50)} ms in the video; the controller's own: one page frame (${fmt(s.controllerFrameMs)} ms)`;
}

/** This part's section of BENCHMARKS.md. */
export function render(res, jsonRel) {
  const c = res.config;
  const s = res.summary;
  const L = [];
  L.push('## The pointer, drawn by the page or in the video');
  L.push('');
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}).`);
  L.push('');
  L.push(`The controller's page moves the desktop's pointer (its \`motion\` channel, XTest) between two spots ${c.moves} times, one move every ${c.gapMs} ms; ` +
    'a viewer page in the same browser (one clock) notes when it first shows the pointer on the new side: with `--pointer page` the first animation frame ' +
    'whose remote pointer (drawn by the page from the `pointer` channel) is there, with `--pointer video` the first presented video frame with the pointer\'s pixels there. ' +
    `A bare ${c.width}x${c.height} Xvfb with a flat root. The controller's own pointer with \`--pointer page\` is the browser's cursor: what the page adds is at most one of its frames.`);
  L.push('');
  L.push('| pointer | viewer sees it move p50 ms | p95 | max | matched | controller\'s own |');
  L.push('|---|---:|---:|---:|---:|---|');
  for (const m of res.modes) {
    L.push(`| \`--pointer ${m.mode}\` | **${fmt(m.viewer.p50)}** | ${fmt(m.viewer.p95)} | ${fmt(m.viewer.max)} | ${m.matched} of ${m.sends} | ` +
      `${m.mode === 'page' ? `the browser's cursor; one page frame: ${fmt(m.controllerFrameMs)} ms` : 'in the video: glass-to-glass'} |`);
  }
  L.push('');
  L.push('### What the numbers say');
  L.push('');
  L.push(`- A viewer saw the pointer move after ${fmt(s.pageP50)} ms (p50) when its page draws it, against ${fmt(s.videoP50)} ms when it is in the video: ` +
    'the page skips the capture, the encode and the decode; what is left is the agent\'s 16 ms look at the pointer\'s place, the data channel and the page\'s next frame.');
  L.push(`- The controller's pointer is no longer part of the stream: it moves with the hand; the page adds at most its frame time, ${fmt(s.controllerFrameMs)} ms here (headless Chromium's animation frames).`);
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
  return [`The remote pointer as a viewer sees it: p50 ${fmt(s.pageP50)} ms drawn by the page against ${fmt(s.videoP50)} ms in the video; ` +
    `the controller's own pointer is the browser's cursor, one page frame (${fmt(s.controllerFrameMs)} ms) (part \`pointer\`).`];
}

if (isMain(import.meta.url)) runPart('pointer', main);
