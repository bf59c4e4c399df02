#!/usr/bin/env node
// oriel benchmark: what the agent costs per connected browser, and how long a
// browser waits for its first frame.
//
//   cd bench && ORIEL_BIN=/work/main/target/release/oriel node bench.mjs
//   (`make bench` runs exactly that)
//
// What it does, unattended (about 2.5 minutes on a 2-core machine):
//   1. Xvfb on a free display with a full-screen moving GStreamer test video:
//      scrolling SMPTE bars + a running clock (BENCH_SCENE=bars, the default),
//      which keeps x264 at its 4000 kbit/s. `pattern=ball` (BENCH_SCENE=ball)
//      also fills the screen with its window, but only a small ball moves on
//      black: the stream then needs ~0.2 Mbit/s and understates every cost.
//   2. The agent on it (`--capture x11`, 720p30, default bitrate).
//   3. Agent CPU (% of one core, /proc/PID/stat utime+stime over a window),
//      RSS and threads with 0, 1, 2, 4 Chromium clients, the sequence run up
//      then down (0 1 2 4 4 2 1 0), medians reported. Each client's decoded
//      frame rate over the same window is recorded.
//   4. Time to first frame (WebSocket open -> first presented frame): warm
//      joins while another client plays, and cold joins after idle stop.
//   5. Raw results to bench/results/<date>-clients.json, BENCHMARKS.md at the
//      repo root regenerated from them, a summary on stdout.
//
// `node bench.mjs --report results/<file>.json` only regenerates
// BENCHMARKS.md (and the summary) from an earlier results file.
//
// Every process it starts gets its own process group and is killed (group and
// all) on the way out, also on error, SIGINT/SIGTERM or the global watchdog.
//
// Knobs (environment): ORIEL_BIN, CHROMIUM, BENCH_WINDOW_MS (10000),
// BENCH_SETTLE_MS (3000), BENCH_ROUNDS (2), BENCH_CLIENTS ("0,1,2,4"),
// BENCH_WARM_JOINS (20), BENCH_COLD_JOINS (3), BENCH_SCENE (bars|ball),
// BENCH_NO_MARKDOWN=1 (experiments: leave BENCHMARKS.md and results/ alone, raw JSON
// goes to the temp dir), BENCH_TIMEOUT_MS (540000),
// BENCH_AGENT_ARGS (extra agent arguments, for experiments).

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(BENCH_DIR, '..');
const RESULTS_DIR = path.join(BENCH_DIR, 'results');
const MARKDOWN = path.join(REPO_ROOT, 'BENCHMARKS.md');

const envNum = (k, d) => (process.env[k] !== undefined && process.env[k] !== '' ? Number(process.env[k]) : d);

function defaultBin() {
  const rel = path.join(REPO_ROOT, 'target/release/oriel');
  return fs.existsSync(rel) ? rel : path.join(REPO_ROOT, 'target/debug/oriel');
}

const CFG = {
  bin: path.resolve(process.env.ORIEL_BIN || defaultBin()),
  chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  windowMs: envNum('BENCH_WINDOW_MS', 10000),
  settleMs: envNum('BENCH_SETTLE_MS', 3000),
  rounds: envNum('BENCH_ROUNDS', 2),
  clients: (process.env.BENCH_CLIENTS || '0,1,2,4').split(',').map(Number),
  warmJoins: envNum('BENCH_WARM_JOINS', 20),
  coldJoins: envNum('BENCH_COLD_JOINS', 3),
  scene: process.env.BENCH_SCENE || 'bars',
  width: 1280,
  height: 720,
  framerate: 30,
  bitrateKbps: 4000, // the agent's default; passed explicitly so the bench does not drift
  timeoutMs: envNum('BENCH_TIMEOUT_MS', 540000),
  // Extra agent arguments, for experiments (space-separated); recorded in the results.
  agentExtraArgs: (process.env.BENCH_AGENT_ARGS || '').split(/\s+/).filter(Boolean),
};

// Flags from FIELD-NOTES "Chromium under playwright-core".
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

async function waitFor(fn, timeoutMs, what, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      lastErr = undefined;
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      const seen = lastErr ? `error: ${lastErr.message}` : `last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${seen})`);
    }
    await sleep(intervalMs);
  }
}

// ------------------------------------------------------------------ stats

function quantile(xs, q) {
  // Nearest-rank: the smallest value with at least q of the samples at or below it.
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))];
}
function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
const round1 = (x) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10) / 10);
const fmt = (x, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));

// ------------------------------------------------------------ processes

const children = []; // {name, child, log[], exitCode, exited}
const tmpDirs = [];
let cleaningUp = null;

function childEnv(overrides = {}) {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('ORIEL_') || k.startsWith('BENCH_')) delete env[k];
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  env.NO_COLOR = '1';
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined || v === null) delete env[k];
    else env[k] = String(v);
  }
  return env;
}

function start(name, cmd, args, env) {
  const child = spawn(cmd, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const rec = { name, child, log: [], exitCode: undefined, listeners: [] };
  const push = (line) => {
    rec.log.push(line);
    if (rec.log.length > 3000) rec.log.splice(0, 1000);
    for (const l of rec.listeners) l(line);
  };
  for (const s of [child.stdout, child.stderr]) {
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    s.on('end', () => buf && push(buf));
  }
  rec.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      rec.exitCode = code ?? signal;
      push(`[${name} exited: code=${code} signal=${signal}]`);
      resolve();
    });
    child.on('error', (e) => {
      rec.exitCode = -1;
      push(`[${name} failed to start: ${e.message}]`);
      resolve();
    });
  });
  children.push(rec);
  return rec;
}

function waitForLine(rec, re, timeoutMs, what) {
  if (rec.log.some((l) => re.test(l))) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      rec.listeners = rec.listeners.filter((l) => l !== listener);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const listener = (line) => {
      if (re.test(line)) {
        clearTimeout(timer);
        rec.listeners = rec.listeners.filter((l) => l !== listener);
        resolve();
      } else if (/ exited: code=/.test(line) && line.startsWith(`[${rec.name}`)) {
        clearTimeout(timer);
        reject(new Error(`${rec.name} exited while waiting for ${what}`));
      }
    };
    rec.listeners.push(listener);
  });
}

function killGroup(pid, sig) {
  try {
    process.kill(-pid, sig);
  } catch {
    /* gone */
  }
}

async function stopChild(rec, graceMs = 3000) {
  const pid = rec.child.pid;
  if (!pid) return;
  if (rec.exitCode === undefined) {
    killGroup(pid, 'SIGTERM');
    await Promise.race([rec.exited, sleep(graceMs)]);
  }
  killGroup(pid, 'SIGKILL'); // the leader may be gone with children left in its group
}

/** Pids whose command line contains `needle` (used for our own Chromium profile dir only). */
function pidsWithArg(needle) {
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(needle)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

let browserCtx = null;
let browserDir = null;

async function cleanup() {
  if (cleaningUp) return cleaningUp;
  cleaningUp = (async () => {
    if (browserCtx) {
      await Promise.race([browserCtx.close().catch(() => {}), sleep(10000)]);
      browserCtx = null;
    }
    if (browserDir) {
      // Anything of our Chromium that outlived close(): identified by our own profile dir.
      for (const pid of pidsWithArg(`--user-data-dir=${browserDir}`)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    // Agent first, then the mover, then the X server.
    const order = (r) => (r.name === 'oriel' ? 0 : r.name === 'mover' ? 1 : 2);
    for (const r of [...children].sort((a, b) => order(a) - order(b))) await stopChild(r);
    for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
  })();
  return cleaningUp;
}

// Last resort: SIGKILL every group we started, synchronously.
process.on('exit', () => {
  for (const r of children) if (r.child.pid) killGroup(r.child.pid, 'SIGKILL');
  if (browserDir) {
    for (const pid of pidsWithArg(`--user-data-dir=${browserDir}`)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const d of tmpDirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`${sig}: cleaning up`);
    cleanup().finally(() => process.exit(128 + (os.constants.signals[sig] ?? 1)));
  });
}

// ---------------------------------------------------------- /proc probes

const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** utime+stime of a process (all its threads), in seconds. */
function procCpuSec(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state); utime is field 14, stime field 15.
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

function procStatus(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1]);
  return { rssKb: kb('VmRSS'), threads: kb('Threads') };
}

/** Whole-machine busy and total jiffies (all cores). */
function sysCpu() {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] || 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

function chromiumPids() {
  if (!browserDir) return [];
  const roots = new Set(pidsWithArg(`--user-data-dir=${browserDir}`));
  // Walk descendants: renderers are started by the zygote, which carries the dir.
  const all = new Set(roots);
  let grew = true;
  while (grew) {
    grew = false;
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d) || all.has(Number(d))) continue;
      try {
        const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
        if (all.has(ppid)) {
          all.add(Number(d));
          grew = true;
        }
      } catch {
        /* gone */
      }
    }
  }
  return [...all];
}

function pidsCpuSec(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      sum += procCpuSec(pid);
    } catch {
      /* gone */
    }
  }
  return sum;
}

// ------------------------------------------------------------- machine

function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

function machineInfo() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] ?? 'unknown';
  const memKb = Number((fs.readFileSync('/proc/meminfo', 'utf8').match(/^MemTotal:\s+(\d+)/m) || [])[1]);
  const gst = sh('gst-inspect-1.0', ['--version']);
  const gstVersion = gst ? (gst.match(/GStreamer\s+(\S+)/) || gst.match(/version\s+(\S+)/) || [])[1] : null;
  const osRelease = fs.existsSync('/etc/os-release')
    ? (fs.readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)"?/m) || [])[1]
    : null;
  return {
    cpuModel: model.trim(),
    cores: os.cpus().length,
    memoryGiB: round1(memKb / 1024 / 1024),
    kernel: os.release(),
    os: osRelease,
    gstreamer: gstVersion,
    chromium: sh(CFG.chromium, ['--version']),
    node: process.version,
    loadAvgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

function agentInfo() {
  if (!fs.existsSync(CFG.bin)) throw new Error(`agent binary missing: ${CFG.bin} (build it, or set ORIEL_BIN)`);
  const st = fs.statSync(CFG.bin);
  const kind = CFG.bin.includes('/release/') ? 'release' : CFG.bin.includes('/debug/') ? 'debug' : 'unknown';
  const head = sh('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = sh('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--', 'src', 'Cargo.toml', 'Cargo.lock']);
  return {
    bin: CFG.bin,
    build: kind,
    binModified: st.mtime.toISOString(),
    version: sh(CFG.bin, ['--version']),
    gitHead: head,
    srcUncommittedChanges: dirty ? dirty.split('\n').length : 0,
  };
}

// --------------------------------------------------------------- setup

function freeDisplay() {
  for (let i = 0; i < 300; i++) {
    const n = 300 + Math.floor(Math.random() * 600);
    if (!fs.existsSync(`/tmp/.X11-unix/X${n}`) && !fs.existsSync(`/tmp/.X${n}-lock`)) return n;
  }
  throw new Error('no free X display number');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function moverPipeline() {
  const caps = `video/x-raw,width=${CFG.width},height=${CFG.height},framerate=${CFG.framerate}/1`;
  if (CFG.scene === 'bars') {
    // Scrolling SMPTE bars with a clock: every pixel column changes every frame.
    return ['videotestsrc', 'pattern=smpte', 'horizontal-speed=8', 'is-live=true', '!', caps, '!',
      'timeoverlay', 'font-desc=Sans 48', '!', 'videoconvert', '!', 'ximagesink'];
  }
  return ['videotestsrc', 'pattern=ball', 'is-live=true', '!', caps, '!', 'videoconvert', '!', 'ximagesink'];
}

async function startDisplay() {
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const n = freeDisplay();
    const display = `:${n}`;
    const xvfb = start('Xvfb', 'Xvfb', [display, '-screen', '0', `${CFG.width}x${CFG.height}x24`, '-nolisten', 'tcp', '-noreset'], childEnv());
    try {
      await waitFor(() => {
        if (xvfb.exitCode !== undefined) throw new Error('Xvfb exited');
        return spawnSync('xdpyinfo', ['-display', display], { stdio: 'ignore' }).status === 0;
      }, 10000, `Xvfb ${display}`);
    } catch (e) {
      lastErr = e;
      await stopChild(xvfb);
      continue;
    }
    const mover = start('mover', 'gst-launch-1.0', moverPipeline(), childEnv({ DISPLAY: display }));
    // The mover's window must cover the whole screen, or the capture is mostly static.
    const geometry = await waitFor(() => {
      if (mover.exitCode !== undefined) throw new Error(`mover exited:\n${mover.log.join('\n')}`);
      const tree = sh('xwininfo', ['-display', display, '-root', '-tree']) || '';
      const m = tree.match(/"gst-launch-1\.0".*?(\d+)x(\d+)\+(-?\d+)\+(-?\d+)/);
      return m ? { width: +m[1], height: +m[2], x: +m[3], y: +m[4] } : null;
    }, 15000, 'the mover window');
    const covers = geometry.width >= CFG.width && geometry.height >= CFG.height && geometry.x <= 0 && geometry.y <= 0;
    if (!covers) log(`WARNING: mover window ${JSON.stringify(geometry)} does not cover the ${CFG.width}x${CFG.height} screen`);
    return { display, geometry, covers, pipeline: `gst-launch-1.0 ${moverPipeline().join(' ')}` };
  }
  throw lastErr;
}

class Agent {
  constructor(rec, port) {
    this.rec = rec;
    this.port = port;
    this.pid = rec.child.pid;
    this.url = `http://127.0.0.1:${port}/`;
  }
  get alive() {
    return this.rec.exitCode === undefined;
  }
  async healthz() {
    const res = await fetch(`${this.url}healthz`, { signal: AbortSignal.timeout(5000) });
    if (res.status !== 200) throw new Error(`/healthz answered ${res.status}`);
    return res.json();
  }
  async metrics() {
    const res = await fetch(`${this.url}metrics`, { signal: AbortSignal.timeout(5000) });
    const out = {};
    for (const line of (await res.text()).split('\n')) {
      const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/);
      if (m && !line.startsWith('#')) out[m[1] + (m[2] ?? '')] = Number(m[3]);
    }
    return out;
  }
  args() {
    return this.rec.child.spawnargs.slice(1);
  }
}

async function startAgent(display) {
  if (!fs.existsSync(CFG.bin)) throw new Error(`agent binary missing: ${CFG.bin} (build it, or set ORIEL_BIN)`);
  const port = await freePort();
  // Its own link secret and list; every bench client watches through one
  // shared viewer link (viewers may share links).
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-bench-state-'));
  tmpDirs.push(stateDir);
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--capture', 'x11', '--state-dir', stateDir,
    '--framerate', String(CFG.framerate), '--bitrate', String(CFG.bitrateKbps), ...CFG.agentExtraArgs];
  const rec = start('oriel', CFG.bin, args, childEnv({ DISPLAY: display, ORIEL_LOG: process.env.ORIEL_LOG }));
  await waitForLine(rec, /oriel: serving http:\/\//, 30000, 'the agent to serve');
  const agent = new Agent(rec, port);
  const link = spawnSync(CFG.bin, ['link', 'create', '--role', 'viewer', '--ttl', '2h', '--state-dir', stateDir, '--url', agent.url], { encoding: 'utf8' });
  if (link.status !== 0) throw new Error(`oriel link create failed: ${link.stderr}`);
  agent.viewerUrl = link.stdout.trim();
  return agent;
}

async function launchBrowser() {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    throw new Error('playwright-core is missing: run `npm ci` in bench/');
  }
  browserDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-bench-chromium-'));
  tmpDirs.push(browserDir);
  browserCtx = await chromium.launchPersistentContext(browserDir, {
    executablePath: CFG.chromium,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: CFG.width, height: CFG.height },
    // Our own signal handlers close the browser as part of the cleanup.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  // Receiver-side RTP counters the page hook does not expose (PLI/FIR/NACK sent,
  // packets lost, bytes): keep a handle on the page's RTCPeerConnection.
  await browserCtx.addInitScript(() => {
    const Orig = window.RTCPeerConnection;
    if (!Orig || window.__benchRtc) return;
    const pcs = [];
    window.RTCPeerConnection = class extends Orig {
      constructor(...args) {
        super(...args);
        pcs.push(this);
      }
    };
    window.__benchRtc = async () => {
      const pc = pcs[pcs.length - 1];
      if (!pc) return null;
      for (const x of (await pc.getStats()).values()) {
        if (x.type === 'inbound-rtp' && (x.kind ?? x.mediaType) === 'video') {
          return {
            bytesReceived: x.bytesReceived ?? 0, packetsReceived: x.packetsReceived ?? 0, packetsLost: x.packetsLost ?? 0,
            nackCount: x.nackCount ?? 0, pliCount: x.pliCount ?? 0, firCount: x.firCount ?? 0,
            framesDecoded: x.framesDecoded ?? 0, keyFramesDecoded: x.keyFramesDecoded ?? 0, framesDropped: x.framesDropped ?? 0,
          };
        }
      }
      return null;
    };
  });
  return browserCtx;
}

// ---------------------------------------------------------------- pages

const status = (page) => page.evaluate(() => window.oriel.status());
const rtcStats = (page) => page.evaluate(() => (window.__benchRtc ? window.__benchRtc() : null)).catch(() => null);

async function openClient(ctx, agent) {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.goto(agent.viewerUrl, { waitUntil: 'load', timeout: 20000 });
  return page;
}

async function waitPresented(page, timeoutMs = 20000) {
  return waitFor(async () => {
    const s = await status(page);
    return s.firstFrameSinceConnectMs !== null && s.framesDecoded > 0 ? s : null;
  }, timeoutMs, 'the page to present its first frame', 20);
}

async function closeClient(page) {
  // Say bye instead of letting the agent time the socket out.
  await page.evaluate(() => window.oriel.disconnect()).catch(() => {});
  await page.close().catch(() => {});
}

async function waitClients(agent, n, timeoutMs = 15000) {
  return waitFor(async () => {
    const h = await agent.healthz();
    return h.clients === n && h.peers === n ? h : null;
  }, timeoutMs, `/healthz clients=peers=${n}`, 100);
}

// --------------------------------------------------------- measurements

/** One measurement window with `pages` connected. */
async function measure(agent, pages, label) {
  const n = pages.length;
  if (n === 0) {
    await waitFor(async () => (await agent.healthz()).pipeline === 'stopped', 20000, 'idle stop (pipeline stopped)', 200);
  } else {
    await waitClients(agent, n);
  }
  await sleep(CFG.settleMs);
  if (!agent.alive) throw new Error('the agent died');
  const h0 = await agent.healthz();
  const m0 = await agent.metrics();
  const chrPids = chromiumPids();
  const helperPids = children.filter((r) => r.name !== 'oriel' && r.exitCode === undefined).map((r) => r.child.pid);

  const before = await Promise.all(pages.map(async (p) => ({ s: await status(p), rtc: await rtcStats(p), t: performance.now() })));
  const t0 = performance.now();
  const cpu0 = procCpuSec(agent.pid);
  const sys0 = sysCpu();
  const chr0 = pidsCpuSec(chrPids);
  const hlp0 = pidsCpuSec(helperPids);

  const samples = [];
  const end = t0 + CFG.windowMs;
  while (performance.now() < end - 5) {
    await sleep(Math.min(1000, Math.max(0, end - performance.now())));
    samples.push(procStatus(agent.pid));
  }
  const cpu1 = procCpuSec(agent.pid);
  const sys1 = sysCpu();
  const chr1 = pidsCpuSec(chrPids);
  const hlp1 = pidsCpuSec(helperPids);
  const t1 = performance.now();
  const after = await Promise.all(pages.map(async (p) => ({ s: await status(p), rtc: await rtcStats(p), t: performance.now() })));
  const h1 = await agent.healthz();
  const m1 = await agent.metrics();
  const md = (k) => (m1[k] ?? 0) - (m0[k] ?? 0);

  const dt = (t1 - t0) / 1000;
  const clients = pages.map((_, i) => {
    const a = before[i];
    const b = after[i];
    const sec = (b.t - a.t) / 1000;
    const rd = (k) => (a.rtc && b.rtc ? b.rtc[k] - a.rtc[k] : null);
    return {
      // From getStats() directly, so exact over the window (not the page's 250 ms poll).
      rtcDecodedFps: a.rtc && b.rtc ? round1(rd('framesDecoded') / sec) : null,
      receivedKbps: a.rtc && b.rtc ? Math.round((rd('bytesReceived') * 8) / sec / 1000) : null,
      packetsLost: rd('packetsLost'),
      nacksSent: rd('nackCount'),
      plisSent: rd('pliCount'),
      firsSent: rd('firCount'),
      keyFramesDecoded: rd('keyFramesDecoded'),
      decodedFps: round1((b.s.framesDecoded - a.s.framesDecoded) / sec),
      presentedFps: round1((b.s.framesPresented - a.s.framesPresented) / sec),
      droppedInWindow: (b.s.framesDropped ?? 0) - (a.s.framesDropped ?? 0),
      reconnected: b.s.connects !== a.s.connects,
      pcState: b.s.pcState,
      width: b.s.width,
      height: b.s.height,
    };
  });
  const r = {
    label,
    clients: n,
    windowSec: round1(dt),
    cpuPct: Math.round(((cpu1 - cpu0) / dt) * 1000) / 10,
    rssMiB: round1(median(samples.map((s) => s.rssKb)) / 1024),
    threads: median(samples.map((s) => s.threads)),
    machineBusyPct: round1(((sys1.busy - sys0.busy) / (sys1.total - sys0.total)) * os.cpus().length * 100),
    chromiumCpuPct: round1(((chr1 - chr0) / dt) * 100),
    xvfbAndMoverCpuPct: round1(((hlp1 - hlp0) / dt) * 100),
    // Keyframe traffic inside the window (steady state should need none).
    keyframesRequested: md('oriel_keyframes_requested_total'),
    keyframesForced: md('oriel_keyframes_forced_total'),
    pipelineBefore: h0.pipeline,
    pipelineAfter: h1.pipeline,
    healthz: h1,
    perClient: clients,
  };
  // Whatever else ran on the machine meanwhile (other people's builds and tests).
  // (Clamped at 0: the separate /proc reads are not exactly simultaneous.)
  r.otherLoadPct = round1(Math.max(0, r.machineBusyPct - r.cpuPct - r.chromiumCpuPct - r.xvfbAndMoverCpuPct));
  log(`${label}: ${n} client(s) cpu ${fmt(r.cpuPct)}% rss ${fmt(r.rssMiB)} MiB threads ${r.threads} ` +
    `fps [${clients.map((c) => fmt(c.decodedFps)).join(', ')}] kbps [${clients.map((c) => c.receivedKbps).join(', ')}] ` +
    `lost/nack/pli/fir/kf [${clients.map((c) => `${c.packetsLost}/${c.nacksSent}/${c.plisSent}/${c.firsSent}/${c.keyFramesDecoded}`).join(', ')}] machine ${fmt(r.machineBusyPct)}% (of ${os.cpus().length * 100}) ` +
    `kf req/forced ${r.keyframesRequested}/${r.keyframesForced} chromium ${fmt(r.chromiumCpuPct)}% xvfb+mover ${fmt(r.xvfbAndMoverCpuPct)}% other ${fmt(r.otherLoadPct)}% pipeline ${h1.pipeline}`);
  return r;
}

async function costByClients(ctx, agent) {
  const pages = [];
  const setCount = async (n) => {
    while (pages.length < n) {
      const p = await openClient(ctx, agent);
      pages.push(p);
      await waitPresented(p);
    }
    while (pages.length > n) await closeClient(pages.pop());
  };
  // Warm-up: one client plays briefly and leaves, so every 0-client window
  // (the first one too) is "after idle stop", and Chromium's first-run costs are paid.
  await setCount(1);
  await sleep(1000);
  await setCount(0);
  const runs = [];
  for (let r = 0; r < CFG.rounds; r++) {
    const seq = r % 2 === 0 ? CFG.clients : [...CFG.clients].reverse();
    for (const n of seq) {
      await setCount(n);
      runs.push({ round: r + 1, ...(await measure(agent, pages, `round ${r + 1}`)) });
    }
  }
  await setCount(0);
  const summary = CFG.clients.map((n) => {
    const rs = runs.filter((x) => x.clients === n);
    const fps = rs.flatMap((x) => x.perClient.map((c) => c.decodedFps));
    return {
      clients: n,
      runs: rs.length,
      cpuPct: round1(median(rs.map((x) => x.cpuPct))),
      cpuPctRuns: rs.map((x) => x.cpuPct),
      rssMiB: round1(median(rs.map((x) => x.rssMiB))),
      threads: median(rs.map((x) => x.threads)),
      minClientFps: fps.length ? Math.min(...fps) : null,
      medianClientFps: round1(median(fps)),
      medianClientKbps: median(rs.flatMap((x) => x.perClient.map((c) => c.receivedKbps))),
      plisPerClientPerSec: round1(median(rs.flatMap((x) => x.perClient.map((c) => (c.plisSent ?? NaN) / x.windowSec)))),
      keyframesForcedPerSec: round1(median(rs.map((x) => x.keyframesForced / x.windowSec))),
      machineBusyPct: round1(median(rs.map((x) => x.machineBusyPct))),
      otherLoadPct: round1(median(rs.map((x) => x.otherLoadPct))),
      chromiumCpuPct: round1(median(rs.map((x) => x.chromiumCpuPct))),
      pipeline: [...new Set(rs.map((x) => x.pipelineAfter))].join('/'),
    };
  });
  return { runs, summary };
}

async function timeToFirstFrame(ctx, agent) {
  const starts = async () => (await agent.metrics()).oriel_pipeline_starts_total;
  const KF = ['oriel_keyframes_requested_total', 'oriel_keyframes_forced_total', 'oriel_keyframes_coalesced_total'];
  const kf = async () => {
    const m = await agent.metrics();
    return KF.map((k) => m[k] ?? 0);
  };
  const kfDelta = (a, b) => ({ requested: b[0] - a[0], forced: b[1] - a[1], coalesced: b[2] - a[2] });
  const JOIN_TIMEOUT_MS = 10000;
  const MAX_FAILED = 3;

  /** One fresh page joins; a sample, or a failure record if no frame shows up in time. */
  const join = async () => {
    const k0 = await kf();
    const at = new Date().toISOString();
    const page = await openClient(ctx, agent);
    let sample;
    try {
      const s = await waitPresented(page, JOIN_TIMEOUT_MS);
      sample = { at, firstFrameSinceConnectMs: s.firstFrameSinceConnectMs, firstFrameSinceLoadMs: s.firstFrameSinceLoadMs };
    } catch (e) {
      const st = await status(page).catch(() => null);
      sample = { at, failed: true, error: e.message.split(' (last value')[0], statusAtTimeout: st };
      log(`join at ${at} FAILED: no frame within ${JOIN_TIMEOUT_MS} ms; page status ${JSON.stringify(st)}`);
    }
    sample.keyframes = kfDelta(k0, await kf());
    return { page, sample };
  };

  // Cold: nobody connected, pipeline stopped by idle stop, then one join.
  const cold = [];
  await waitClients(agent, 0);
  for (let i = 0; i < CFG.coldJoins; i++) {
    await waitFor(async () => (await agent.healthz()).pipeline === 'stopped', 20000, 'idle stop', 100);
    await sleep(300);
    const s0 = await starts();
    const { page, sample } = await join();
    sample.pipelineStarted = (await starts()) - s0 === 1;
    cold.push(sample);
    log(`cold join ${i + 1}: ${fmt(sample.firstFrameSinceConnectMs, 0)} ms after connect (pipeline started: ${sample.pipelineStarted})`);
    await closeClient(page);
    await waitClients(agent, 0);
    if (cold.filter((x) => x.failed).length >= MAX_FAILED) break;
  }

  // Warm: one client plays the whole time; fresh pages join and leave.
  const anchor = await openClient(ctx, agent);
  await waitPresented(anchor);
  await waitClients(agent, 1);
  await sleep(1000);
  const warm = [];
  const sw0 = await starts();
  for (let i = 0; i < CFG.warmJoins; i++) {
    const { page, sample } = await join();
    warm.push(sample);
    await closeClient(page);
    await waitClients(agent, 1);
    await sleep(200);
    if (warm.filter((x) => x.failed).length >= MAX_FAILED) {
      log(`warm joins: ${MAX_FAILED} failures, stopping early`);
      break;
    }
  }
  const sw1 = await starts();
  const anchorStatus = await status(anchor);
  log(`warm joins: ${warm.map((w) => (w.failed ? 'FAILED' : fmt(w.firstFrameSinceConnectMs, 0))).join(' ')} ms (pipeline restarts during: ${sw1 - sw0})`);
  await closeClient(anchor);

  const dist = (all, k) => {
    const xs = all.filter((x) => !x.failed).map((x) => x[k]);
    return {
      n: xs.length,
      failed: all.filter((x) => x.failed).length,
      p50: round1(quantile(xs, 0.5)),
      p95: round1(quantile(xs, 0.95)),
      max: round1(xs.length ? Math.max(...xs) : null),
      min: round1(xs.length ? Math.min(...xs) : null),
    };
  };
  return {
    warm: {
      samples: warm,
      sinceConnect: dist(warm, 'firstFrameSinceConnectMs'),
      sinceLoad: dist(warm, 'firstFrameSinceLoadMs'),
      pipelineRestartsDuring: sw1 - sw0,
      anchorReconnects: anchorStatus.connects - 1,
    },
    cold: {
      samples: cold,
      sinceConnect: dist(cold, 'firstFrameSinceConnectMs'),
      sinceLoad: dist(cold, 'firstFrameSinceLoadMs'),
      allStartedPipeline: cold.every((c) => c.pipelineStarted),
    },
  };
}

// -------------------------------------------------------------- report

function derive(res) {
  const by = Object.fromEntries(res.cost.summary.map((s) => [s.clients, s]));
  const c = (n) => by[n]?.cpuPct ?? null;
  const d = {};
  if (c(1) !== null && c(4) !== null) {
    d.marginalCpuPerClientPct = round1((c(4) - c(1)) / 3);
    d.marginalRssPerClientMiB = round1((by[4].rssMiB - by[1].rssMiB) / 3);
    d.marginalThreadsPerClient = round1((by[4].threads - by[1].threads) / 3);
  }
  if (c(0) !== null && c(1) !== null) d.firstClientCpuPct = round1(c(1) - c(0));
  const fps = res.cost.runs.flatMap((r) => r.perClient.map((p) => p.decodedFps));
  d.minClientFps = fps.length ? Math.min(...fps) : null;
  d.reconnectsDuringWindows = res.cost.runs.reduce((a, r) => a + r.perClient.filter((p) => p.reconnected).length, 0);
  d.maxMachineBusyPct = Math.max(...res.cost.runs.map((r) => r.machineBusyPct));
  d.maxOtherLoadPct = Math.max(...res.cost.runs.map((r) => r.otherLoadPct));
  d.medianOtherLoadPct = round1(median(res.cost.runs.map((r) => r.otherLoadPct)));
  if (res.ttff) {
    d.coldMinusWarmP50Ms = round1(res.ttff.cold.sinceConnect.p50 - res.ttff.warm.sinceConnect.p50);
  }
  return d;
}

function whatTheNumbersSay(res) {
  const d = res.derived;
  const by = Object.fromEntries(res.cost.summary.map((s) => [s.clients, s]));
  const cores = res.machine.cores;
  const out = [];
  if (by[0] && by[1]) {
    out.push(`With nobody watching the agent idles at ${fmt(by[0].cpuPct)} % of a core ` +
      `(pipeline ${by[0].pipeline} after the idle stop), ${fmt(by[0].rssMiB)} MiB RSS, ${by[0].threads} threads. ` +
      `The first client costs ${fmt(d.firstClientCpuPct)} points of a core (${fmt(by[1].cpuPct)} % in total): ` +
      `mostly capture + colour conversion + the one x264 encode that every client shares, plus this client's own branch.`);
  }
  if (d.marginalCpuPerClientPct !== null && d.marginalCpuPerClientPct !== undefined) {
    const enc = d.firstClientCpuPct;
    const ratio = enc && d.marginalCpuPerClientPct > 0 ? enc / d.marginalCpuPerClientPct : null;
    out.push(`Each further client adds about ${fmt(d.marginalCpuPerClientPct)} % of a core ` +
      `((cpu4 - cpu1) / 3 = (${fmt(by[4].cpuPct)} - ${fmt(by[1].cpuPct)}) / 3), ${fmt(d.marginalRssPerClientMiB)} MiB and ` +
      `${fmt(d.marginalThreadsPerClient)} threads` +
      (ratio ? `: the shared encode costs about ${fmt(ratio, 0)}x what one more viewer does.` : '.'));
  }
  if (d.minClientFps !== null) {
    out.push(d.minClientFps >= res.config.framerate * 0.9
      ? `Every client decoded at least ${fmt(d.minClientFps)} fps in every window (target ${res.config.framerate}), so the cost figures are for full-rate delivery.`
      : `The slowest client decoded only ${fmt(d.minClientFps)} fps in some window (target ${res.config.framerate}): ` +
        `with ${cores} cores shared by the agent and every Chromium decoder, the heavier rows are partly CPU-starved; read them as lower bounds.`);
  }
  const withClients = res.cost.runs.filter((r) => r.clients > 0);
  const storm = withClients.filter((r) => r.keyframesForced / r.windowSec >= 0.5);
  if (storm.length) {
    const quiet = withClients.filter((r) => !storm.includes(r));
    const rates = storm.map((r) => r.keyframesForced / r.windowSec);
    const sum = (k) => storm.reduce((a, r) => a + r.perClient.reduce((b, c) => b + (c[k] ?? 0), 0), 0);
    const plis = storm.flatMap((r) => r.perClient.map((c) => (c.plisSent ?? NaN) / r.windowSec));
    const lo = Math.min(...rates);
    const hi = Math.max(...rates);
    out.push(`Keyframes: in ${storm.length} of ${withClients.length} windows with clients the agent forced ${fmt(lo)}${hi - lo >= 0.05 ? `-${fmt(hi)}` : ''} keyframes per second ` +
      `while every client sent about ${fmt(median(plis))} PLI/s, with ${sum('packetsLost')} packets lost and ${sum('nacksSent')} NACKs in those windows` +
      (quiet.length ? `; the other ${quiet.length} window(s) (${quiet.map((r) => `${r.clients} client${r.clients > 1 ? 's' : ''}, ${r.label}`).join('; ')}) had none` : '') +
      `. A steady stream without loss should need no keyframe at all: this looks like a request loop (each keyframe answered by a PLI, the next keyframe deferred by the coalescing interval). ` +
      `It costs bitrate and encode time, and the CPU figures above include it.`);
  }
  if (d.maxOtherLoadPct > 20 || d.maxMachineBusyPct > cores * 100 * 0.8) {
    out.push(`The machine was not quiet: up to ${fmt(d.maxMachineBusyPct)} % of ${cores * 100} % busy in a window, of which Chromium took ` +
      `${fmt(by[4]?.chromiumCpuPct)} % with 4 clients and unrelated processes up to ${fmt(d.maxOtherLoadPct)} % (median ${fmt(d.medianOtherLoadPct)} %). ` +
      `The agent figure is its own CPU time, so other load does not add to it, but contention for ${cores} cores can inflate it and cost frames; compare runs with care.`);
  }
  if (res.ttff && res.ttff.warm.sinceConnect.n && res.ttff.cold.sinceConnect.n) {
    const w = res.ttff.warm.sinceConnect;
    const c = res.ttff.cold.sinceConnect;
    const avg = (xs, k) => (xs.length ? xs.reduce((a, x) => a + (x.keyframes?.[k] ?? 0), 0) / xs.length : null);
    const head = `A browser joining a stream that is already running sees its first frame ${fmt(w.p50, 0)} ms (p50; p95 ${fmt(w.p95, 0)}, max ${fmt(w.max, 0)}) ` +
      `after its WebSocket opens; with the pipeline cold (first join after the idle stop) ${fmt(c.p50, 0)} ms (p50 of ${c.n}).`;
    if (d.coldMinusWarmP50Ms >= 0) {
      out.push(`${head} The cold start costs ${fmt(d.coldMinusWarmP50Ms, 0)} ms more: the price of starting capture and encoder on demand.`);
    } else {
      const kfArg = res.agentArgs.indexOf('--keyframe-interval-ms');
      const interval = kfArg >= 0 ? `${res.agentArgs[kfArg + 1]} ms` : 'the default 500 ms';
      out.push(`${head} The warm join is the slower one, by ${fmt(-d.coldMinusWarmP50Ms, 0)} ms: a cold start begins with the encoder's own keyframe, ` +
        `while each warm join caused on average ${fmt(avg(res.ttff.warm.samples, 'requested'))} keyframe requests and ` +
        `${fmt(avg(res.ttff.warm.samples, 'forced'))} forced keyframes (cold: ${fmt(avg(res.ttff.cold.samples, 'requested'))} / ${fmt(avg(res.ttff.cold.samples, 'forced'))}). ` +
        `That fits the keyframe forced at \`connected\` not being usable by the new browser, whose own request (PLI) is then deferred ` +
        `by the coalescing window (\`--keyframe-interval-ms\`, here ${interval}).`);
    }
  }
  return out.map((x) => `- ${x}`).join('\n');
}

function markdown(res, jsonRel) {
  const m = res.machine;
  const a = res.agent;
  const L = [];
  L.push('# Benchmarks');
  L.push('');
  L.push('> **Generated file.** Written by `bench/bench.mjs` from its last run; a new run overwrites it entirely. ' +
    'Edit the generator, not this file.');
  L.push('');
  L.push(`Run: ${res.startedAt} (${res.durationSec} s). Raw results: [\`${jsonRel}\`](${jsonRel}).`);
  L.push('');
  L.push('```sh');
  L.push(res.command);
  L.push('```');
  L.push('');
  L.push('To rewrite this file from a results file without measuring again: `cd bench && node bench.mjs --report results/<file>.json`. ' +
    'Knobs (scene, window, rounds, joins) are listed at the top of `bench/bench.mjs`.');
  L.push('');
  L.push('## Machine and build');
  L.push('');
  L.push('| | |');
  L.push('|---|---|');
  L.push(`| CPU | ${m.cpuModel}, ${m.cores} cores |`);
  L.push(`| memory | ${m.memoryGiB} GiB |`);
  L.push(`| OS | ${m.os ?? '?'}, kernel ${m.kernel} |`);
  L.push(`| GStreamer | ${m.gstreamer} |`);
  L.push(`| Chromium | ${m.chromium} (headless, playwright-core, one page per client) |`);
  L.push(`| agent | \`${path.relative(REPO_ROOT, a.bin) || a.bin}\` (**${a.build}** build, ${a.version ?? '?'}, binary of ${a.binModified}; tree at ${a.gitHead}${a.srcUncommittedChanges ? ` + ${a.srcUncommittedChanges} uncommitted file(s) under src/` : ''}) |`);
  L.push(`| agent command | \`DISPLAY=${res.display.display} oriel ${res.agentArgs.join(' ')}\` |`);
  L.push(`| encoder | ${res.healthz?.encoder ?? '?'} (from /healthz), capture ${res.healthz?.capture ?? '?'} |`);
  L.push(`| stream | ${res.config.width}x${res.config.height} @ ${res.config.framerate} fps, ${res.config.bitrateKbps} kbit/s |`);
  L.push(`| screen content | Xvfb ${res.config.width}x${res.config.height}x24; \`${res.display.pipeline}\` (window ${res.display.geometry.width}x${res.display.geometry.height}+${res.display.geometry.x}+${res.display.geometry.y}, ${res.display.covers ? 'covers the screen' : '**does not cover the screen**'}) |`);
  L.push(`| scene | \`${res.config.scene}\`${res.config.scene === 'bars'
    ? ': scrolling SMPTE bars (with a noise patch) and a clock, every frame changes across the screen and x264 uses its whole bitrate. `pattern=ball` (`BENCH_SCENE=ball`) also gets a full-screen window, but only a small ball moves on black: ~0.2 Mbit/s, and every cost comes out lower'
    : res.config.scene === 'ball' ? ': a small ball moving on black; the encoder needs only ~0.2 Mbit/s of the 4000, so costs are understated (`BENCH_SCENE=bars` is the default)' : ''} |`);
  L.push(`| load average at start | ${m.loadAvgAtStart.join(' ')} |`);
  L.push('');
  if (a.build !== 'release') {
    L.push(`**Note:** this run used a **${a.build}** build of the agent; CPU figures of a release build are lower.`);
    L.push('');
  }
  L.push('## Agent cost by number of clients');
  L.push('');
  L.push(`Agent process only (all threads): CPU = utime+stime delta from \`/proc/PID/stat\` over a ${CFG.windowMs / 1000} s window ` +
    `after ${CFG.settleMs / 1000} s of settling, in % of one core; RSS = median \`VmRSS\` sampled every second; threads from \`/proc/PID/status\`. ` +
    `Sequence ${res.cost.runs.map((r) => r.clients).join(' → ')} (${CFG.rounds} rounds, up then down); medians over the rounds. ` +
    `The 0-client rows are taken after the idle stop. "client fps" is each page's \`framesDecoded\` rate (\`window.oriel.status()\`) over the same window; ` +
    `kbit/s, packets lost, NACK and PLI counts come from the page's own \`RTCPeerConnection.getStats()\` (inbound-rtp video; the bench keeps a handle on it through an init script), ` +
    `"keyframes forced" from the agent's \`oriel_keyframes_forced_total\`. ` +
    `Chromium's CPU (all its processes), Xvfb + the moving test video, the whole machine's busy time and the rest ` +
    `("other load" = machine busy - agent - Chromium - Xvfb/mover: other people's builds and tests) are shown for context only; none of them is in the agent's figure.`);
  L.push('');
  L.push('| clients | agent CPU % (median) | per round | RSS MiB | threads | client fps min / median | kbit/s per client | PLI/s per client | keyframes forced/s | pipeline | Chromium CPU % | machine busy % (of ' + m.cores * 100 + ') | other load % |');
  L.push('|---:|---:|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|');
  for (const s of res.cost.summary) {
    L.push(`| ${s.clients} | **${fmt(s.cpuPct)}** | ${s.cpuPctRuns.map((x) => fmt(x)).join(', ')} | ${fmt(s.rssMiB)} | ${s.threads} | ` +
      `${s.clients ? `${fmt(s.minClientFps)} / ${fmt(s.medianClientFps)}` : '-'} | ${s.clients ? fmt(s.medianClientKbps, 0) : '-'} | ` +
      `${s.clients ? fmt(s.plisPerClientPerSec) : '-'} | ${fmt(s.keyframesForcedPerSec)} | ${s.pipeline} | ${fmt(s.chromiumCpuPct)} | ${fmt(s.machineBusyPct)} | ${fmt(s.otherLoadPct)} |`);
  }
  L.push('');
  L.push('<details><summary>Every window</summary>');
  L.push('');
  L.push('| # | round | clients | agent CPU % | RSS MiB | threads | fps per client (decoded) | presented fps per client | kbit/s per client | lost / NACK / PLI / keyframes per client | keyframes forced | Chromium CPU % | Xvfb + mover CPU % | machine busy % | other load % |');
  L.push('|---:|---:|---:|---:|---:|---:|---|---|---|---|---:|---:|---:|---:|---:|');
  res.cost.runs.forEach((r, i) => {
    L.push(`| ${i + 1} | ${r.round} | ${r.clients} | ${fmt(r.cpuPct)} | ${fmt(r.rssMiB)} | ${r.threads} | ` +
      `${r.perClient.map((c) => fmt(c.decodedFps)).join(', ') || '-'} | ${r.perClient.map((c) => fmt(c.presentedFps)).join(', ') || '-'} | ` +
      `${r.perClient.map((c) => c.receivedKbps ?? 'n/a').join(', ') || '-'} | ` +
      `${r.perClient.map((c) => `${c.packetsLost ?? '?'}/${c.nacksSent ?? '?'}/${c.plisSent ?? '?'}/${c.keyFramesDecoded ?? '?'}`).join(', ') || '-'} | ` +
      `${r.keyframesForced ?? 'n/a'} | ${fmt(r.chromiumCpuPct)} | ${fmt(r.xvfbAndMoverCpuPct)} | ${fmt(r.machineBusyPct)} | ${fmt(Math.max(0, r.otherLoadPct))} |`);
  });
  L.push('');
  L.push('</details>');
  L.push('');
  if (res.ttff) {
    const t = res.ttff;
    L.push('## Time to first frame');
    L.push('');
    L.push('`firstFrameSinceConnectMs` from `window.oriel.status()`: WebSocket open to the first presented frame ' +
      '(`requestVideoFrameCallback`). Warm: a fresh page joins while another client is already playing, then leaves. ' +
      'Cold: the first join after the idle stop (no client before; the join starts capture and encoder). ' +
      '"since load" is the same first frame measured from the page load, for reference. Nearest-rank percentiles.');
    L.push('');
    L.push('| case | joins with a frame | failed (no frame in 10 s) | p50 ms | p95 ms | max ms | min ms | since load p50 ms | keyframes requested / forced per join (mean) |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
    const avg = (xs, k) => (xs.length ? xs.reduce((a, x) => a + (x.keyframes?.[k] ?? 0), 0) / xs.length : null);
    for (const [name, x] of [['warm (one client already playing)', t.warm], ['cold (after idle stop)', t.cold]]) {
      L.push(`| ${name} | ${x.sinceConnect.n} | ${x.sinceConnect.failed ? `**${x.sinceConnect.failed}**` : 0} | **${fmt(x.sinceConnect.p50, 0)}** | ${fmt(x.sinceConnect.p95, 0)} | ${fmt(x.sinceConnect.max, 0)} | ${fmt(x.sinceConnect.min, 0)} | ${fmt(x.sinceLoad.p50, 0)} | ` +
        `${fmt(avg(x.samples, 'requested'))} / ${fmt(avg(x.samples, 'forced'))} |`);
    }
    L.push('');
    const seq = (xs) => xs.map((w) => (w.failed ? `**failed** (${w.at})` : fmt(w.firstFrameSinceConnectMs, 0))).join(', ');
    L.push(`Warm joins, in order (ms): ${seq(t.warm.samples)}. Cold: ${seq(t.cold.samples)}.`);
    L.push('');
    L.push(`Checks: every cold join started the pipeline: ${t.cold.allStartedPipeline ? 'yes' : '**no**'}; ` +
      `pipeline restarts during the warm joins: ${t.warm.pipelineRestartsDuring}; reconnects of the playing client: ${t.warm.anchorReconnects}.`);
    L.push('');
  }
  L.push('## What the numbers say');
  L.push('');
  L.push(whatTheNumbersSay(res));
  L.push('');
  if (res.notes?.length) {
    L.push('## Oddities seen in this run');
    L.push('');
    for (const n of res.notes) L.push(`- ${n}`);
    L.push('');
  }
  return L.join('\n');
}

function summaryText(res) {
  const L = [];
  L.push('');
  L.push(`oriel bench ${res.startedAt}  (${res.agent.build} build, ${res.healthz?.encoder ?? '?'}, ${res.config.width}x${res.config.height}@${res.config.framerate}, ${res.config.bitrateKbps} kbit/s)`);
  L.push('clients  agentCPU%  (runs)          RSS MiB  threads  fps min/med   chromium%  machine%  other%');
  for (const s of res.cost.summary) {
    L.push(`${String(s.clients).padStart(7)}  ${fmt(s.cpuPct).padStart(9)}  ${('(' + s.cpuPctRuns.map((x) => fmt(x)).join(', ') + ')').padEnd(14)}  ` +
      `${fmt(s.rssMiB).padStart(7)}  ${String(s.threads).padStart(7)}  ${(s.clients ? `${fmt(s.minClientFps)}/${fmt(s.medianClientFps)}` : '-').padStart(11)}  ` +
      `${fmt(s.chromiumCpuPct).padStart(9)}  ${fmt(s.machineBusyPct).padStart(8)}  ${fmt(s.otherLoadPct).padStart(6)}`);
  }
  const d = res.derived;
  L.push(`marginal per added client: ${fmt(d.marginalCpuPerClientPct)} % CPU, ${fmt(d.marginalRssPerClientMiB)} MiB, ${fmt(d.marginalThreadsPerClient)} threads; first client ${fmt(d.firstClientCpuPct)} %`);
  if (res.ttff) {
    for (const [k, x] of [['warm', res.ttff.warm], ['cold', res.ttff.cold]]) {
      L.push(`time to first frame ${k} (n=${x.sinceConnect.n}, failed ${x.sinceConnect.failed}): p50 ${fmt(x.sinceConnect.p50, 0)} ms  p95 ${fmt(x.sinceConnect.p95, 0)} ms  max ${fmt(x.sinceConnect.max, 0)} ms`);
    }
  }
  for (const n of res.notes ?? []) L.push(`note: ${n}`);
  return L.join('\n');
}

function writeReport(res, jsonPath) {
  const rel = path.relative(REPO_ROOT, jsonPath);
  if (process.env.BENCH_NO_MARKDOWN !== '1') {
    fs.writeFileSync(MARKDOWN, markdown(res, rel) + '\n');
    log(`wrote ${path.relative(process.cwd(), MARKDOWN) || MARKDOWN}`);
  }
  console.log(summaryText(res));
}

function oddities(res, agentLog) {
  const notes = [];
  if (res.agent.build !== 'release') notes.push(`agent is a ${res.agent.build} build`);
  if (!res.display.covers) notes.push('the moving window does not cover the screen');
  const d = res.derived;
  if (d.reconnectsDuringWindows) notes.push(`${d.reconnectsDuringWindows} client reconnect(s) during measurement windows`);
  for (const r of res.cost.runs) {
    if (r.clients === 0 && r.pipelineAfter !== 'stopped') notes.push(`0-client window ${r.label}: pipeline ${r.pipelineAfter}`);
    if (r.clients > 0 && r.pipelineAfter !== 'playing') notes.push(`${r.clients}-client window ${r.label}: pipeline ${r.pipelineAfter}`);
  }
  const kfWindows = res.cost.runs.filter((r) => r.clients > 0 && r.keyframesForced / r.windowSec >= 0.5);
  if (kfWindows.length) notes.push(`steady-state keyframe loop: ${kfWindows.length} window(s) with >= 0.5 forced keyframes/s and PLIs from every client without packet loss`);
  if (res.ttff) {
    for (const [k, x] of [['warm', res.ttff.warm], ['cold', res.ttff.cold]]) {
      const f = x.samples.filter((w) => w.failed);
      if (f.length) notes.push(`${f.length} ${k} join(s) got no frame within 10 s (at ${f.map((w) => w.at).join(', ')}); page status then: ${JSON.stringify(f[0].statusAtTimeout)}`);
    }
  }
  if (res.ttff && !res.ttff.cold.allStartedPipeline) notes.push('a cold join did not start the pipeline exactly once');
  const bad = agentLog.filter((l) => /\b(ERROR|WARN|CRITICAL)\b/.test(l));
  if (bad.length) {
    res.agentWarnings = bad.slice(0, 50);
    const kinds = {};
    for (const l of bad) {
      const k = l.replace(/^.*?\b(ERROR|WARN|CRITICAL)\b/, '$1').replace(/\d{2}:\d{2}:\d{2}\.\d+:?\s*/, '').slice(0, 140);
      kinds[k] = (kinds[k] ?? 0) + 1;
    }
    const top = Object.entries(kinds).sort((a, b) => b[1] - a[1]).slice(0, 3);
    notes.push(`agent logged ${bad.length} WARN/ERROR/CRITICAL line(s): ${top.map(([k, n]) => `${n}x \`${k.replace(/`/g, "'")}\``).join('; ')}`);
  }
  return notes;
}

// ---------------------------------------------------------------- main

/** The agent's whole log, kept outside the repo for a look after the run. */
function saveAgentLog(lines, startedAt) {
  const file = path.join(os.tmpdir(), `oriel-bench-${startedAt.replace(/[:.]/g, '-')}-agent.log`);
  try {
    fs.writeFileSync(file, lines.join('\n') + '\n');
    return file;
  } catch {
    return null;
  }
}

async function main() {
  const ri = process.argv.indexOf('--report');
  if (ri >= 0) {
    const file = path.resolve(process.argv[ri + 1]);
    const res = JSON.parse(fs.readFileSync(file, 'utf8'));
    writeReport(res, file);
    return;
  }

  const t0 = Date.now();
  const startedAt = new Date().toISOString();
  const watchdog = setTimeout(() => {
    log(`watchdog: over ${CFG.timeoutMs / 1000} s, giving up`);
    cleanup().finally(() => process.exit(2));
  }, CFG.timeoutMs);
  watchdog.unref();

  const res = {
    startedAt,
    command: `cd bench && ORIEL_BIN=${CFG.bin} node bench.mjs`,
    config: {
      width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps,
      windowMs: CFG.windowMs, settleMs: CFG.settleMs, rounds: CFG.rounds, clients: CFG.clients,
      warmJoins: CFG.warmJoins, coldJoins: CFG.coldJoins, scene: CFG.scene,
    },
    machine: machineInfo(),
    agent: agentInfo(),
  };
  log(`agent ${res.agent.bin} (${res.agent.build}), ${res.machine.cores} cores, load ${res.machine.loadAvgAtStart.join(' ')}`);

  res.display = await startDisplay();
  log(`display ${res.display.display}, mover window ${JSON.stringify(res.display.geometry)}`);
  const agent = await startAgent(res.display.display);
  res.agentArgs = agent.args();
  res.healthz = await agent.healthz();
  log(`agent pid ${agent.pid} on ${agent.url}: ${JSON.stringify(res.healthz)}`);

  const ctx = await launchBrowser();
  res.cost = await costByClients(ctx, agent);
  res.ttff = await timeToFirstFrame(ctx, agent);
  res.metricsAtEnd = await agent.metrics();
  if (!agent.alive) throw new Error('the agent died during the run');
  const agentLog = [...agent.rec.log];
  res.agentLogFile = saveAgentLog(agent.rec.log, startedAt);

  await cleanup();
  res.durationSec = Math.round((Date.now() - t0) / 1000);
  res.derived = derive(res);
  res.notes = oddities(res, agentLog);

  let jsonPath;
  if (process.env.BENCH_NO_MARKDOWN === '1') {
    // Experiments: raw results go to a temporary file, the committed ones stay.
    jsonPath = path.join(os.tmpdir(), `oriel-bench-${startedAt.replace(/[:.]/g, '-')}-clients.json`);
  } else {
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    jsonPath = path.join(RESULTS_DIR, `${startedAt.slice(0, 10)}-clients.json`);
  }
  fs.writeFileSync(jsonPath, JSON.stringify(res, null, 2) + '\n');
  log(`wrote ${jsonPath}`);
  writeReport(res, jsonPath);
}

main().then(
  async () => {
    await cleanup();
    process.exit(0);
  },
  async (e) => {
    console.error(`bench failed: ${e?.stack ?? e}`);
    const agentRec = children.find((r) => r.name === 'oriel');
    if (agentRec) console.error(`agent log: ${saveAgentLog(agentRec.log, new Date().toISOString())}`);
    for (const r of children) {
      if (!r.log.length) continue;
      console.error(`----- ${r.name} (last 40 lines) -----\n${r.log.slice(-40).join('\n')}`);
    }
    await cleanup();
    process.exit(1);
  },
);
