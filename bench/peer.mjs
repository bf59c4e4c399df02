#!/usr/bin/env node
// oriel benchmark part `peer`: oriel side by side with gst-plugins-rs
// webrtcsink, serving the same capture to the same numbers of receivers, in
// the same run. oriel encodes once and fans the RTP out; webrtcsink encodes
// once per consumer. This is where the shared encode shows its worth.
//
//   cd bench && node peer.mjs      (or `make bench-peer`)
//
// What it does, unattended (about 7.5 minutes on 2 cores once built):
//   0. Builds the bench-only workspace bench/webrtcsink/ (webrtcsink-server,
//      webrtcsink-receiver) with cargo if needed: ~7-11 minutes the first time
//      on 2 cores, a second once built. oriel's `bench_receiver` example must
//      exist (`cargo build --release --examples`, done by `make bench-deps`).
//   1. Xvfb on a free display with the harness's moving scene (scrolling
//      SMPTE bars + clock, 1280x720, 30 fps; BENCH_SCENE).
//   2. For each receiver count n (1, 2, 4, 8, 16, 32) and each round, both
//      servers one after the other, each fresh: the oriel agent
//      (`--capture x11`, 720p30, 4000 kbit/s) with `bench_receiver --link`
//      viewers, and `webrtcsink-server` (the same capture, x264 set up like
//      oriel's, congestion control off at 4000 kbit/s) with
//      `webrtcsink-receiver --signalling` consumers. Round 1 measures oriel
//      first, round 2 webrtcsink first, to balance drift.
//   3. Per window: the server's CPU (% of one core, /proc utime+stime),
//      RSS, threads, and the CPU by thread name (where it goes: capture,
//      encodes, send paths); frames per second delivered to each receiver
//      (RTP packets with the marker bit, no decoding); the receivers' own
//      CPU and the whole machine's for context. Medians over the rounds; ratios
//      webrtcsink / oriel per n. Larger n are skipped once webrtcsink
//      delivers less than BENCH_PEER_MIN_FPS (5) per receiver.
//   4. Raw results to bench/results/<date>-peer.json, BENCHMARKS.md
//      regenerated (bench/report.mjs), a summary on stdout.
//
// Knobs (environment): ORIEL_BIN, BENCH_RECEIVER (oriel's bench_receiver),
// BENCH_PEER_VIEWERS ("1,2,4,8,16,32"), BENCH_PEER_SYSTEMS
// ("oriel,webrtcsink"; one of them for experiments), BENCH_PEER_MIN_FPS (5),
// BENCH_WINDOW_MS (10000), BENCH_SETTLE_MS (3000), BENCH_ROUNDS (2),
// BENCH_SCENE (bars|ball), BENCH_NO_MARKDOWN=1, BENCH_TIMEOUT_MS (1800000
// for this part), CARGO.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  BENCH_DIR, CFG, CLK_TCK, REPO_ROOT, agentInfo, childEnv, children, envNum, fmt, freePort, log, machineInfo, median,
  pidsCpuSec, procCpuSec, procStatus, round1, sleep, startAgent, startDisplay, stopChild, sysCpu, waitFor, waitForLine, start,
} from './lib/harness.mjs';
import { agentWarnings, isMain, readingAndOddities, runPart, saveAgentLog } from './lib/run.mjs';

const SYSTEMS = ['oriel', 'webrtcsink'];
const WS_DIR = path.join(BENCH_DIR, 'webrtcsink');
const WS_MANIFEST = path.join(WS_DIR, 'Cargo.toml');
const WS_BIN = (name) => path.join(WS_DIR, 'target', 'release', name);

const PEER = {
  viewers: (process.env.BENCH_PEER_VIEWERS || '1,2,4,8,16,32').split(',').map(Number).filter((n) => n > 0),
  systems: (process.env.BENCH_PEER_SYSTEMS || SYSTEMS.join(',')).split(',').filter((s) => SYSTEMS.includes(s)),
  minFps: envNum('BENCH_PEER_MIN_FPS', 5),
  receiver: process.env.BENCH_RECEIVER || null, // resolved from CFG.bin in main()
};

// ------------------------------------------------------------- building

/**
 * Builds bench/webrtcsink/ (cargo is a no-op when it is up to date). Runs
 * before the part's watchdog starts: the first build takes ~11 minutes.
 */
export function buildWebrtcsink() {
  const cargo = process.env.CARGO || 'cargo';
  const t0 = Date.now();
  log(`building the webrtcsink bench workspace (${path.relative(REPO_ROOT, WS_DIR)}; the first build takes ~7-11 minutes on 2 cores)`);
  // --target-dir: the binaries must land where this script looks for them,
  // whatever CARGO_TARGET_DIR the caller has set.
  const r = spawnSync(cargo, ['build', '--release', '--locked', '--manifest-path', WS_MANIFEST, '--target-dir', path.join(WS_DIR, 'target')],
    { stdio: ['ignore', process.stderr, process.stderr], env: process.env });
  if (r.status !== 0) throw new Error(`cargo build of ${WS_MANIFEST} failed (status ${r.status ?? r.signal}${r.error ? `, ${r.error.message}` : ''})`);
  for (const b of ['webrtcsink-server', 'webrtcsink-receiver']) {
    if (!fs.existsSync(WS_BIN(b))) throw new Error(`cargo build succeeded but ${WS_BIN(b)} is missing`);
  }
  return Math.round((Date.now() - t0) / 1000);
}

function webrtcsinkCrate() {
  // The gst-plugin-webrtc version cargo locked, for the report.
  try {
    const lock = fs.readFileSync(path.join(WS_DIR, 'Cargo.lock'), 'utf8');
    const m = lock.match(/name = "gst-plugin-webrtc"\nversion = "([^"]+)"/);
    return m ? m[1] : null;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------ receivers

/**
 * A receiver process (bench_receiver or webrtcsink-receiver): stdin for
 * commands, JSON events from stdout, logs from stderr. Registered in the
 * harness's `children`, so every way out kills it.
 */
function startReceiver(name, cmd, args) {
  const child = spawn(cmd, args, { env: childEnv(), detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  const rec = { name, child, log: [], events: [], exitCode: undefined, listeners: [] };
  child.stdin.on('error', () => {}); // EPIPE once it is gone; the exit is reported below
  const onLine = (line, fromStdout) => {
    let ev = null;
    if (fromStdout) {
      try {
        ev = JSON.parse(line);
      } catch {
        /* not an event */
      }
    }
    if (ev && typeof ev.event === 'string') {
      ev.atMs = performance.now();
      rec.events.push(ev);
    } else {
      rec.log.push(line);
      if (rec.log.length > 3000) rec.log.splice(0, 1000);
    }
    for (const l of rec.listeners) l(line);
  };
  for (const [s, out] of [[child.stdout, true], [child.stderr, false]]) {
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i), out);
        buf = buf.slice(i + 1);
      }
    });
    s.on('end', () => buf && onLine(buf, out));
  }
  rec.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      rec.exitCode = code ?? signal;
      rec.log.push(`[${name} exited: code=${code} signal=${signal}]`);
      resolve();
    });
    child.on('error', (e) => {
      rec.exitCode = -1;
      rec.log.push(`[${name} failed to start: ${e.message}]`);
      resolve();
    });
  });
  rec.send = (line) => {
    if (rec.exitCode === undefined) child.stdin.write(`${line}\n`);
  };
  rec.count = (kind) => rec.events.filter((e) => e.event === kind).length;
  rec.stats = async () => {
    const before = rec.count('stats');
    rec.send('stats');
    await waitFor(() => rec.count('stats') > before || rec.exitCode !== undefined, 5000, `${name} stats`, 20);
    if (rec.exitCode !== undefined) throw new Error(`${name} exited (${rec.exitCode})`);
    return rec.events.filter((e) => e.event === 'stats').at(-1);
  };
  children.push(rec);
  return rec;
}

async function stopReceiver(rec) {
  rec.send('quit');
  await Promise.race([rec.exited, sleep(8000)]);
  await stopChild(rec);
}

// --------------------------------------------------------------- servers

function tcpOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** A fresh server of `system` on `display`, and how to reach it. */
async function startServer(system, display) {
  if (system === 'oriel') {
    // The same capture as webrtcsink's (ximagesrc on the clock), whatever
    // the default, so the per-viewer costs compare; damage is part `still`.
    const agent = await startAgent(display, { args: ['--x11-capture', 'clock'] });
    return {
      system, pid: agent.pid, rec: agent.rec, args: agent.args(), alive: () => agent.alive,
      receiver: [PEER.receiver, ['--link', agent.viewerUrl]], agent,
    };
  }
  const port = await freePort();
  const args = ['--display', display, '--host', '127.0.0.1', '--port', String(port),
    '--framerate', String(CFG.framerate), '--bitrate', String(CFG.bitrateKbps)];
  const rec = start('webrtcsink-server', WS_BIN('webrtcsink-server'), args, childEnv({ GST_DEBUG: process.env.GST_DEBUG }));
  await waitForLine(rec, /webrtcsink-server: serving ws:/, 30000, 'webrtcsink-server to start');
  await waitFor(() => tcpOpen(port), 15000, 'the webrtcsink signalling server to listen', 100);
  return {
    system, pid: rec.child.pid, rec, args, alive: () => rec.exitCode === undefined,
    receiver: [WS_BIN('webrtcsink-receiver'), ['--signalling', `ws://127.0.0.1:${port}`]],
  };
}

// ---------------------------------------------------------- measurement

const WARN_RE = /\b(ERROR|WARN|WARNING|CRITICAL)\b/;

/**
 * GLib prints `(prog:pid): GStreamer-CRITICAL **: time: ` and the message on
 * the next line when it is long: join them, so the message is what counts.
 */
function joinGLibLines(lines) {
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    if (/\*\*: [\d:.]+: $/.test(lines[i]) && i + 1 < lines.length) {
      out.push(lines[i] + lines[i + 1]);
      i++;
    } else out.push(lines[i]);
  }
  return out;
}

/** CPU seconds of every thread of `pid`: tid -> {name, sec}. */
function threadCpu(pid) {
  const out = new Map();
  let tids = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const st = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      out.set(tid, { name, sec: (Number(f[11]) + Number(f[12])) / CLK_TCK });
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * Where a server's CPU went over a window, by thread name with numbers
 * folded (`queue3:src` -> `queueN:src`): GStreamer names a streaming thread
 * after the pad that starts it, and x264's worker threads inherit the name
 * of the thread that created them, so an encode is counted with the
 * streaming thread that feeds it.
 */
function threadGroups(before, after, dt) {
  const groups = new Map();
  for (const [tid, a] of after) {
    const b = before.get(tid);
    const name = a.name.replace(/\d+/g, 'N');
    const g = groups.get(name) ?? { name, threads: 0, cpuPct: 0 };
    g.threads += 1;
    g.cpuPct += ((a.sec - (b ? b.sec : 0)) / dt) * 100; // a thread born in the window counts from 0
    groups.set(name, g);
  }
  return [...groups.values()].map((g) => ({ ...g, cpuPct: round1(g.cpuPct) })).sort((x, y) => y.cpuPct - x.cpuPct);
}

/** One window: a fresh `system` server, `n` receivers in one process. */
async function measure(system, n, round, display) {
  const label = `round ${round} ${system} n=${n}`;
  let server;
  try {
    server = await startServer(system, display);
  } catch (e) {
    // Recorded, and the run goes on (a webrtcsink that cannot start counts
    // as collapsed); whatever did start is stopped.
    log(`${label} FAILED to start the server: ${e.message}`);
    for (const c of children.filter((c) => (c.name === 'oriel' || c.name === 'webrtcsink-server') && c.exitCode === undefined)) await stopChild(c);
    return { round, system, n, label, failed: `server did not start: ${e.message}`, serverAlive: false, errors: [] };
  }
  const [rcvCmd, rcvArgs] = server.receiver;
  const recv = startReceiver(`${system}-receiver`, rcvCmd, rcvArgs);
  const r = { round, system, n, label, serverArgs: server.args, errors: [] };
  try {
    await waitFor(() => recv.count('ready') > 0 || recv.exitCode !== undefined, 15000, `${recv.name} ready`, 20);
    if (recv.exitCode !== undefined) throw new Error(`${recv.name} exited at start:\n${recv.log.slice(-20).join('\n')}`);
    const tAdd = performance.now();
    recv.send(`add ${n}`);
    const joinTimeoutMs = 20000 + 1500 * n;
    const done = () => recv.count('first_frame') + recv.count('error') >= n || !server.alive() || recv.exitCode !== undefined;
    await waitFor(done, joinTimeoutMs, `${n} first frames`, 50).catch(() => {});
    r.allFirstFrameMs = round1(performance.now() - tAdd);
    const ev = (kind) => recv.events.filter((e) => e.event === kind);
    r.joined = ev('joined').length;
    r.connected = ev('connected').length;
    r.firstFrames = ev('first_frame').length;
    r.firstFrameMsMedian = round1(median(ev('first_frame').map((e) => e.ms)));
    r.firstFrameMsMax = ev('first_frame').length ? Math.max(...ev('first_frame').map((e) => e.ms)) : null;
    r.connectedMsMedian = round1(median(ev('connected').map((e) => e.ms)));
    if (r.firstFrames < n) log(`${label}: only ${r.firstFrames} of ${n} receivers had a first frame within ${joinTimeoutMs} ms`);

    await sleep(CFG.settleMs);
    if (!server.alive()) throw new Error(`${system} server died before the window`);
    const s0 = await recv.stats();
    const cpu0 = procCpuSec(server.pid);
    const thr0 = threadCpu(server.pid);
    const rcpu0 = procCpuSec(recv.child.pid);
    const helperPids = children.filter((c) => (c.name === 'Xvfb' || c.name === 'mover') && c.exitCode === undefined).map((c) => c.child.pid);
    const hlp0 = pidsCpuSec(helperPids);
    const sys0 = sysCpu();
    const t0 = performance.now();
    const samples = [];
    const end = t0 + CFG.windowMs;
    while (performance.now() < end - 5) {
      await sleep(Math.min(1000, Math.max(0, end - performance.now())));
      samples.push(procStatus(server.pid));
    }
    const cpu1 = procCpuSec(server.pid);
    const thr1 = threadCpu(server.pid);
    const rcpu1 = procCpuSec(recv.child.pid);
    const hlp1 = pidsCpuSec(helperPids);
    const sys1 = sysCpu();
    const t1 = performance.now();
    const s1 = await recv.stats();
    const dt = (t1 - t0) / 1000;
    const statDt = (s1.t - s0.t) / 1000;
    const before = Object.fromEntries(s0.viewers.map((v) => [v.id, v]));
    r.windowSec = round1(dt);
    r.cpuPct = round1(((cpu1 - cpu0) / dt) * 100);
    r.rssMiB = round1(median(samples.map((s) => s.rssKb)) / 1024);
    r.threads = median(samples.map((s) => s.threads));
    r.threadGroups = threadGroups(thr0, thr1, dt);
    r.receiverCpuPct = round1(((rcpu1 - rcpu0) / dt) * 100);
    r.machineBusyPct = round1(((sys1.busy - sys0.busy) / (sys1.total - sys0.total)) * os.cpus().length * 100);
    r.xvfbAndMoverCpuPct = round1(((hlp1 - hlp0) / dt) * 100);
    // Whatever else ran meanwhile (other people's builds and tests).
    r.otherLoadPct = round1(Math.max(0, r.machineBusyPct - r.cpuPct - r.receiverCpuPct - r.xvfbAndMoverCpuPct));
    r.perViewer = s1.viewers.map((v) => {
      const b = before[v.id];
      return {
        id: v.id,
        state: v.state,
        fps: b ? round1((v.frames - b.frames) / statDt) : null,
        kbps: b ? Math.round(((v.bytes - b.bytes) * 8) / statDt / 1000) : null,
        packetsPerFrame: b && v.frames > b.frames ? Math.round(((v.packets - b.packets) / (v.frames - b.frames)) * 10) / 10 : null,
      };
    });
    // A receiver that never appeared in the stats delivered nothing.
    const fps = Array.from({ length: n }, (_, i) => r.perViewer[i]?.fps ?? 0);
    r.fpsMin = Math.min(...fps);
    r.fpsMedian = round1(median(fps));
    r.kbpsMedian = median(r.perViewer.map((v) => v.kbps));
    r.packetsPerFrameMedian = round1(median(r.perViewer.map((v) => v.packetsPerFrame)));
    r.serverAlive = server.alive();
  } catch (e) {
    r.failed = e.message;
    r.serverAlive = server.alive();
    log(`${label} FAILED: ${e.message}`);
  }
  r.errors = recv.events.filter((e) => e.event === 'error').map((e) => e.message);
  // While the receivers are still connected (the encoder, client counts).
  if (system === 'oriel' && server.agent) r.healthz = await server.agent.healthz().catch(() => null);
  await stopReceiver(recv);
  // What the server logged while serving, and apart from it what it logged
  // once stopped (SIGTERM, after every receiver had left).
  const cut = server.rec.log.length;
  r.serverLog = joinGLibLines(server.rec.log.slice(0, cut));
  r.serverWarnings = r.serverLog.filter((l) => WARN_RE.test(l)).slice(0, 20);
  await stopChild(server.rec);
  r.shutdownLog = joinGLibLines(server.rec.log.slice(cut));
  r.shutdownWarnings = r.shutdownLog.filter((l) => WARN_RE.test(l)).slice(0, 20);
  r.receiverLogTail = recv.log.slice(-10);
  log(`${label}: cpu ${fmt(r.cpuPct)}% rss ${fmt(r.rssMiB)} MiB threads ${r.threads ?? 'n/a'} ` +
    `fps min/med ${fmt(r.fpsMin)}/${fmt(r.fpsMedian)} kbps ${r.kbpsMedian ?? 'n/a'} first frame med/max ${fmt(r.firstFrameMsMedian, 0)}/${r.firstFrameMsMax ?? 'n/a'} ms ` +
    `receivers ${fmt(r.receiverCpuPct)}% xvfb+mover ${fmt(r.xvfbAndMoverCpuPct)}% machine ${fmt(r.machineBusyPct)}% other ${fmt(r.otherLoadPct)}%` +
    (r.errors.length ? ` errors ${r.errors.length}: ${r.errors[0]}` : ''));
  return r;
}

async function sideBySide(display) {
  const runs = [];
  let collapsedAt = null; // the smallest n at which webrtcsink delivered < minFps
  for (let round = 1; round <= CFG.rounds; round++) {
    const order = round % 2 === 1 ? SYSTEMS : [...SYSTEMS].reverse();
    for (const n of PEER.viewers) {
      if (collapsedAt !== null && n > collapsedAt) {
        log(`round ${round}: skipping n=${n} (webrtcsink collapsed at n=${collapsedAt})`);
        continue;
      }
      for (const system of order.filter((s) => PEER.systems.includes(s))) {
        const r = await measure(system, n, round, display);
        runs.push(r);
        const bad = r.failed || !r.serverAlive || !(r.fpsMedian >= PEER.minFps);
        if (system === 'webrtcsink' && bad && (collapsedAt === null || n < collapsedAt)) collapsedAt = n;
      }
    }
  }
  return { runs, collapsedAt };
}

/** Thread groups of several windows: the median of each group's CPU (0 where absent). */
function medianGroups(lists) {
  const names = [...new Set(lists.flat().map((g) => g.name))];
  return names.map((name) => {
    const gs = lists.map((l) => l.find((g) => g.name === name));
    return {
      name,
      cpuPct: round1(median(gs.map((g) => g?.cpuPct ?? 0))),
      threads: median(gs.map((g) => g?.threads ?? 0)),
    };
  }).sort((a, b) => b.cpuPct - a.cpuPct);
}

function summarize(runs) {
  const ns = [...new Set(runs.map((r) => r.n))].sort((a, b) => a - b);
  return ns.map((n) => {
    const row = { n };
    for (const system of SYSTEMS) {
      const rs = runs.filter((r) => r.n === n && r.system === system && !r.failed);
      if (!rs.length) continue;
      row[system] = {
        rounds: rs.length,
        cpuPct: round1(median(rs.map((r) => r.cpuPct))),
        cpuPctRuns: rs.map((r) => r.cpuPct),
        rssMiB: round1(median(rs.map((r) => r.rssMiB))),
        threads: median(rs.map((r) => r.threads)),
        fpsMin: Math.min(...rs.map((r) => r.fpsMin)),
        fpsMedian: round1(median(rs.map((r) => r.fpsMedian))),
        kbpsMedian: median(rs.map((r) => r.kbpsMedian)),
        packetsPerFrame: round1(median(rs.map((r) => r.packetsPerFrameMedian))),
        firstFrameMsMedian: round1(median(rs.map((r) => r.firstFrameMsMedian))),
        receiverCpuPct: round1(median(rs.map((r) => r.receiverCpuPct))),
        machineBusyPct: round1(median(rs.map((r) => r.machineBusyPct))),
        otherLoadPct: round1(median(rs.map((r) => r.otherLoadPct))),
        errors: rs.reduce((a, r) => a + r.errors.length, 0),
        threadGroups: medianGroups(rs.map((r) => r.threadGroups ?? [])),
      };
    }
    const o = row.oriel;
    const w = row.webrtcsink;
    if (o && w) {
      row.cpuRatio = o.cpuPct > 0 ? round1(w.cpuPct / o.cpuPct) : null;
      row.rssRatio = o.rssMiB > 0 ? Math.round((w.rssMiB / o.rssMiB) * 100) / 100 : null;
      // The same ratio per round (each pair measured minutes apart at most).
      row.cpuRatioRuns = [];
      for (let round = 1; round <= CFG.rounds; round++) {
        const a = runs.find((r) => r.n === n && r.round === round && r.system === 'oriel' && !r.failed);
        const b = runs.find((r) => r.n === n && r.round === round && r.system === 'webrtcsink' && !r.failed);
        if (a && b && a.cpuPct > 0) row.cpuRatioRuns.push(round1(b.cpuPct / a.cpuPct));
      }
    }
    return row;
  });
}

// -------------------------------------------------------------- report

// "Full rate": at least 80 % of the capture rate per receiver (median over
// the receivers). Below that the server is starved and its CPU flattens at
// what the machine has left; on a shared 2-core machine 90 % was too strict
// for even one receiver when other load peaked.
const fullRate = (res) => res.config.framerate * 0.8;

const signed = (x) => (Number.isFinite(x) && x >= 0 ? `+${fmt(x)}` : fmt(x));

/** Least-squares slope of y over n (CPU or RSS per added receiver). */
function slope(points) {
  const p = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (p.length < 2) return null;
  const mx = p.reduce((a, [x]) => a + x, 0) / p.length;
  const my = p.reduce((a, [, y]) => a + y, 0) / p.length;
  const sxx = p.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  if (!sxx) return null;
  return p.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx;
}

function derive(res) {
  const d = {};
  for (const sys of SYSTEMS) {
    // Only the rows up to where that server first fell below full rate: past
    // saturation the CPU flattens at the machine's limit and the slope lies.
    const rows = [];
    for (const s of res.summary.filter((x) => x[sys])) {
      if (s[sys].fpsMedian < fullRate(res)) break;
      rows.push(s);
    }
    d[sys] = {
      fullRateUpTo: rows.length ? Math.max(...rows.map((s) => s.n)) : null,
      cpuPerReceiverPct: round1(slope(rows.map((s) => [s.n, s[sys].cpuPct]))),
      rssPerReceiverMiB: round1(slope(rows.map((s) => [s.n, s[sys].rssMiB]))),
      threadsPerReceiver: round1(slope(rows.map((s) => [s.n, s[sys].threads]))),
      oneReceiverCpuPct: res.summary.find((s) => s.n === 1)?.[sys]?.cpuPct ?? null,
    };
  }
  const both = res.summary.filter((s) => s.cpuRatio !== null && s.cpuRatio !== undefined);
  d.largestComparedN = both.length ? Math.max(...both.map((s) => s.n)) : null;
  const fullBoth = both.filter((s) => s.webrtcsink.fpsMedian >= fullRate(res) && s.oriel.fpsMedian >= fullRate(res));
  d.largestFullRateN = fullBoth.length ? Math.max(...fullBoth.map((s) => s.n)) : null;
  d.maxMachineBusyPct = Math.max(...res.runs.filter((r) => !r.failed).map((r) => r.machineBusyPct));
  d.maxOtherLoadPct = Math.max(...res.runs.filter((r) => !r.failed).map((r) => r.otherLoadPct));
  return d;
}

/** What runs in each thread group of the two servers (see threadGroups()). */
const THREAD_ROLES = {
  'ximagesrcN:src': 'capture and conversion; in oriel also the one x264 encode, payloader and tee',
  'video_N:src': 'webrtcsink, per consumer: appsrc, x264 encode, payloader, webrtcbin send path',
  'queueN:src': 'oriel, per viewer: webrtcbin send path (RTP, SRTP, ICE)',
  'tokio-rt-worker': 'async runtime: signalling',
};

/** Receiver counts left out because webrtcsink had collapsed below minFps. */
const skippedN = (res) => (res.collapsedAt === null ? [] : res.config.viewers.filter((n) => n > res.collapsedAt));

/** The n the breakdown and the first reading line are about. */
function whereN(res) {
  const d = derive(res);
  return d.largestFullRateN ?? d.largestComparedN;
}

function readingOf(res) {
  const d = derive(res);
  const by = Object.fromEntries(res.summary.map((s) => [s.n, s]));
  const o = d.oriel;
  const w = d.webrtcsink;
  const out = [];
  const nFull = d.largestFullRateN;
  if (nFull && by[nFull]) {
    const s = by[nFull];
    out.push(`At ${nFull} receiver${nFull > 1 ? 's' : ''}, both at full rate (>= ${fmt(fullRate(res), 0)} fps per receiver), webrtcsink used **${fmt(s.cpuRatio)}x** oriel's CPU ` +
      `(${fmt(s.webrtcsink.cpuPct)} % against ${fmt(s.oriel.cpuPct)} % of a core) and **${fmt(s.rssRatio, 2)}x** its memory ` +
      `(${fmt(s.webrtcsink.rssMiB)} against ${fmt(s.oriel.rssMiB)} MiB RSS).`);
  }
  if (by[1]?.cpuRatio !== undefined && by[1]?.cpuRatio !== null) {
    const same = by[1].cpuRatio >= 0.8 && by[1].cpuRatio <= 1.25;
    out.push(`With one receiver the two do the same work (one capture, one conversion, one x264 encode)` +
      (same ? ' and cost about the same' : ', yet their costs differ') +
      `: ${fmt(by[1].webrtcsink.cpuPct)} % (webrtcsink) against ${fmt(by[1].oriel.cpuPct)} % (oriel), ratio ${fmt(by[1].cpuRatio)}.`);
  }
  if (w.cpuPerReceiverPct !== null && o.cpuPerReceiverPct !== null) {
    const one = w.oneReceiverCpuPct;
    // webrtcsink(n) ~ base + n * perConsumer: the base is the shared capture
    // and conversion, the per-consumer part its own encode + webrtcbin.
    const base = one !== null ? one - w.cpuPerReceiverPct : null;
    out.push(`Where webrtcsink's cost goes: each added consumer costs it about **${fmt(w.cpuPerReceiverPct)} % of a core**, ` +
      `${fmt(w.rssPerReceiverMiB)} MiB and ${fmt(w.threadsPerReceiver)} threads (least-squares slope over n = 1..${w.fullRateUpTo} at full rate)` +
      (base !== null && base > 0 ? `; extrapolated to zero consumers, ${fmt(base)} % of its ${fmt(one)} % with one consumer is shared (capture and conversion), ` +
        `the other ${fmt(w.cpuPerReceiverPct)} % is that consumer's own x264 encode and webrtcbin, paid again for every consumer` : '') +
      `. oriel adds ${fmt(o.cpuPerReceiverPct)} % of a core, ${fmt(o.rssPerReceiverMiB)} MiB and ${fmt(o.threadsPerReceiver)} threads per viewer ` +
      `(n = 1..${o.fullRateUpTo}): the per-viewer webrtcbin (SRTP, RTP/RTCP, ICE, data channels) only; its one encode ` +
      `(${fmt(o.oneReceiverCpuPct)} % in total with one viewer) is shared.`);
  }
  const at = whereN(res);
  const row = by[at];
  const grp = (sys, name) => row?.[sys]?.threadGroups?.find((g) => g.name === name) ?? null;
  const wEnc = grp('webrtcsink', 'video_N:src');
  const wCap = grp('webrtcsink', 'ximagesrcN:src');
  const oEnc = grp('oriel', 'ximagesrcN:src');
  const oSend = grp('oriel', 'queueN:src');
  if (wEnc && wCap && oEnc && oSend) {
    out.push(`By thread, at ${at} receivers: webrtcsink's per-consumer encoding chains (\`video_N:src\`, ${wEnc.threads} threads) took ${fmt(wEnc.cpuPct)} % of its ${fmt(row.webrtcsink.cpuPct)} %, ` +
      `**${fmt(wEnc.cpuPct / at)} % per consumer**, and its shared capture and conversion ${fmt(wCap.cpuPct)} %. ` +
      `oriel's capture, conversion and single encode (\`ximagesrcN:src\`) took ${fmt(oEnc.cpuPct)} %, and its per-viewer send paths (\`queueN:src\`) ` +
      `${fmt(oSend.cpuPct)} %, **${fmt(oSend.cpuPct / at)} % per viewer**.`);
  }
  const ppf = (sys) => round1(median(res.summary.map((s) => s[sys]?.packetsPerFrame)));
  if (ppf('oriel') !== null && ppf('webrtcsink') !== null) {
    out.push(`Same bitrate on the wire (median ${fmt(median(res.summary.map((s) => s.oriel?.kbpsMedian)), 0)} kbit/s per receiver from oriel, ` +
      `${fmt(median(res.summary.map((s) => s.webrtcsink?.kbpsMedian)), 0)} from webrtcsink), cut differently: ${fmt(ppf('webrtcsink'))} RTP packets per frame from webrtcsink ` +
      `(payloader MTU 1200) against ${fmt(ppf('oriel'))} from oriel (MTU 1400).`);
  }
  const wsRows = res.summary.filter((s) => s.webrtcsink);
  const starved = wsRows.filter((s) => s.webrtcsink.fpsMedian < fullRate(res));
  if (starved.length) {
    const first = starved[0];
    out.push(`webrtcsink ran out of CPU at ${first.n} receivers: median ${fmt(first.webrtcsink.fpsMedian)} fps per receiver (slowest ${fmt(first.webrtcsink.fpsMin)}), ` +
      `its CPU ${fmt(first.webrtcsink.cpuPct)} % with the machine ${fmt(first.webrtcsink.machineBusyPct)} % busy of ${res.machine.cores * 100} %` +
      (first.oriel ? `; oriel served the same ${first.n} receivers at ${fmt(first.oriel.fpsMedian)} fps for ${fmt(first.oriel.cpuPct)} % of a core.` : '.') +
      (skippedN(res).length ? ` It fell below ${res.minFps} fps per receiver at n = ${res.collapsedAt}, so n = ${skippedN(res).join(', ')} were not measured.` : ''));
  } else if (wsRows.length) {
    out.push(`webrtcsink delivered full rate at every n measured (up to ${Math.max(...wsRows.map((s) => s.n))}).`);
  }
  const orielSlow = res.summary.filter((s) => s.oriel && s.oriel.fpsMedian < fullRate(res));
  if (orielSlow.length) {
    out.push(`oriel itself delivered less than full rate at n = ${orielSlow.map((s) => `${s.n} (${fmt(s.oriel.fpsMedian)} fps)`).join(', ')}; ` +
      'the receivers share the same 2 cores, so at high n part of that is the receiving process starving the server.');
  }
  if (d.maxOtherLoadPct > 20) {
    out.push(`The machine was not quiet: unrelated load reached ${fmt(d.maxOtherLoadPct)} % in some window (machine busy up to ${fmt(d.maxMachineBusyPct)} % of ${res.machine.cores * 100} %). ` +
      'The server figures are the server process\'s own CPU time, but contention can inflate them and cost frames; the ratios, each pair measured back to back, are the robust part.');
  }
  return out.map((x) => `- ${x}`).join('\n');
}

/** This part's section of BENCHMARKS.md. */
export function render(res, jsonRel) {
  const m = res.machine;
  const L = [];
  L.push('## Side by side with gst-plugins-rs webrtcsink');
  L.push('');
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}).`);
  L.push('');
  L.push(`The same X display (Xvfb ${res.config.width}x${res.config.height}x24 showing \`${res.display.pipeline}\`, scene \`${res.config.scene}\`), ` +
    `the same capture (\`ximagesrc use-damage=false show-pointer=true\`, ${res.config.framerate} fps, \`videoconvert\` to I420) and the same x264 settings ` +
    `(ultrafast, zerolatency, ${res.config.bitrateKbps} kbit/s, VBV 120 ms, key-int-max ${Math.min(res.config.framerate * 10, 300)}, no B-frames, ${Math.min(m.cores, 4)} threads), served by:`);
  L.push('');
  L.push(`- **oriel** (\`oriel ${res.orielArgs?.join(' ') ?? 'serve ...'}\`, ${res.agent?.build ?? '?'} build): one encode, a tee, one webrtcbin per viewer. ` +
    `Receivers: oriel's \`bench_receiver --link <viewer link>\`.`);
  L.push(`- **webrtcsink** (crate \`gst-plugin-webrtc\` ${res.webrtcsink.crateVersion ?? '?'} from crates.io, bench-only workspace \`bench/webrtcsink/\`, release build): ` +
    `\`webrtcsink-server\` (its built-in signalling server; congestion control off, min = start = max bitrate ${res.config.bitrateKbps} kbit/s, H.264 only, no FEC, no retransmission, ` +
    `no mitigation modes; the x264 settings above set through \`encoder-setup\`). Receivers: \`webrtcsink-receiver --signalling ws://...\`, consumers of webrtcsink's signalling protocol. ` +
    'Every difference that remains is listed in [`bench/webrtcsink/README.md`](bench/webrtcsink/README.md).');
  L.push('');
  L.push(`Both receivers hold every viewer in one process: a real webrtcbin each (receive only), no decoding; a frame is an RTP packet with the marker bit. ` +
    `For each n, both servers are measured one after the other, each started fresh with fresh receivers; round 1 oriel first, round 2 webrtcsink first. ` +
    `Server CPU = utime+stime of the server process (all threads) from \`/proc/PID/stat\` over a ${res.config.windowMs / 1000} s window after all receivers had their first frame ` +
    `and ${res.config.settleMs / 1000} s of settling, in % of one core; RSS = median \`VmRSS\` sampled every second; threads from \`/proc/PID/status\`. ` +
    `fps = frames each receiver got over the window. Medians over ${res.config.rounds} rounds; ratio = webrtcsink median / oriel median. ` +
    `The receivers' CPU and the machine's busy time are context only (${m.cores} cores shared by both).`);
  L.push('');
  L.push('| receivers | oriel CPU % | webrtcsink CPU % | **CPU ratio** | per round | oriel RSS MiB | webrtcsink RSS MiB | **RSS ratio** | threads oriel / webrtcsink | fps per receiver oriel min / median | fps per receiver webrtcsink min / median | kbit/s per receiver oriel / webrtcsink | receivers CPU % oriel / webrtcsink | machine busy % (of ' + m.cores * 100 + ') |');
  L.push('|---:|---:|---:|---:|---|---:|---:|---:|---|---|---|---|---|---|');
  for (const s of res.summary) {
    const o = s.oriel;
    const w = s.webrtcsink;
    const f = (x, k, dd = 1) => (x ? fmt(x[k], dd) : 'n/a');
    const capped = w && w.fpsMedian < fullRate(res) ? ' †' : '';
    L.push(`| ${s.n} | ${f(o, 'cpuPct')} | ${f(w, 'cpuPct')} | **${s.cpuRatio !== undefined && s.cpuRatio !== null ? `${fmt(s.cpuRatio)}x` : 'n/a'}**${capped} | ` +
      `${(s.cpuRatioRuns ?? []).map((x) => `${fmt(x)}x`).join(', ') || '-'} | ${f(o, 'rssMiB')} | ${f(w, 'rssMiB')} | ` +
      `**${s.rssRatio !== undefined && s.rssRatio !== null ? `${fmt(s.rssRatio, 2)}x` : 'n/a'}** | ${o?.threads ?? 'n/a'} / ${w?.threads ?? 'n/a'} | ` +
      `${o ? `${fmt(o.fpsMin)} / ${fmt(o.fpsMedian)}` : 'n/a'} | ${w ? `${fmt(w.fpsMin)} / ${fmt(w.fpsMedian)}` : 'n/a'} | ` +
      `${f(o, 'kbpsMedian', 0)} / ${f(w, 'kbpsMedian', 0)} | ${f(o, 'receiverCpuPct')} / ${f(w, 'receiverCpuPct')} | ${f(o, 'machineBusyPct')} / ${f(w, 'machineBusyPct')} |`);
  }
  L.push('');
  if (res.summary.some((s) => s.webrtcsink && s.webrtcsink.fpsMedian < fullRate(res))) {
    L.push(`† webrtcsink delivered less than ${fmt(fullRate(res), 0)} fps per receiver there: it was short of CPU, so its CPU figure is what the machine had left, ` +
      'not what full rate would cost, and the ratio understates the difference.');
    L.push('');
  }
  if (skippedN(res).length) {
    L.push(`webrtcsink delivered less than ${res.minFps} fps per receiver (or failed) at n = ${res.collapsedAt}; n = ${skippedN(res).join(', ')} were not measured.`);
    L.push('');
  }
  L.push('<details><summary>Every window</summary>');
  L.push('');
  L.push('| # | round | server | n | CPU % | RSS MiB | threads | fps per receiver | first frame ms median / max | receivers CPU % | Xvfb + mover CPU % | machine busy % | other load % | errors |');
  L.push('|---:|---:|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---|');
  res.runs.forEach((r, i) => {
    L.push(`| ${i + 1} | ${r.round} | ${r.system} | ${r.n} | ${fmt(r.cpuPct)} | ${fmt(r.rssMiB)} | ${r.threads ?? 'n/a'} | ` +
      `${r.failed ? `**failed**: ${r.failed.replace(/\|/g, '/').slice(0, 120)}` : (r.perViewer ?? []).map((v) => fmt(v.fps)).join(', ')} | ` +
      `${fmt(r.firstFrameMsMedian, 0)} / ${r.firstFrameMsMax ?? 'n/a'} | ${fmt(r.receiverCpuPct)} | ${fmt(r.xvfbAndMoverCpuPct)} | ${fmt(r.machineBusyPct)} | ${fmt(r.otherLoadPct)} | ${r.errors?.length ?? 0} |`);
  });
  L.push('');
  L.push('</details>');
  L.push('');
  const at = whereN(res);
  const row = res.summary.find((s) => s.n === at);
  if (row?.oriel?.threadGroups && row?.webrtcsink?.threadGroups) {
    L.push(`### Where the CPU goes, at ${at} receivers`);
    L.push('');
    L.push('Each server\'s CPU over the same window, split by thread name (numbers folded: `queue3:src` -> `queueN:src`). ' +
      'GStreamer names a streaming thread after the pad that starts it, and x264\'s worker threads inherit the name of the thread that creates them, ' +
      'so each encode is counted with the streaming thread that feeds it. Medians over the rounds; groups under 0.5 % in both are left out.');
    L.push('');
    L.push('| threads named | what runs there | oriel CPU % (threads) | webrtcsink CPU % (threads) |');
    L.push('|---|---|---:|---:|');
    const names = [...new Set([...row.oriel.threadGroups, ...row.webrtcsink.threadGroups].filter((g) => g.cpuPct >= 0.5).map((g) => g.name))];
    const cell = (sys, name) => {
      const g = row[sys].threadGroups.find((x) => x.name === name);
      return g ? `${fmt(g.cpuPct)} (${g.threads})` : '-';
    };
    for (const name of names) L.push(`| \`${name}\` | ${THREAD_ROLES[name] ?? ''} | ${cell('oriel', name)} | ${cell('webrtcsink', name)} |`);
    L.push(`| (all threads) | | ${fmt(row.oriel.cpuPct)} (${row.oriel.threads}) | ${fmt(row.webrtcsink.cpuPct)} (${row.webrtcsink.threads}) |`);
    L.push('');
  }
  L.push(...readingAndOddities(readingOf(res), res.notes));
  return L.join('\n');
}

/** One-line findings for the top of BENCHMARKS.md. */
export function headline(res) {
  const d = derive(res);
  const out = [];
  const by = Object.fromEntries(res.summary.map((s) => [s.n, s]));
  const n = d.largestFullRateN ?? d.largestComparedN;
  if (n && by[n]) {
    const fpsNote = n === d.largestFullRateN ? '' : ` (webrtcsink at ${fmt(by[n].webrtcsink.fpsMedian)} fps per receiver, oriel at ${fmt(by[n].oriel.fpsMedian)})`;
    out.push(`Side by side at ${n} receivers, same capture and x264 settings: gst-plugins-rs webrtcsink used ${fmt(by[n].cpuRatio)}x oriel's CPU ` +
      `(${fmt(by[n].webrtcsink.cpuPct)} vs ${fmt(by[n].oriel.cpuPct)} % of a core) and ${fmt(by[n].rssRatio, 2)}x its RSS${fpsNote} (part \`peer\`).`);
  }
  const starved = res.summary.find((s) => s.webrtcsink && s.webrtcsink.fpsMedian < fullRate(res));
  if (starved) {
    out.push(`webrtcsink fell below full rate at ${starved.n} receivers (${fmt(starved.webrtcsink.fpsMedian)} fps median per receiver), ` +
      `oriel held ${starved.oriel ? fmt(starved.oriel.fpsMedian) : 'n/a'} fps there (part \`peer\`).`);
  }
  if (d.webrtcsink.cpuPerReceiverPct !== null && d.oriel.cpuPerReceiverPct !== null) {
    out.push(`Per added receiver: webrtcsink +${fmt(d.webrtcsink.cpuPerReceiverPct)} % of a core (an x264 encode per consumer), oriel ${signed(d.oriel.cpuPerReceiverPct)} % (part \`peer\`).`);
  }
  return out;
}

function summaryText(res) {
  const L = [''];
  L.push(`oriel vs webrtcsink ${res.startedAt}  (${res.config.width}x${res.config.height}@${res.config.framerate}, ${res.config.bitrateKbps} kbit/s, gst-plugin-webrtc ${res.webrtcsink.crateVersion})`);
  L.push('    n   oriel%  wsink%  ratio   oriel MiB  wsink MiB  ratio   fps oriel min/med  fps wsink min/med');
  for (const s of res.summary) {
    const o = s.oriel;
    const w = s.webrtcsink;
    L.push(`${String(s.n).padStart(5)}  ${fmt(o?.cpuPct).padStart(7)}  ${fmt(w?.cpuPct).padStart(6)}  ${fmt(s.cpuRatio).padStart(5)}  ` +
      `${fmt(o?.rssMiB).padStart(9)}  ${fmt(w?.rssMiB).padStart(9)}  ${fmt(s.rssRatio, 2).padStart(5)}  ` +
      `${(o ? `${fmt(o.fpsMin)}/${fmt(o.fpsMedian)}` : 'n/a').padStart(17)}  ${(w ? `${fmt(w.fpsMin)}/${fmt(w.fpsMedian)}` : 'n/a').padStart(17)}`);
  }
  const d = derive(res);
  L.push(`per added receiver: webrtcsink ${fmt(d.webrtcsink.cpuPerReceiverPct)} % CPU, ${fmt(d.webrtcsink.rssPerReceiverMiB)} MiB; oriel ${fmt(d.oriel.cpuPerReceiverPct)} % CPU, ${fmt(d.oriel.rssPerReceiverMiB)} MiB`);
  for (const n of res.notes ?? []) L.push(`note: ${n}`);
  return L.join('\n');
}

function oddities(res) {
  const notes = [];
  if (res.agent && res.agent.build !== 'release') notes.push(`the oriel agent is a ${res.agent.build} build`);
  if (!res.display.covers) notes.push('the moving window does not cover the screen');
  for (const r of res.runs) {
    if (r.failed) notes.push(`${r.label}: failed (${r.failed.split('\n')[0]})`);
    else if (!r.serverAlive) notes.push(`${r.label}: the server died during the window`);
    if (r.errors?.length) notes.push(`${r.label}: ${r.errors.length} receiver error(s), e.g. \`${r.errors[0].replace(/`/g, "'").slice(0, 160)}\``);
    if (!r.failed && r.firstFrames < r.n) notes.push(`${r.label}: only ${r.firstFrames} of ${r.n} receivers had a first frame before the window`);
    const notConnected = (r.perViewer ?? []).filter((v) => v.state !== 'connected').length;
    if (notConnected) notes.push(`${r.label}: ${notConnected} receiver(s) not in state connected at the end of the window`);
  }
  const runsOf = (sys) => res.runs.filter((r) => r.system === sys);
  const serving = agentWarnings(runsOf('oriel').flatMap((r) => r.serverLog ?? []));
  if (serving.count) notes.push(`while serving: ${serving.note}`);
  const stopping = agentWarnings(runsOf('oriel').flatMap((r) => r.shutdownLog ?? []));
  if (stopping.count) notes.push(`when stopped (SIGTERM after the receivers had left), over ${runsOf('oriel').length} starts: ${stopping.note}`);
  // webrtcsink's internal appsink (async=false behind a clocksync) warns once
  // at every start; frames flow regardless (bench/webrtcsink/README.md).
  // The handshake error is this script's own readiness probe (a bare TCP
  // connect to the signalling port).
  const known = /Pipeline construction is invalid, please add queues|Error during the websocket handshake/;
  const wsWarn = res.runs.filter((r) => r.system === 'webrtcsink').flatMap((r) => r.serverWarnings ?? []).filter((l) => !known.test(l));
  if (wsWarn.length) notes.push(`webrtcsink-server logged ${wsWarn.length} WARN/ERROR/CRITICAL line(s) while serving, first: \`${wsWarn[0].replace(/`/g, "'").slice(0, 160)}\``);
  const wsStop = runsOf('webrtcsink').flatMap((r) => r.shutdownWarnings ?? []);
  if (wsStop.length) notes.push(`webrtcsink-server logged ${wsStop.length} WARN/ERROR/CRITICAL line(s) when stopped, first: \`${wsStop[0].replace(/`/g, "'").slice(0, 160)}\``);
  return notes;
}

// ---------------------------------------------------------------- main

async function main(res) {
  res.command = 'cd bench && node peer.mjs';
  res.config = {
    width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps,
    windowMs: CFG.windowMs, settleMs: CFG.settleMs, rounds: CFG.rounds, viewers: PEER.viewers,
    systems: PEER.systems, scene: CFG.scene,
  };
  res.minFps = PEER.minFps;
  res.machine = machineInfo();
  res.webrtcsink = {
    crateVersion: webrtcsinkCrate(),
    server: WS_BIN('webrtcsink-server'),
    receiver: WS_BIN('webrtcsink-receiver'),
    buildSec: res.webrtcsinkBuildSec ?? null,
  };
  if (PEER.systems.includes('oriel')) {
    res.agent = agentInfo();
    PEER.receiver = PEER.receiver || path.join(path.dirname(CFG.bin), 'examples', 'bench_receiver');
    if (!fs.existsSync(PEER.receiver)) {
      throw new Error(`oriel's bench_receiver is missing: ${PEER.receiver} (cargo build --release --examples, or set BENCH_RECEIVER)`);
    }
    res.orielReceiver = PEER.receiver;
  }
  log(`peer: systems ${PEER.systems.join(', ')}, receivers ${PEER.viewers.join(', ')}, ${CFG.rounds} round(s), ${res.machine.cores} cores, load ${res.machine.loadAvgAtStart.join(' ')}`);

  res.display = await startDisplay();
  log(`display ${res.display.display}, mover window ${JSON.stringify(res.display.geometry)}`);
  const { runs, collapsedAt } = await sideBySide(res.display.display);
  res.runs = runs;
  res.collapsedAt = collapsedAt;
  res.orielArgs = runs.find((r) => r.system === 'oriel')?.serverArgs ?? null;
  res.webrtcsinkArgs = runs.find((r) => r.system === 'webrtcsink')?.serverArgs ?? null;
  res.healthz = runs.find((r) => r.healthz)?.healthz ?? null;
  res.summary = summarize(runs);
  res.derived = derive(res); // kept in the JSON; render() derives again from the raw figures
  const orielLogs = children.filter((r) => r.name === 'oriel').flatMap((r) => r.log);
  res.agentLogFile = saveAgentLog(orielLogs, res.startedAt, 'peer');
  const wsLogs = children.filter((r) => r.name === 'webrtcsink-server').flatMap((r) => r.log);
  res.webrtcsinkLogFile = saveAgentLog(wsLogs, res.startedAt, 'peer-webrtcsink');
  res.notes = oddities(res);
  // The full logs are in the temp dir (agentLogFile); the JSON keeps the warnings.
  for (const r of runs) {
    delete r.serverLog;
    delete r.shutdownLog;
  }
  return summaryText(res);
}

if (isMain(import.meta.url)) {
  // Before the watchdog: the first build is long. A failed build fails the part.
  let buildSec;
  try {
    buildSec = buildWebrtcsink();
  } catch (e) {
    console.error(`bench peer failed: ${e.message}`);
    process.exit(1);
  }
  if (process.env.BENCH_TIMEOUT_MS === undefined) CFG.timeoutMs = 1800000;
  runPart('peer', async (res) => {
    res.webrtcsinkBuildSec = buildSec;
    return main(res);
  });
}
