#!/usr/bin/env node
// oriel benchmark part `bad-clients`: one bad client at a time beside a
// Chromium controller and a Chromium viewer that play the 720p30 stream.
// For each: how the agent refused or cut it off (close codes, HTTP
// statuses, counters), the agent's RSS before / peak / after, the good
// pages' decoded fps over the case (mean and worst second) and whether the
// controller's pointer still landed on the X display. The full forms of
// tests/e2e/bad-clients.test.mjs:
//
//   1. 1000 WebSockets that open and never speak, from one address;
//   2. the same from 40 addresses (127.0.0.2-41: all of 127/8 is this machine);
//   3. one 100 MiB text message;
//   4. 60 s of clients that never read (examples/non_reader, one after the
//      other as each is cut off);
//   5. a Chromium player page flooding its input data channel as fast as it
//      can (asked: 100,000 messages a second) for 30 s, reconnecting when cut;
//   6. 50 hellos a second with a forged token from one address for 30 s.
//
//   cd bench && node bad-clients.mjs      (or `make bench-bad-clients`; ~4 minutes)
//
// Knobs (environment): ORIEL_BIN, CHROMIUM, BENCH_BAD_IDLE (1000),
// BENCH_BAD_NONREADER_S (60), BENCH_BAD_FLOOD_S (30), BENCH_BAD_HELLO_S (30),
// BENCH_BAD_HELLO_HZ (50), BENCH_BAD_CASES (the ids to run in that order, e.g.
// flood,flood; all by default), BENCH_NO_MARKDOWN=1, BENCH_TIMEOUT_MS (600000),
// BENCH_AGENT_ARGS.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import {
  CFG, agentInfo, childEnv, createLink, envNum, fmt, launchBrowser, log, machineInfo, median, procCpuSec, procStatus, round1, sleep,
  start, startAgent, startDisplay, status, sysCpu, waitFor, waitPresented,
} from './lib/harness.mjs';
import { isMain, noteAgentWarnings, readingAndOddities, runPart, saveAgentLog } from './lib/run.mjs';

const IDLE = envNum('BENCH_BAD_IDLE', 1000);
const NONREADER_S = envNum('BENCH_BAD_NONREADER_S', 60);
const FLOOD_S = envNum('BENCH_BAD_FLOOD_S', 30);
const FLOOD_ASKED = 100000;
const HELLO_S = envNum('BENCH_BAD_HELLO_S', 30);
const HELLO_HZ = envNum('BENCH_BAD_HELLO_HZ', 50);
CFG.timeoutMs = envNum('BENCH_TIMEOUT_MS', 600000);

const mib = (kb) => round1(kb / 1024);

/** Sums of every sample of the counters we read, keyed `name{labels}`. */
function counters(m) {
  const pick = (prefix) => Object.fromEntries(Object.entries(m).filter(([k]) => k.startsWith(prefix)));
  return {
    ...pick('oriel_refused_connections_total'), ...pick('oriel_cut_connections_total'), ...pick('oriel_input_dropped_total'),
    ...pick('oriel_token_'), ...pick('oriel_signalling_throttled_total'), ...pick('oriel_input_injected_total'),
  };
}
function delta(a, b) {
  const out = {};
  for (const [k, v] of Object.entries(b)) if (v - (a[k] ?? 0) > 0) out[k] = v - (a[k] ?? 0);
  return out;
}

/** What runs beside every case: RSS every 100 ms, fps every second, input probes. */
class Watch {
  constructor(ctx) {
    Object.assign(this, ctx);
    this.rss = [];
    this.fps = { controller: [], viewer: [] };
    this.probes = [];
    this.stopped = false;
  }

  async run(fn) {
    const agent = this.agent;
    const rssBefore = median([0, 1, 2].map(() => procStatus(agent.pid).rssKb));
    const cpu0 = procCpuSec(agent.pid);
    const sys0 = sysCpu();
    const s0 = await Promise.all([status(this.controller), status(this.viewer)]);
    const m0 = counters(await agent.metrics());
    const t0 = performance.now();
    const loops = [this.rssLoop(), this.fpsLoop(s0), this.inputLoop()];
    let outcome;
    try {
      outcome = await fn();
    } finally {
      this.stopped = true;
      await Promise.all(loops);
    }
    const t1 = performance.now();
    const cpu1 = procCpuSec(agent.pid);
    const sys1 = sysCpu();
    const s1 = await Promise.all([status(this.controller), status(this.viewer)]);
    await sleep(3000); // what the agent keeps once the case is over
    const rssAfter = median([0, 1, 2].map(() => procStatus(agent.pid).rssKb));
    const m1 = counters(await agent.metrics());
    const secs = (t1 - t0) / 1000;
    const fps = (i, name) => ({
      mean: round1((s1[i].framesDecoded - s0[i].framesDecoded) / secs),
      worstSecond: this.fps[name].length ? Math.min(...this.fps[name]) : null,
      reconnected: s1[i].connects !== s0[i].connects,
    });
    const landed = this.probes.filter((p) => p.landedMs !== null);
    return {
      ...outcome,
      seconds: round1(secs),
      agentCpuPct: round1(((cpu1 - cpu0) / secs) * 100),
      // Everything on the machine (other engineers' jobs too), % of one core.
      machineBusyPct: round1(((sys1.busy - sys0.busy) / (sys1.total - sys0.total)) * os.cpus().length * 100),
      rssMiB: { before: mib(rssBefore), peak: mib(Math.max(rssBefore, ...this.rss)), after: mib(rssAfter) },
      good: { controller: fps(0, 'controller'), viewer: fps(1, 'viewer') },
      input: { probes: this.probes.length, landed: landed.length, medianMs: median(landed.map((p) => p.landedMs)), maxMs: landed.length ? Math.max(...landed.map((p) => p.landedMs)) : null },
      counters: delta(m0, m1),
    };
  }

  async rssLoop() {
    while (!this.stopped) {
      try {
        this.rss.push(procStatus(this.agent.pid).rssKb);
      } catch {
        /* gone: the run fails elsewhere */
      }
      await sleep(100);
    }
  }

  async fpsLoop(s0) {
    let last = s0.map((s) => ({ f: s.framesDecoded, t: performance.now() }));
    while (!this.stopped) {
      await sleep(1000);
      const now = await Promise.all([status(this.controller), status(this.viewer)]).catch(() => null);
      if (!now) continue;
      const t = performance.now();
      ['controller', 'viewer'].forEach((name, i) => this.fps[name].push(round1(((now[i].framesDecoded - last[i].f) * 1000) / (t - last[i].t))));
      last = now.map((s) => ({ f: s.framesDecoded, t }));
    }
  }

  /** Every second: the controller moves the pointer somewhere new; did the X server get it? */
  async inputLoop() {
    let i = 0;
    while (!this.stopped) {
      i++;
      const px = 100 + ((i * 97) % 1000);
      const py = 100 + ((i * 53) % 500);
      const x = Math.ceil((px * 65535) / (CFG.width - 1));
      const y = Math.ceil((py * 65535) / (CFG.height - 1));
      const t0 = performance.now();
      let landedMs = null;
      while (performance.now() - t0 < 3000) {
        await this.controller.evaluate((b) => window.oriel.sendInput('motion', b), [1, 0x10, x & 255, x >> 8, y & 255, y >> 8]).catch(() => false);
        const p = this.pointer();
        if (p && p.x === px && p.y === py) {
          landedMs = round1(performance.now() - t0);
          break;
        }
        await sleep(50);
      }
      this.probes.push({ px, py, landedMs });
      await sleep(Math.max(0, 1000 - (performance.now() - t0)));
    }
  }

  pointer() {
    const r = spawnSync('xdotool', ['getmouselocation', '--shell'], { env: { ...process.env, DISPLAY: this.display }, encoding: 'utf8' });
    const m = /X=(\d+)\s+Y=(\d+)/.exec(r.stdout ?? '');
    return m ? { x: Number(m[1]), y: Number(m[2]) } : null;
  }
}

/** A WebSocket from `localAddress`: {ws} once open, or how it was refused. */
function openSocket(wsUrl, localAddress) {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl, { localAddress, maxPayload: 1 << 20 });
    ws.closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: String(reason) })));
    ws.on('open', () => resolve({ ws }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body: body.trim() }));
    });
    ws.on('error', (e) => resolve({ error: e.code ?? e.message }));
  });
}

const tally = (xs) => xs.reduce((a, x) => ((a[x] = (a[x] ?? 0) + 1), a), {});

async function idleSockets(wsUrl, addresses) {
  const t0 = performance.now();
  const all = [];
  // 50 at a time, as fast as they open.
  for (let i = 0; i < IDLE; i += 50) {
    all.push(...await Promise.all(Array.from({ length: Math.min(50, IDLE - i) }, (_, j) => openSocket(wsUrl, addresses[(i + j) % addresses.length]))));
  }
  const openedMs = round1(performance.now() - t0);
  const open = all.filter((r) => r.ws);
  const closes = await Promise.all(open.map((r) => Promise.race([r.ws.closed, sleep(30000).then(() => null)])));
  return {
    attempts: all.length,
    open: open.length,
    openedMs,
    refused: tally(all.filter((r) => !r.ws).map((r) => (r.status ? `HTTP ${r.status}` : `TCP ${r.error}`))),
    bodies: [...new Set(all.filter((r) => r.body).map((r) => r.body))],
    closes: tally(closes.map((c) => (c ? `${c.code} ${c.reason}` : 'still open after 30 s'))),
    lastClosedMs: round1(performance.now() - t0),
  };
}

async function bigMessage(wsUrl) {
  const { ws } = await openSocket(wsUrl, '127.0.0.50');
  const t0 = performance.now();
  ws.send(Buffer.alloc(100 * 1024 * 1024, 0x61), { binary: false }, () => {});
  const c = await Promise.race([ws.closed, sleep(30000).then(() => null)]);
  return { closes: { [c ? `${c.code} ${c.reason}` : 'not closed in 30 s']: 1 }, closedMs: round1(performance.now() - t0) };
}

async function nonReaders(agent, bin) {
  const t0 = performance.now();
  const runs = [];
  let n = 0;
  while (performance.now() - t0 < NONREADER_S * 1000) {
    const left = Math.max(1, Math.ceil(NONREADER_S - (performance.now() - t0) / 1000));
    const rec = start(`non_reader${++n}`, bin, ['--url', agent.wsUrl, '--token', agent.viewerToken, '--rate', '250', '--seconds', String(left), '--local-addr', '127.0.0.60'], childEnv());
    await rec.exited;
    const ended = rec.log.map((l) => { try { return JSON.parse(l); } catch { return null; } }).find((e) => e?.event === 'ended');
    runs.push(ended ? { ms: ended.ms, sent: ended.sent, how: ended.how } : { error: rec.log.slice(-3).join(' | ') });
  }
  const cut = runs.filter((r) => r.how && r.how !== 'still open');
  return { runs, cutOff: cut.length, secondsToCut: cut.map((r) => round1(r.ms / 1000)) };
}

async function flood(ctx, agent) {
  const page = await ctx.newPage();
  // A player (seat 2): a viewer's connection has no data channels to flood.
  await page.goto(createLink(agent, 'player', ['--slot', '2']), { waitUntil: 'load', timeout: 20000 });
  const t0 = performance.now();
  const m0 = await agent.metrics();
  let sent = 0;
  let sessions = 0;
  const cutAfterMs = [];
  while (performance.now() - t0 < FLOOD_S * 1000) {
    const ready = await waitFor(() => page.evaluate(() => window.oriel.inputReady()), 15000, 'the flooder\'s channels').catch(() => false);
    if (!ready) break;
    sessions++;
    const left = FLOOD_S * 1000 - (performance.now() - t0);
    // As fast as the page can go, up to the asked rate: 6-byte pointer
    // messages; when Chromium's send queue is full it throws, and the loop yields.
    const r = await page.evaluate(async ({ ms, perMs }) => {
      const msg = new Uint8Array([1, 0x10, 0, 128, 0, 128]);
      const start = performance.now();
      let sent = 0;
      while (performance.now() - start < ms) {
        const due = Math.min(perMs * (performance.now() - start), perMs * ms) - sent;
        try {
          for (let i = 0; i < due; i++) {
            if (!window.oriel.sendInput('motion', msg)) return { sent, closedMs: performance.now() - start };
            sent++;
          }
        } catch {
          /* send queue full */
        }
        await new Promise((r) => setTimeout(r, 0));
      }
      return { sent, closedMs: null };
    }, { ms: left, perMs: FLOOD_ASKED / 1000 });
    sent += r.sent;
    if (r.closedMs !== null) cutAfterMs.push(round1(r.closedMs));
  }
  const secs = (performance.now() - t0) / 1000;
  const m1 = await agent.metrics();
  const d = (k) => (m1[k] ?? 0) - (m0[k] ?? 0);
  const arrived = Object.keys(m1).filter((k) => k.startsWith('oriel_input_dropped_total') || k === 'oriel_input_injected_total').reduce((a, k) => a + d(k), 0);
  const errors = (await status(page).catch(() => ({ errors: [] }))).errors.filter((e) => /input flood/.test(e));
  await page.evaluate(() => window.oriel.disconnect()).catch(() => {});
  await page.close().catch(() => {});
  return {
    sessions,
    cutOff: cutAfterMs.length,
    secondsToCut: cutAfterMs.map((ms) => round1(ms / 1000)),
    pageSentPerSec: Math.round(sent / secs),
    arrivedPerSec: Math.round(arrived / secs),
    passedLimitPerSec: Math.round((d('oriel_input_dropped_total{reason="player_not_gamepad"}')) / secs),
    closes: tally(errors),
  };
}

async function badHellos(wsUrl, forged) {
  const t0 = performance.now();
  const jobs = [];
  for (let i = 0; i < HELLO_S * HELLO_HZ; i++) {
    jobs.push((async () => {
      const { ws, status: st, error } = await openSocket(wsUrl, '127.0.0.70');
      if (!ws) return st ? `HTTP ${st}` : `TCP ${error}`;
      const first = new Promise((r) => ws.once('message', (d) => r(JSON.parse(String(d)))));
      ws.send(JSON.stringify({ type: 'hello', protocol: 1, token: forged }));
      const msg = await Promise.race([first, sleep(5000).then(() => null)]);
      const c = await Promise.race([ws.closed, sleep(5000).then(() => null)]);
      return `${msg?.code ?? 'no answer'}, close ${c ? `${c.code} ${c.reason}` : 'none'}`;
    })());
    const next = t0 + ((i + 1) * 1000) / HELLO_HZ;
    await sleep(Math.max(0, next - performance.now()));
  }
  return { attempts: jobs.length, answers: tally(await Promise.all(jobs)), perSec: round1(jobs.length / ((performance.now() - t0) / 1000)) };
}

async function main(res) {
  res.command = 'cd bench && node bad-clients.mjs';
  res.config = { width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps, scene: CFG.scene, idle: IDLE, nonReaderSeconds: NONREADER_S, floodSeconds: FLOOD_S, floodAsked: FLOOD_ASKED, helloSeconds: HELLO_S, helloHz: HELLO_HZ };
  res.machine = machineInfo();
  res.agent = agentInfo();
  const nonReaderBin = path.join(path.dirname(CFG.bin), 'examples', 'non_reader');
  if (!fs.existsSync(nonReaderBin)) throw new Error(`${nonReaderBin} is missing: cargo build --release --examples`);

  res.display = await startDisplay();
  const agent = await startAgent(res.display.display, { args: ['--input', 'xtest'] });
  agent.wsUrl = `ws://127.0.0.1:${agent.port}/ws`;
  agent.viewerToken = new URLSearchParams(new URL(agent.viewerUrl).hash.slice(1)).get('token');
  res.agentArgs = agent.args();
  res.healthz = await agent.healthz();
  const ctx = await launchBrowser();
  const controller = await ctx.newPage();
  await controller.goto(agent.controllerUrl, { waitUntil: 'load', timeout: 20000 });
  const viewer = await ctx.newPage();
  await viewer.goto(agent.viewerUrl, { waitUntil: 'load', timeout: 20000 });
  await Promise.all([waitPresented(controller), waitPresented(viewer)]);
  await waitFor(() => controller.evaluate(() => window.oriel.inputReady()), 15000, 'the controller\'s input channels');
  await sleep(CFG.settleMs);
  const watch = () => new Watch({ agent, controller, viewer, display: res.display.display });

  const forty = Array.from({ length: 40 }, (_, i) => `127.0.0.${2 + i}`);
  const cases = [
    ['idle-one', `${IDLE} WebSockets that open and never speak, from one address`, () => idleSockets(agent.wsUrl, ['127.0.0.2'])],
    ['idle-many', `${IDLE} WebSockets that open and never speak, from 40 addresses`, () => idleSockets(agent.wsUrl, forty)],
    ['big', 'one 100 MiB text message', () => bigMessage(agent.wsUrl)],
    ['non-reader', `${NONREADER_S} s of clients that never read (examples/non_reader, 4 KiB receive buffer, 250 messages/s), one after the other`, () => nonReaders(agent, nonReaderBin)],
    ['flood', `a player page (seat 2) flooding its input data channel for ${FLOOD_S} s (asked: ${FLOOD_ASKED} messages/s), reconnecting when cut`, () => flood(ctx, agent)],
    ['hellos', `${HELLO_HZ} hellos a second with a forged token from one address for ${HELLO_S} s`, () => badHellos(agent.wsUrl, `${agent.viewerToken.split('.')[0]}.AAAA`)],
  ];
  const only = (process.env.BENCH_BAD_CASES ?? '').split(',').filter(Boolean);
  res.cases = [];
  const chosen = only.length ? only.map((id) => cases.find((c) => c[0] === id) ?? (() => { throw new Error(`no case ${id}`); })()) : cases;
  for (const [id, what, fn] of chosen) {
    log(`case ${id}: ${what}`);
    const r = await watch().run(fn);
    res.cases.push({ id, what, ...r });
    log(`  ${JSON.stringify({ rss: r.rssMiB, good: r.good, input: r.input, counters: r.counters })}`);
    if (!agent.alive) throw new Error(`the agent died in case ${id}`);
    await sleep(CFG.settleMs);
  }
  res.metricsAtEnd = await agent.metrics();
  res.agentLogFile = saveAgentLog(agent.rec.log, res.startedAt, 'bad-clients');
  res.notes = [];
  noteAgentWarnings(res, res.notes, agent.rec.log);
  const worst = Math.min(...res.cases.flatMap((c) => [c.good.controller.worstSecond, c.good.viewer.worstSecond]).filter((x) => x !== null));
  return `bad clients: ${res.cases.length} cases, good pages' worst second ${fmt(worst)} fps, RSS peak ${fmt(Math.max(...res.cases.map((c) => c.rssMiB.peak)))} MiB`;
}

// --------------------------------------------------------------- report

/** How the agent answered, in a table cell. */
function refusedHow(c) {
  const k = (name) => Object.entries(c.counters).filter(([key]) => key.startsWith(name)).map(([key, v]) => `\`${key.replace(/^oriel_/, '')}\` +${v}`);
  const codes = (o) => Object.entries(o ?? {}).map(([k, v]) => `${v}× ${k}`).join('; ');
  switch (c.id) {
    case 'idle-one':
    case 'idle-many':
      return `${c.open} got in, then closed ${codes(c.closes)} (last at ${fmt(c.lastClosedMs / 1000)} s); refused: ${codes(c.refused)}. ${k('oriel_refused').concat(k('oriel_cut')).join(', ')}`;
    case 'big':
      return `close ${codes(c.closes)} after ${fmt(c.closedMs / 1000, 2)} s. ${k('oriel_cut').join(', ')}`;
    case 'non-reader':
      return `${c.cutOff} of ${c.runs.length} cut off (close 1008 \`not reading\`, then reset), after ${c.secondsToCut.map((s) => fmt(s)).join(', ')} s. ${k('oriel_cut').join(', ')}`;
    case 'flood':
      return `the page sent ${c.pageSentPerSec}/s, ${c.arrivedPerSec}/s reached the agent, ${c.passedLimitPerSec}/s passed the rate limit; cut off ${c.cutOff} time(s) in ${c.sessions} session(s), after ${c.secondsToCut.map((s) => fmt(s)).join(', ')} s (bye + close 1008 \`input flood\`). ${k('oriel_input_dropped').concat(k('oriel_cut')).join(', ')}`;
    case 'hellos':
      return `${c.attempts} at ${fmt(c.perSec)}/s: ${codes(c.answers)}. ${k('oriel_token').join(', ')}`;
    default:
      return '';
  }
}

const fpsCell = (g) => `${fmt(g.mean)} / ${fmt(g.worstSecond)}${g.reconnected ? ' (reconnected)' : ''}`;

/** This part's section of BENCHMARKS.md: a `###` under `## Reliability`. */
export function render(res, jsonRel) {
  const c = res.config;
  const L = ['### One bad client', ''];
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`, agent \`${res.agentArgs?.join(' ') ?? ''}\`. Raw results: [\`${jsonRel}\`](${jsonRel}).`);
  L.push('');
  L.push(`A Chromium controller and a Chromium viewer play the ${c.width}x${c.height}@${c.framerate} \`${c.scene}\` scene (x264 at ${c.bitrateKbps} kbit/s) while one bad client at a time does its worst, from other loopback addresses (127.0.0.2 and up) than the pages'. ` +
    'RSS is the agent\'s (median of 3 samples before, the highest 100 ms sample during, median 3 s after); fps is each page\'s decoded frames over the case, then its worst single second; ' +
    'input: every second the controller page moves the pointer to a new spot (`window.oriel.sendInput`) and `xdotool` must see it there within 3 s. ' +
    `Agent CPU and machine busy (everything running, other people's jobs included) are % of one core over the case; the machine has ${res.machine?.cores ?? '?'} cores.`);
  L.push('');
  L.push('| bad client | refused how | agent RSS MiB before / peak / after | controller fps mean / worst s | viewer fps mean / worst s | controller input landed | agent CPU % | machine busy % | case s |');
  L.push('|---|---|---|---|---|---|---:|---:|---:|');
  for (const x of res.cases) {
    L.push(`| ${x.what} | ${refusedHow(x)} | ${fmt(x.rssMiB.before)} / ${fmt(x.rssMiB.peak)} / ${fmt(x.rssMiB.after)} | ${fpsCell(x.good.controller)} | ${fpsCell(x.good.viewer)} | ` +
      `${x.input.landed}/${x.input.probes} (median ${fmt(x.input.medianMs, 0)} ms, max ${fmt(x.input.maxMs, 0)}) | ${fmt(x.agentCpuPct)} | ${fmt(x.machineBusyPct)} | ${fmt(x.seconds)} |`);
  }
  L.push('');
  const worst = Math.min(...res.cases.flatMap((x) => [x.good.controller.worstSecond, x.good.viewer.worstSecond]).filter((v) => v !== null));
  const peak = Math.max(...res.cases.map((x) => x.rssMiB.peak - x.rssMiB.before));
  const missed = res.cases.reduce((a, x) => a + x.input.probes - x.input.landed, 0);
  const flood = res.cases.find((x) => x.id === 'flood');
  const reading = [
    `The good pages' worst second over all cases was ${fmt(worst)} fps; ${missed ? `${missed} input probe(s) did not land within 3 s` : 'every input probe landed'}. ` +
    `The largest rise of the agent's RSS during a case was ${fmt(peak)} MiB above its level before it. ` +
    'Memory is bounded by construction: at most `--max-connections` (256) WebSockets, each with an 8 KiB read buffer, at most 128 KiB more while a frame is read, 128 queued messages and a 64 KiB (doubled by Linux) kernel send buffer; ' +
    'the same number of plain HTTP connections, each closed 10 s after its last request; at most 4096 input messages waiting for the input thread.',
    flood ? `The flooding page reached ${flood.pageSentPerSec} messages/s (of ${c.floodAsked} asked) and ${flood.arrivedPerSec}/s reached the agent: that is what Chromium's data channel delivers on this machine, not a limit of the agent's.` : '',
  ].filter(Boolean).join('\n\n');
  L.push(...readingAndOddities(reading, res.notes).map((l) => l.replace(/^### /, '#### ')));
  return L.join('\n');
}

/** One-line findings for the top of BENCHMARKS.md. */
export function headline(res) {
  const worst = Math.min(...res.cases.flatMap((x) => [x.good.controller.worstSecond, x.good.viewer.worstSecond]).filter((v) => v !== null));
  const peak = Math.max(...res.cases.map((x) => x.rssMiB.peak));
  const landed = res.cases.reduce((a, x) => a + x.input.landed, 0);
  const probes = res.cases.reduce((a, x) => a + x.input.probes, 0);
  return [`One bad client at a time (${res.cases.length} kinds, part \`bad-clients\`): the good pages' worst second ${fmt(worst)} fps, the agent's RSS at most ${fmt(peak)} MiB, the controller's input landed ${landed}/${probes}.`];
}

if (isMain(import.meta.url)) runPart('bad-clients', main);
