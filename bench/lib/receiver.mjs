// Driving examples/bench_receiver from a bench part: one process holding
// many lightweight viewers (webrtcbin into fakesink, no decoding), commands
// on its stdin, JSON events on its stdout (interface: bench/README.md and the
// example's header comment). The process is registered with the harness's
// `children`, so cleanup() kills it with everything else.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, children, childEnv, log, procCpuSec, procStatus } from './harness.mjs';

export function receiverBin() {
  if (process.env.BENCH_RECEIVER) return path.resolve(process.env.BENCH_RECEIVER);
  const rel = path.join(REPO_ROOT, 'target/release/examples/bench_receiver');
  return fs.existsSync(rel) ? rel : path.join(REPO_ROOT, 'target/debug/examples/bench_receiver');
}

export class Receivers {
  /** Starts one bench_receiver process for the viewer link `link`. */
  static async start(link, { name = 'bench', extraArgs = [] } = {}) {
    return Receivers.spawn(['--link', link], name, extraArgs);
  }

  /** The same, but every viewer subscribes through Janus: `spec` is `URL,room=N[,feed=ID]`. */
  static async startJanus(spec, { name = 'bench', extraArgs = [] } = {}) {
    return Receivers.spawn(['--janus', spec], name, extraArgs);
  }

  static async spawn(targetArgs, name, extraArgs) {
    const bin = receiverBin();
    if (!fs.existsSync(bin)) throw new Error(`bench_receiver missing: ${bin} (cargo build --release --examples, or set BENCH_RECEIVER)`);
    const rx = new Receivers(bin, targetArgs, name, extraArgs);
    await rx.waitEvent((e) => e.event === 'ready', 15000, 'bench_receiver ready', { past: true });
    return rx;
  }

  constructor(bin, targetArgs, name, extraArgs) {
    this.bin = bin;
    this.events = []; // every event, in order, with `at` (Date.now())
    this.viewers = new Map(); // id -> {id, addedAt, joinedMs, connectedMs, firstFrameMs, peerId, errors[], left}
    this.alive = []; // ids not removed, oldest first
    this.nextId = 1;
    this.waiters = [];
    this.stderr = [];
    const child = spawn(bin, [...targetArgs, '--name', name, ...extraArgs], {
      env: childEnv({ GST_DEBUG: process.env.GST_DEBUG ?? '1' }),
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    this.pid = child.pid;
    // The harness kills every registered child's group on the way out.
    this.rec = { name: 'bench_receiver', child, log: this.stderr, exitCode: undefined, listeners: [] };
    this.rec.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.rec.exitCode = code ?? signal;
        this.stderr.push(`[bench_receiver exited: code=${code} signal=${signal}]`);
        this.wake();
        resolve();
      });
      child.on('error', (e) => {
        this.rec.exitCode = -1;
        this.stderr.push(`[bench_receiver failed to start: ${e.message}]`);
        this.wake();
        resolve();
      });
    });
    children.push(this.rec);
    child.stdin.on('error', () => {}); // EPIPE after an exit shows up as exitCode instead
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d) => {
      out += d;
      let i;
      while ((i = out.indexOf('\n')) >= 0) {
        this.onLine(out.slice(0, i));
        out = out.slice(i + 1);
      }
    });
    let err = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      err += d;
      let i;
      while ((i = err.indexOf('\n')) >= 0) {
        this.stderr.push(err.slice(0, i));
        if (this.stderr.length > 3000) this.stderr.splice(0, 1000);
        err = err.slice(i + 1);
      }
    });
  }

  get exited() {
    return this.rec.exitCode !== undefined;
  }

  onLine(line) {
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      this.stderr.push(`[stdout, not JSON] ${line}`);
      return;
    }
    e.at = Date.now();
    this.events.push(e);
    if (this.events.length > 20000) this.events.splice(0, 5000);
    const v = this.viewers.get(e.id);
    if (v) {
      if (e.event === 'joined') Object.assign(v, { joinedMs: e.ms, peerId: e.peerId });
      else if (e.event === 'connected') v.connectedMs ??= e.ms;
      else if (e.event === 'first_frame') v.firstFrameMs ??= e.ms;
      else if (e.event === 'error') {
        v.errors.push(e.message);
        if (e.fatal) v.failed = true;
        if (!v.quiet) log(`bench_receiver viewer ${e.id}${e.fatal ? ' FAILED' : ''}: ${e.message}`);
      } else if (e.event === 'left') v.left = true;
      else if (e.event === 'ended') v.ended = true;
    }
    this.wake(e);
  }

  wake(e = null) {
    for (const w of [...this.waiters]) {
      if (e ? w.pred(e) : this.exited) w.done(e);
    }
  }

  /** The first event matching `pred` from now on (or already seen, with `past`). */
  waitEvent(pred, timeoutMs, what, { past = false } = {}) {
    const seen = past ? this.events.find(pred) : null;
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        done: (e) => {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((x) => x !== w);
          if (e) resolve(e);
          else reject(new Error(`bench_receiver exited while waiting for ${what}:\n${this.stderr.slice(-20).join('\n')}`));
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.push(w);
      if (this.exited) w.done(null);
    });
  }

  send(cmd) {
    if (this.exited) throw new Error(`bench_receiver has exited (${this.rec.exitCode}); cannot send ${cmd}`);
    this.child.stdin.write(`${cmd}\n`);
  }

  /**
   * Opens `n` viewers; resolves with their ids (at once: use waitFirstFrames
   * to wait). `way` (normal, midoffer, icefail) and `token` (another link's)
   * are bench_receiver's `add` options; `quiet` viewers are expected to
   * fail (their errors are kept, not logged).
   */
  add(n, { way = null, token = null, quiet = false } = {}) {
    const ids = [];
    for (let i = 0; i < n; i++) {
      const id = this.nextId++;
      ids.push(id);
      this.viewers.set(id, { id, addedAt: Date.now(), errors: [], failed: false, left: false, ended: false, quiet });
      this.alive.push(id);
    }
    const opts = [way && `way=${way}`, token && `token=${token}`].filter(Boolean).join(' ');
    if (n > 0) this.send(`add ${n}${opts ? ` ${opts}` : ''}`);
    return ids;
  }

  /** Viewers `ids` leave all at once, `how` = 'bye' or 'drop' (a closed tab); resolves when all have left. */
  async leave(ids, how = 'bye', timeoutMs = 20000) {
    if (!ids.length) return;
    this.alive = this.alive.filter((id) => !ids.includes(id));
    const pending = new Set(ids);
    const done = this.waitEvent((e) => {
      if (e.event === 'left') pending.delete(e.id);
      return pending.size === 0;
    }, timeoutMs, `viewers ${ids.join(', ')} to leave`);
    this.send(`leave ${how} ${ids.join(' ')}`);
    await done;
  }

  /** Waits until viewer `id` has failed or ended by itself; resolves with the viewer. */
  async waitOver(id, timeoutMs = 20000) {
    const over = () => this.viewers.get(id)?.failed || this.viewers.get(id)?.ended;
    if (over()) return this.viewers.get(id);
    await this.waitEvent((e) => e.id === id && (e.event === 'ended' || (e.event === 'error' && e.fatal)), timeoutMs, `viewer ${id} to end`);
    return this.viewers.get(id);
  }

  /** Waits until every viewer in `ids` has its first frame; throws naming the ones that did not. */
  async waitFirstFrames(ids, timeoutMs = 20000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const missing = ids.filter((id) => this.viewers.get(id)?.firstFrameMs === undefined);
      if (!missing.length) return ids.map((id) => this.viewers.get(id));
      const failed = missing.filter((id) => this.viewers.get(id)?.failed);
      if (failed.length) throw new Error(`bench_receiver viewer(s) ${failed.join(', ')} failed: ${failed.map((id) => this.viewers.get(id).errors.join('; ')).join(' | ')}`);
      if (this.exited) throw new Error(`bench_receiver exited (${this.rec.exitCode}):\n${this.stderr.slice(-20).join('\n')}`);
      if (Date.now() >= deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for the first frame of viewer(s) ${missing.join(', ')} ` +
          `(${missing.slice(0, 5).map((id) => JSON.stringify(this.viewers.get(id))).join(', ')})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Closes the `n` newest viewers (bye); resolves when all are reported left. */
  async remove(n, timeoutMs = 20000) {
    const k = Math.min(n, this.alive.length);
    if (!k) return [];
    const ids = this.alive.splice(this.alive.length - k, k);
    const pending = new Set(ids);
    const done = this.waitEvent((e) => {
      if (e.event === 'left') pending.delete(e.id);
      return pending.size === 0;
    }, timeoutMs, `viewers ${ids.join(', ')} to leave`);
    this.send(`remove ${k}`);
    await done;
    return ids;
  }

  /** One `stats` line: {t, viewers: Map id -> {frames, packets, bytes, state}}. */
  async stats(timeoutMs = 5000) {
    const p = this.waitEvent((e) => e.event === 'stats', timeoutMs, 'a stats line');
    this.send('stats');
    const e = await p;
    return { t: e.t, at: e.at, viewers: new Map(e.viewers.map((v) => [v.id, v])) };
  }

  /** bye to every viewer, exit; returns the exit code (SIGKILL after `graceMs`). */
  async quit(graceMs = 15000) {
    if (!this.exited) {
      try {
        this.send('quit');
      } catch {
        /* gone */
      }
      await Promise.race([this.rec.exited, new Promise((r) => setTimeout(r, graceMs))]);
    }
    if (!this.exited) {
      log('bench_receiver did not quit in time; killing it');
      try {
        process.kill(-this.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await this.rec.exited;
    }
    this.alive = [];
    return this.rec.exitCode;
  }

  cpuSec() {
    return procCpuSec(this.pid);
  }

  status() {
    return procStatus(this.pid);
  }
}

/** One oddity line for the viewers of `rx` that reported errors, or null. */
export function receiverErrorsNote(rx) {
  const errs = [...rx.viewers.values()].filter((v) => v.errors.length);
  return errs.length ? `${errs.length} receiver viewer(s) reported errors, e.g. viewer ${errs[0].id}: ${errs[0].errors[0]}` : null;
}
