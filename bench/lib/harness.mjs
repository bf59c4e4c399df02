// Shared parts of every oriel benchmark: child processes in their own
// process groups (killed on any exit), /proc probes, machine facts, an Xvfb
// with moving content, the agent, Chromium via playwright-core, page helpers.
// Each part script (bench/*.mjs) is its own node process and sets CFG fields
// before it starts anything.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const REPO_ROOT = path.resolve(BENCH_DIR, '..');
export const RESULTS_DIR = path.join(BENCH_DIR, 'results');
export const MARKDOWN = path.join(REPO_ROOT, 'BENCHMARKS.md');

export const envNum = (k, d) => (process.env[k] !== undefined && process.env[k] !== '' ? Number(process.env[k]) : d);

export function defaultBin() {
  const rel = path.join(REPO_ROOT, 'target/release/oriel');
  return fs.existsSync(rel) ? rel : path.join(REPO_ROOT, 'target/debug/oriel');
}

export const CFG = {
  bin: path.resolve(process.env.ORIEL_BIN || defaultBin()),
  chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  windowMs: envNum('BENCH_WINDOW_MS', 10000),
  settleMs: envNum('BENCH_SETTLE_MS', 3000),
  // How long a joining viewer may take to its first frame (churn under Valgrind stretches it).
  firstFrameMs: 30000,
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
  // The slow-machine case on any machine: the agents (oriel, and Selkies
  // where a part runs it) pinned to these CPUs with taskset, e.g. "0"; the
  // browser and the harness stay free. Parts that honour it save their
  // results under `<part>-taskset`.
  taskset: process.env.BENCH_TASKSET || null,
};

/** The command prefix that pins an agent (CFG.taskset), or none. */
export const pinned = () => (CFG.taskset ? ['taskset', '-c', CFG.taskset] : []);

// Flags from FIELD-NOTES "Chromium under playwright-core".
export const CHROMIUM_ARGS = [
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

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const log = (...a) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a);

export async function waitFor(fn, timeoutMs, what, intervalMs = 100) {
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

export function quantile(xs, q) {
  // Nearest-rank: the smallest value with at least q of the samples at or below it.
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))];
}
export function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
export const round1 = (x) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10) / 10);
export const fmt = (x, d = 1) => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));

// ------------------------------------------------------------ processes

export const children = []; // {name, child, log[], exitCode, exited}
export const tmpDirs = [];
let cleaningUp = null;

export function childEnv(overrides = {}) {
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

export function start(name, cmd, args, env) {
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

export function waitForLine(rec, re, timeoutMs, what) {
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

export function killGroup(pid, sig) {
  try {
    process.kill(-pid, sig);
  } catch {
    /* gone */
  }
}

export async function stopChild(rec, graceMs = 3000) {
  const pid = rec.child.pid;
  if (!pid) return;
  if (rec.exitCode === undefined) {
    killGroup(pid, 'SIGTERM');
    await Promise.race([rec.exited, sleep(graceMs)]);
  }
  killGroup(pid, 'SIGKILL'); // the leader may be gone with children left in its group
}

/** Pids whose command line contains `needle` (used for our own Chromium profile dir only). */
export function pidsWithArg(needle) {
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

export let browserCtx = null;
export let browserDir = null;

export async function cleanup() {
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

export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** utime+stime of a process (all its threads), in seconds. */
export function procCpuSec(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state); utime is field 14, stime field 15.
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

export function procStatus(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1]);
  return { rssKb: kb('VmRSS'), threads: kb('Threads') };
}

/** Whole-machine busy and total jiffies (all cores). */
export function sysCpu() {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = v[3] + (v[4] || 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

export function chromiumPids() {
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

export function pidsCpuSec(pids) {
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

export function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 15000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

export function machineInfo() {
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

export function agentInfo() {
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

export function freeDisplay() {
  for (let i = 0; i < 300; i++) {
    const n = 300 + Math.floor(Math.random() * 600);
    if (!fs.existsSync(`/tmp/.X11-unix/X${n}`) && !fs.existsSync(`/tmp/.X${n}-lock`)) return n;
  }
  throw new Error('no free X display number');
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function moverPipeline() {
  const caps = `video/x-raw,width=${CFG.width},height=${CFG.height},framerate=${CFG.framerate}/1`;
  if (CFG.scene === 'bars') {
    // Scrolling SMPTE bars with a clock: every pixel column changes every frame.
    return ['videotestsrc', 'pattern=smpte', 'horizontal-speed=8', 'is-live=true', '!', caps, '!',
      'timeoverlay', 'font-desc=Sans 48', '!', 'videoconvert', '!', 'ximagesink'];
  }
  return ['videotestsrc', 'pattern=ball', 'is-live=true', '!', caps, '!', 'videoconvert', '!', 'ximagesink'];
}

/**
 * Xvfb with the moving scene on a free display number (or on `display`, to
 * bring a display back after it was killed). `recs` are its processes.
 */
/**
 * A bare Xvfb at the configured size: nothing moving, the pointer parked in
 * the bottom-right corner. Returns {display, xvfb}.
 */
export async function startBareDisplay() {
  const display = `:${freeDisplay()}`;
  const xvfb = start('Xvfb', 'Xvfb', [display, '-screen', '0', `${CFG.width}x${CFG.height}x24`, '-nolisten', 'tcp', '-noreset'], childEnv());
  await waitFor(() => spawnSync('xdpyinfo', ['-display', display], { stdio: 'ignore' }).status === 0, 10000, `Xvfb ${display}`);
  spawnSync('xdotool', ['mousemove', String(CFG.width - 1), String(CFG.height - 1)], { env: { ...process.env, DISPLAY: display } });
  return { display, xvfb };
}

export async function startDisplay({ display: fixed = null } = {}) {
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const display = fixed ?? `:${freeDisplay()}`;
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
    const out = { display, geometry, covers, pipeline: `gst-launch-1.0 ${moverPipeline().join(' ')}` };
    // Not enumerable: results files hold `out`, and processes do not serialize.
    Object.defineProperty(out, 'recs', { value: [xvfb, mover], enumerable: false });
    return out;
  }
  throw lastErr;
}

export class Agent {
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

/**
 * The agent on `display` (null for none), `--capture x11` unless `capture`
 * says otherwise; `args` go before BENCH_AGENT_ARGS. `controllerUrl` is the
 * controller link `serve` prints, `viewerUrl` a viewer link made for the run.
 */
/**
 * BENCH_AGENT_ENV="K=V K2=V2": more environment for the agent only (not the
 * browsers or helpers), e.g. heaptrack's preload library to see where a
 * long run's memory goes.
 */
function agentEnv() {
  const out = {};
  for (const kv of (process.env.BENCH_AGENT_ENV ?? '').split(/\s+/).filter(Boolean)) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

export async function startAgent(display, { capture = 'x11', args = [], env = {}, wrap = [], stateDir = null, port = null, startMs = 30000 } = {}) {
  if (!fs.existsSync(CFG.bin)) throw new Error(`agent binary missing: ${CFG.bin} (build it, or set ORIEL_BIN)`);
  port ??= await freePort();
  // Its own link secret and list; every bench client watches through one
  // shared viewer link (viewers may share links). A restarted agent may be
  // given the previous one's, so its links stay valid.
  if (!stateDir) {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-bench-state-'));
    tmpDirs.push(stateDir);
  }
  const argv = ['serve', '--listen', `127.0.0.1:${port}`, '--capture', capture, '--state-dir', stateDir,
    '--framerate', String(CFG.framerate), '--bitrate', String(CFG.bitrateKbps), ...args, ...CFG.agentExtraArgs];
  // `wrap` runs the agent under another program (valgrind ...); the pid is then the wrapper's.
  // taskset execs what it runs: the pid stays the agent's (or the wrapper's).
  wrap = [...pinned(), ...wrap];
  const [cmd, cmdArgs] = wrap.length ? [wrap[0], [...wrap.slice(1), CFG.bin, ...argv]] : [CFG.bin, argv];
  const rec = start('oriel', cmd, cmdArgs, childEnv({ DISPLAY: display, ORIEL_LOG: process.env.ORIEL_LOG, ...agentEnv(), ...env }));
  await waitForLine(rec, /oriel: serving http:\/\//, startMs, 'the agent to serve');
  const agent = new Agent(rec, port);
  agent.stateDir = stateDir;
  agent.viewerUrl = createLink(agent, 'viewer');
  // serve prints its controller link right after the address (under
  // systemd, i.e. with JOURNAL_STREAM set, the path of a file holding it).
  const prefix = 'oriel: controller link ';
  await waitFor(() => rec.log.some((l) => l.startsWith(prefix)), 5000, 'the controller link on stdout');
  const said = rec.log.find((l) => l.startsWith(prefix)).slice(prefix.length).trim();
  const inFile = said.match(/^in (.*) \(kept out of the log\)$/);
  agent.controllerUrl = inFile ? fs.readFileSync(inFile[1], 'utf8').trim() : said;
  return agent;
}

/** A new link URL of `role` (controller, viewer, player with `--slot N` in `extra`) for a running agent. */
export function createLink(agent, role, extra = []) {
  const link = spawnSync(CFG.bin, ['link', 'create', '--role', role, '--ttl', '2h', '--state-dir', agent.stateDir, '--url', agent.url, ...extra], { encoding: 'utf8' });
  if (link.status !== 0) throw new Error(`oriel link create --role ${role} failed: ${link.stderr}`);
  return link.stdout.trim();
}

export async function launchBrowser() {
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
            framesReceived: x.framesReceived ?? null, framesDecoded: x.framesDecoded ?? 0, keyFramesDecoded: x.keyFramesDecoded ?? 0, framesDropped: x.framesDropped ?? 0,
            retransmittedPacketsReceived: x.retransmittedPacketsReceived ?? 0, freezeCount: x.freezeCount ?? 0, totalFreezesDuration: x.totalFreezesDuration ?? 0,
            timestamp: x.timestamp,
          };
        }
      }
      return null;
    };
    // The received sound's delays in Chromium (part `audio`): its jitter
    // buffer (NetEq) and the playout after it, means in ms.
    window.__benchAudio = async () => {
      const pc = pcs[pcs.length - 1];
      if (!pc) return null;
      const out = {};
      for (const x of (await pc.getStats()).values()) {
        if (x.type === 'inbound-rtp' && (x.kind ?? x.mediaType) === 'audio') {
          out.jitterBufferMs = x.jitterBufferEmittedCount ? (1000 * x.jitterBufferDelay) / x.jitterBufferEmittedCount : null;
          out.jitterBufferTargetMs = x.jitterBufferEmittedCount && x.jitterBufferTargetDelay !== undefined ? (1000 * x.jitterBufferTargetDelay) / x.jitterBufferEmittedCount : null;
          out.packetsReceived = x.packetsReceived ?? null;
          out.packetsLost = x.packetsLost ?? null;
          out.concealedSamples = x.concealedSamples ?? null;
          out.totalSamplesReceived = x.totalSamplesReceived ?? null;
        }
        if (x.type === 'media-playout' && x.totalSamplesCount) out.playoutMs = (1000 * x.totalPlayoutDelay) / x.totalSamplesCount;
      }
      return out;
    };
  });
  return browserCtx;
}

// ---------------------------------------------------------------- pages

export const status = (page) => page.evaluate(() => window.oriel.status());
export const rtcStats = (page) => page.evaluate(() => (window.__benchRtc ? window.__benchRtc() : null)).catch(() => null);

export async function openClient(ctx, agent) {
  const page = await ctx.newPage();
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.goto(agent.viewerUrl, { waitUntil: 'load', timeout: 20000 });
  return page;
}

export async function waitPresented(page, timeoutMs = 20000) {
  return waitFor(async () => {
    const s = await status(page);
    return s.firstFrameSinceConnectMs !== null && s.framesDecoded > 0 ? s : null;
  }, timeoutMs, 'the page to present its first frame', 20);
}

export async function closeClient(page) {
  // Say bye instead of letting the agent time the socket out.
  await page.evaluate(() => window.oriel.disconnect()).catch(() => {});
  await page.close().catch(() => {});
}

export async function waitClients(agent, n, timeoutMs = 15000) {
  return waitFor(async () => {
    const h = await agent.healthz();
    return h.clients === n && h.peers === n ? h : null;
  }, timeoutMs, `/healthz clients=peers=${n}`, 100);
}

