// Shared machinery for the browser end-to-end tests: real Xvfb, a real
// agent, Debian's Chromium through playwright-core. Every process started
// here is registered with a Harness and killed (whole process group) by
// cleanup(), also when a test fails; an exit hook SIGKILLs stragglers.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { chromium } from 'playwright-core';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ORIEL_BIN = process.env.ORIEL_BIN ?? path.join(REPO_ROOT, 'target/debug/oriel');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

// Flags from FIELD-NOTES "Chromium under playwright-core": the background
// networking ones stop Chromium flooding the closed network.
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

/** Full logs of every process the tests start (kept after the run). */
export const LOG_DIR = process.env.ORIEL_E2E_LOG_DIR ?? path.join(os.tmpdir(), 'oriel-e2e-logs');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `promise`, or `fallback` after `ms`; the timer never holds the process open. */
export function within(promise, ms, fallback = undefined) {
  let timer;
  const timeout = new Promise((r) => {
    timer = setTimeout(() => r(fallback), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Poll `fn` until it returns a truthy value (returned) or `timeoutMs` passes
 * (throws, naming `what` and the last value seen). `fn` may be async.
 */
/** Thrown inside a waitFor condition: stop waiting, the answer will not change. */
export class GiveUp extends Error {}

export async function waitFor(fn, timeoutMs, what = 'condition', intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      lastErr = undefined;
      if (last) return last;
    } catch (e) {
      if (e instanceof GiveUp) throw e;
      lastErr = e;
    }
    if (Date.now() >= deadline) {
      const seen = lastErr ? `error: ${lastErr.message}` : `last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${seen})`);
    }
    await sleep(intervalMs);
  }
}

/** A TCP port nobody listens on right now (small race accepted). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** An X display number with no socket and no lock file. */
function freeDisplay() {
  for (let i = 0; i < 200; i++) {
    const n = 100 + Math.floor(Math.random() * 800);
    if (!fs.existsSync(`/tmp/.X11-unix/X${n}`) && !fs.existsSync(`/tmp/.X${n}-lock`)) return n;
  }
  throw new Error('no free X display number');
}

/** Environment for children, with DISPLAY/WAYLAND_DISPLAY replaced as asked. */
export function childEnv(overrides = {}) {
  const env = { ...process.env };
  // The agent reads ORIEL_* settings; only the test decides them (ORIEL_LOG aside).
  for (const k of Object.keys(env)) if (k.startsWith('ORIEL_') && k !== 'ORIEL_LOG') delete env[k];
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  // `--capture auto` reads it too (a Wayland session): tests set it themselves.
  delete env.XDG_SESSION_TYPE;
  env.NO_COLOR = '1'; // plain logs in failure reports
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined || v === null) delete env[k];
    else env[k] = String(v);
  }
  return env;
}

/** Process groups still alive at exit get SIGKILLed, whatever happened. */
const liveGroups = new Set();
process.on('exit', () => {
  for (const pid of liveGroups) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

/** All pids whose command line (space-joined) matches `re`, excluding us. */
export function pidsMatching(re) {
  const found = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let cmd;
    try {
      cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    } catch {
      continue;
    }
    if (cmd && re.test(cmd)) found.push({ pid: Number(d), cmd });
  }
  return found;
}

/** Drop blank lines and fold runs of lines equal up to their digits. */
function compact(lines) {
  const out = [];
  let prevKey = null;
  let repeats = 0;
  const flush = () => {
    if (repeats > 0) out.push(`  [previous line repeated ${repeats} more times]`);
    repeats = 0;
  };
  for (const line of lines) {
    if (!line.trim()) continue;
    const key = line.replace(/\d+/g, '#');
    if (key === prevKey) {
      repeats += 1;
      continue;
    }
    flush();
    out.push(line);
    prevKey = key;
  }
  flush();
  return out;
}

/** Pids of all descendants of `pid`, with their command lines. */
export function descendants(pid) {
  const parent = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // Field 4 of /proc/PID/stat, after the parenthesised comm.
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* exited meanwhile */
    }
  }
  const out = [];
  const walk = (p) => {
    for (const [child, pp] of parent) {
      if (pp !== p) continue;
      let cmd = '';
      try {
        cmd = fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      } catch {
        /* exited meanwhile */
      }
      out.push({ pid: child, cmd });
      walk(child);
    }
  };
  walk(pid);
  return out;
}

/** Is a process alive (and not a zombie)? */
export function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Does an X server answer on `display` (":N")? */
export function xServerAnswers(display) {
  return spawnSync('xdpyinfo', ['-display', display], { stdio: 'ignore', timeout: 5000 }).status === 0;
}

export class Harness {
  constructor(name) {
    this.name = name;
    this.procs = []; // {name, child, log: string[], exited: Promise}
    this.cleanups = [];
    this.tmpDirs = [];
    this.pageCount = 0;
    this.browserLog = [];
  }

  /**
   * Spawn `cmd` in its own process group; stdout/stderr are kept (last
   * lines) for failure reports. Returns the record.
   */
  spawn(name, cmd, args, { env, logLimit = 4000 } = {}) {
    const child = spawn(cmd, args, {
      env: env ?? childEnv(),
      detached: true, // own process group: kill(-pid) reaches its children
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const rec = { name, child, log: [], exitCode: undefined, signal: undefined, listeners: [] };
    // The whole output also goes to a file: reports show only a compacted tail.
    fs.mkdirSync(LOG_DIR, { recursive: true });
    rec.logFile = path.join(LOG_DIR, `${this.name}-${name.replace(/[^\w.-]/g, '_')}-${child.pid ?? 'x'}.log`);
    const file = fs.createWriteStream(rec.logFile);
    const push = (line) => {
      file.write(`${line}\n`);
      rec.log.push(line);
      if (rec.log.length > logLimit) rec.log.splice(0, rec.log.length - logLimit);
      for (const l of rec.listeners) l(line);
    };
    for (const stream of [child.stdout, child.stderr]) {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      stream.on('end', () => buf && push(buf));
    }
    rec.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        rec.exitCode = code;
        rec.signal = signal;
        push(`[${name} exited: code=${code} signal=${signal}]`);
        resolve({ code, signal });
      });
      child.on('error', (e) => {
        push(`[${name} failed to start: ${e.message}]`);
        rec.exitCode = -1;
        resolve({ code: -1, signal: null });
      });
    });
    if (child.pid) liveGroups.add(child.pid);
    this.procs.push(rec);
    return rec;
  }

  /** Resolves with the first log line of `rec` matching `re`. */
  waitForLog(rec, re, timeoutMs, what) {
    const hit = rec.log.find((l) => re.test(l));
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        rec.listeners = rec.listeners.filter((l) => l !== listener);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} in ${rec.name} log`));
      }, timeoutMs);
      const listener = (line) => {
        if (re.test(line)) {
          clearTimeout(timer);
          rec.listeners = rec.listeners.filter((l) => l !== listener);
          resolve(line);
        }
      };
      rec.listeners.push(listener);
    });
  }

  /** SIGTERM the process group, SIGKILL after `graceMs`. */
  async kill(rec, graceMs = 3000) {
    const pid = rec.child.pid;
    if (!pid) return;
    if (rec.exitCode === undefined) {
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      await within(rec.exited, graceMs);
    }
    // The leader may be gone while children of its group live on.
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    liveGroups.delete(pid);
  }

  /** Xvfb on a free display, something moving on it unless `mover: false`. */
  async startDisplay({ size = '1280x720', mover = true } = {}) {
    let lastErr;
    for (let attempt = 0; attempt < 3; attempt++) {
      const n = freeDisplay();
      const display = `:${n}`;
      const xvfb = this.spawn(`Xvfb${display}`, 'Xvfb', [
        display, '-screen', '0', `${size}x24`, '-nolisten', 'tcp', '-noreset',
      ]);
      try {
        await waitFor(
          () => {
            if (xvfb.exitCode !== undefined) throw new Error('Xvfb exited');
            return xServerAnswers(display);
          },
          10000,
          `Xvfb ${display}`,
          100,
        );
      } catch (e) {
        lastErr = e;
        await this.kill(xvfb);
        continue;
      }
      const [w, h] = size.split('x');
      let moverRec = null;
      if (mover) {
        moverRec = this.spawn(
          `gst-mover${display}`,
          'gst-launch-1.0',
          [
            'videotestsrc', 'pattern=ball', 'is-live=true', '!',
            `video/x-raw,width=${w},height=${h},framerate=30/1`, '!',
            'videoconvert', '!', 'ximagesink',
          ],
          { env: childEnv({ DISPLAY: display }) },
        );
      }
      return { display, number: n, xvfb, mover: moverRec };
    }
    throw lastErr;
  }

  /**
   * Start the agent and wait for /healthz 200. `display` null = no DISPLAY
   * in its environment. Returns an Agent. With `tls`, the agent is reached
   * over https and trusted through `ca` (a PEM file; default: the
   * self-signed certificate in the state directory). `stateDir` reuses a
   * state directory (e.g. across a restart); it is not removed. `runAs`
   * ({uid, gid}) runs the agent, and its `oriel link` commands, as that
   * user (setpriv), e.g. to join a desktop session of that user.
   */
  async startAgent({ display = null, capture = 'x11', args = [], env = {}, tls = false, ca = null, stateDir = null, runAs = null } = {}) {
    if (!fs.existsSync(ORIEL_BIN)) throw new Error(`agent binary missing: ${ORIEL_BIN}`);
    const port = await freePort();
    // Each agent has its own link secret and link list.
    if (!stateDir) {
      stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-e2e-state-'));
      this.tmpDirs.push(stateDir);
    }
    if (runAs) fs.chownSync(stateDir, runAs.uid, runAs.gid);
    const [cmd, cmdArgs] = asUser(runAs, ORIEL_BIN,
      ['serve', '--listen', `127.0.0.1:${port}`, '--capture', capture, '--state-dir', stateDir, ...args]);
    const rec = this.spawn(
      'oriel',
      cmd,
      cmdArgs,
      { env: childEnv({ ORIEL_LOG: process.env.ORIEL_LOG ?? 'info,oriel=debug', ...env, DISPLAY: display }) },
    );
    const agent = new Agent(this, rec, port, stateDir, tls ? (ca ?? path.join(stateDir, 'tls', 'cert.pem')) : null);
    agent.runAs = runAs;
    // `oriel link` runs with the agent's environment when it runs as
    // another user (its HOME, not ours).
    agent.linkEnv = runAs ? env : {};
    await waitFor(
      async () => {
        if (rec.exitCode !== undefined) throw new GiveUp(`agent exited early (code ${rec.exitCode})`);
        return (await agent.healthzRaw()).status === 200;
      },
      30000,
      'agent /healthz 200',
      200,
    ).catch((e) => {
      if (rec.exitCode !== undefined) e.message = `agent exited before /healthz answered (code ${rec.exitCode}, signal ${rec.signal})`;
      throw e;
    });
    // serve prints its controller link right after the address.
    await waitFor(() => rec.log.some((l) => l.startsWith('oriel: controller link ')), 5000, 'controller link on stdout');
    agent.controllerUrl = rec.log.find((l) => l.startsWith('oriel: controller link ')).slice('oriel: controller link '.length).trim();
    return agent;
  }

  /** Chromium with the FIELD-NOTES flags in a throwaway profile. */
  async launchBrowser({ args = [] } = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-e2e-chromium-'));
    this.tmpDirs.push(dir);
    const context = await chromium.launchPersistentContext(dir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, ...args],
      viewport: { width: 1280, height: 720 },
    });
    this.cleanups.push(async () => {
      await within(context.close().catch(() => {}), 10000);
    });
    return context;
  }

  /**
   * Open the web client of `agent` in a new page of `context`, through
   * `url` or, by default, the agent's shared viewer link.
   */
  async openClient(context, agent, url = null) {
    const target = url ?? agent.viewerUrl();
    const page = await context.newPage();
    const tag = `page${++this.pageCount}`;
    page.on('console', (m) => this.logBrowser(`${tag} console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => this.logBrowser(`${tag} pageerror: ${e.message}`));
    await page.goto(target, { waitUntil: 'load', timeout: 20000 });
    return page;
  }

  logBrowser(line) {
    this.browserLog.push(line);
    if (this.browserLog.length > 2000) this.browserLog.splice(0, 500);
  }

  /** Last lines of every process log, for failure reports. */
  report(lines = 80) {
    const parts = [];
    for (const p of this.procs) {
      if (!p.log.length) continue;
      parts.push(`----- ${p.name} (full log: ${p.logFile}) -----`);
      parts.push(...compact(p.log).slice(-lines));
    }
    if (this.browserLog.length) {
      parts.push('----- browser -----');
      parts.push(...compact(this.browserLog).slice(-lines));
    }
    return parts.join('\n');
  }

  async cleanup() {
    for (const fn of this.cleanups.reverse()) {
      try {
        await fn();
      } catch {
        /* keep cleaning */
      }
    }
    this.cleanups = [];
    // Agent first (it may own an Xvfb), then movers, then X servers.
    const order = (p) => (p.name === 'oriel' ? 0 : p.name.startsWith('gst') ? 1 : 2);
    for (const p of [...this.procs].sort((a, b) => order(a) - order(b))) await this.kill(p);
    for (const d of this.tmpDirs) fs.rmSync(d, { recursive: true, force: true });
    this.tmpDirs = [];
  }

  /**
   * node:test `test()` whose failures carry the process logs, so an agent
   * crash or error is visible next to the assertion that caught it.
   */
  test(name, options, fn) {
    if (typeof options === 'function') [fn, options] = [options, {}];
    return test(name, options, async (t) => {
      try {
        await fn(t);
      } catch (e) {
        const report = this.report();
        if (e && typeof e === 'object' && report) {
          try {
            e.message = `${e.message}\n${report}`;
          } catch {
            /* read-only message */
          }
        }
        throw e;
      }
    });
  }
}

/**
 * `[cmd, args]` that run `cmd args` as `runAs` ({uid, gid}), or as us. The
 * command and any argument that is a file of the checkout are replaced by
 * readable copies (`readableCopy`): the checkout may sit in a private
 * directory (root's home is 0700) that `runAs` cannot enter.
 */
export function asUser(runAs, cmd, args) {
  if (!runAs) return [cmd, args];
  const own = (a) => (typeof a === 'string' && a.startsWith(REPO_ROOT + path.sep) ? readableCopy(a) : a);
  return ['setpriv', [`--reuid=${runAs.uid}`, `--regid=${runAs.gid}`, '--clear-groups', own(cmd), ...args.map(own)]];
}

let sharedDir = null;

/**
 * Keeps every RTCPeerConnection `page` makes in `window.__pcs`, for tests
 * that read its stats or act on it as a misbehaving client would.
 */
export function keepPeerConnections(page) {
  return page.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.__pcs = [];
    window.RTCPeerConnection = function (...a) {
      const pc = new Native(...a);
      window.__pcs.push(pc);
      return pc;
    };
    window.RTCPeerConnection.prototype = Native.prototype;
  });
}

/**
 * A copy of `file` that every user can read and run, in one world-readable
 * folder per test process (removed when it exits), for programs that run as
 * another user. The copy is made once per file; a file that changes
 * afterwards (a rebuilt binary) is copied again.
 */
export function readableCopy(file) {
  if (!sharedDir) {
    sharedDir = fs.mkdtempSync(path.join('/tmp', 'oriel-e2e-shared-'));
    fs.chmodSync(sharedDir, 0o755);
    process.on('exit', () => fs.rmSync(sharedDir, { recursive: true, force: true }));
  }
  const rel = path.relative(REPO_ROOT, file);
  const dest = path.join(sharedDir, rel);
  const src = fs.statSync(file);
  const have = fs.statSync(dest, { throwIfNoEntry: false });
  if (!have || have.mtimeMs < src.mtimeMs || have.size !== src.size) {
    // Every folder on the way must be enterable too.
    for (let d = path.dirname(dest); d !== sharedDir; d = path.dirname(d)) {
      fs.mkdirSync(d, { recursive: true });
      fs.chmodSync(d, 0o755);
    }
    fs.copyFileSync(file, dest);
    fs.chmodSync(dest, src.mode & 0o111 ? 0o755 : 0o644);
  }
  return dest;
}

export class Agent {
  constructor(harness, rec, port, stateDir, caFile = null) {
    this.harness = harness;
    this.rec = rec;
    this.port = port;
    this.stateDir = stateDir;
    this.caFile = caFile; // set: the agent serves https, trusted through this PEM
    const s = caFile ? 's' : '';
    this.url = `http${s}://127.0.0.1:${port}/`;
    this.wsUrl = `ws${s}://127.0.0.1:${port}/ws`;
    this.controllerUrl = null;
    this.sharedViewer = null;
    this.runAs = null;
    this.linkEnv = {};
  }

  /** Mint a link with `oriel link create`; returns {url, id, token}. */
  createLink({ role, slot = null, ttl = '1h', extra = [] }) {
    const args = ['link', 'create', '--role', role, '--ttl', ttl, '--state-dir', this.stateDir, '--url', this.url, ...extra];
    if (slot !== null) args.push('--slot', String(slot));
    // As the agent's user: files it writes must stay readable to the agent.
    const r = spawnSync(...asUser(this.runAs, ORIEL_BIN, args), { encoding: 'utf8', env: childEnv(this.linkEnv) });
    if (r.status !== 0) throw new Error(`oriel link create failed: ${r.stderr}`);
    const url = r.stdout.trim();
    // stderr: "oriel: link <id> (<role>), expires in ..."
    const m = r.stderr.match(/^oriel: link (\S+) \(/m);
    if (!m || !/^https?:\/\/.*#token=/.test(url)) {
      throw new Error(`oriel link create printed no link: stdout ${JSON.stringify(r.stdout)} stderr ${JSON.stringify(r.stderr)}`);
    }
    return { url, id: m[1], token: tokenOf(url) };
  }

  /** Revoke a link by id with `oriel link revoke`. */
  revoke(id) {
    const r = spawnSync(...asUser(this.runAs, ORIEL_BIN, ['link', 'revoke', id, '--state-dir', this.stateDir]), { encoding: 'utf8', env: childEnv(this.linkEnv) });
    if (r.status !== 0) throw new Error(`oriel link revoke failed: ${r.stderr}`);
  }

  /** One viewer link shared by every default client (viewers may share). */
  viewerUrl() {
    if (!this.sharedViewer) this.sharedViewer = this.createLink({ role: 'viewer' });
    return this.sharedViewer.url;
  }

  get log() {
    return this.rec.log;
  }

  get alive() {
    return this.rec.exitCode === undefined;
  }

  /** GET `path` of the agent: {status, text}. Over https the certificate must verify. */
  async get(urlPath) {
    if (!this.caFile) {
      const res = await fetch(`${this.url}${urlPath}`, { signal: AbortSignal.timeout(5000) });
      return { status: res.status, text: await res.text() };
    }
    // Read each time: the agent writes its self-signed certificate at start.
    const ca = fs.readFileSync(this.caFile);
    return new Promise((resolve, reject) => {
      const req = https.get(`${this.url}${urlPath}`, { ca, timeout: 5000 }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, text }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  }

  async healthzRaw() {
    return this.get('healthz');
  }

  /** Parsed /healthz; throws unless it answers 200 with JSON. */
  async healthz() {
    const { status, text } = await this.healthzRaw();
    if (status !== 200) throw new Error(`/healthz answered ${status}: ${text}`);
    return JSON.parse(text);
  }

  async metrics() {
    const { status, text } = await this.get('metrics');
    if (status !== 200) throw new Error(`/metrics answered ${status}`);
    return text;
  }

  /** Sum of all samples of a Prometheus metric `name` (any labels). */
  static metricSamples(text, name) {
    const samples = [];
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue;
      const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/);
      if (m && m[1] === name) samples.push({ labels: m[2] ?? '', value: Number(m[3]) });
    }
    return samples;
  }

  /** Send a signal to the agent process itself (not its group). */
  signal(sig) {
    this.rec.child.kill(sig);
  }
}

// ------------------------------------------------------------ page helpers

/** window.oriel.status() of a page. */
export function status(page) {
  return page.evaluate(() => window.oriel.status());
}

/**
 * Wait until the page decodes video; returns the status seen. Unless
 * `anySession`, the video must come in the page's first session: a client
 * that only plays after its own reconnect (watchdog, failure) hides an agent
 * fault, so that fails at once.
 */
/** The token in a link URL's fragment. */
export function tokenOf(url) {
  return new URLSearchParams(new URL(url).hash.slice(1)).get('token');
}

export async function waitDecoding(page, timeoutMs = 20000, minFrames = 1, { anySession = false } = {}) {
  let last = null;
  let reconnected = false;
  try {
    await waitFor(
      async () => {
        last = await status(page);
        if (!anySession && last.connects > 1) return (reconnected = true);
        return last.framesDecoded >= minFrames && last.width > 0;
      },
      timeoutMs,
      `page to decode ${minFrames} frame(s)`,
      100,
    );
  } catch (e) {
    e.message += `; last status: ${JSON.stringify(last)}`;
    throw e;
  }
  if (reconnected) {
    throw new Error(`the page reconnected before its first session played; status: ${JSON.stringify(last)}`);
  }
  return last;
}

/** Wait until framesDecoded grows by `n` from `since` (a status). */
export async function waitFramesGrow(page, since, n, timeoutMs = 15000) {
  let last = null;
  try {
    return await waitFor(
      async () => {
        last = await status(page);
        // Same session required: a reconnect would reset the counter.
        return last.connects === since.connects && last.framesDecoded >= since.framesDecoded + n
          ? last
          : null;
      },
      timeoutMs,
      `framesDecoded to grow by ${n} from ${since.framesDecoded} (same session)`,
      100,
    );
  } catch (e) {
    e.message += `; last status: ${JSON.stringify(last)}`;
    throw e;
  }
}
