// A private headless Wayland desktop for the e2e tests: tests/wayland/session.sh
// (own D-Bus, PipeWire, WirePlumber, mutter, xdg-desktop-portal-gnome) run
// as an unprivileged user, plus helpers to run programs inside it and to
// play the user at the desktop through org.gnome.Mutter.RemoteDesktop.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, asUser, childEnv, readableCopy, sleep, waitFor } from './harness.mjs';

const SESSION_SH = path.join(REPO_ROOT, 'tests/wayland/session.sh');
const MUTTER_REMOTE = path.join(REPO_ROOT, 'tests/wayland/mutter_remote.py');
const PULSE_CONF = path.join(REPO_ROOT, 'tests/wayland/pipewire-pulse.conf');
export const INPUT_WINDOW = path.join(REPO_ROOT, 'tests/wayland/input_window.py');

/** The session's user: `nobody`, as the field notes ran it. */
export const SESSION_USER = { uid: 65534, gid: 65534 };

/** Reasons the Wayland tests cannot run here, or null. */
export function missingWaylandPieces() {
  const need = ['mutter', 'pipewire', 'wireplumber', 'dbus-daemon', 'setpriv', 'gdbus'];
  const missing = need.filter((c) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status !== 0);
  for (const f of ['/usr/libexec/xdg-desktop-portal', '/usr/libexec/xdg-desktop-portal-gnome']) {
    if (!fs.existsSync(f)) missing.push(f);
  }
  // Debian's Python with GObject introspection drives mutter (not a pyenv one).
  if (spawnSync('/usr/bin/python3', ['-c', 'import gi'], { stdio: 'ignore' }).status !== 0) missing.push('python3-gi');
  if (process.getuid?.() !== 0) missing.push('root (to start the session as another user)');
  return missing.length ? missing : null;
}

export class WaylandSession {
  constructor(h, dir, rec, size) {
    this.h = h;
    this.dir = dir;
    this.rec = rec;
    this.size = size;
    this.user = SESSION_USER;
    this.env = {};
  }

  /** Environment of a program inside the session (DISPLAY unset). */
  childEnv(extra = {}) {
    return childEnv({ ...this.env, ...extra });
  }

  /** Spawn `cmd args` inside the session, as its user, tracked by the harness. */
  spawn(name, cmd, args, extra = {}) {
    const [c, a] = asUser(this.user, cmd, args);
    return this.h.spawn(name, c, a, { env: this.childEnv(extra) });
  }

  /** Run tests/wayland/mutter_remote.py with `actions`; throws on failure. */
  remote(...actions) {
    const r = spawnSync(...asUser(this.user, '/usr/bin/python3', [MUTTER_REMOTE, ...actions.map(String)]), {
      env: this.childEnv(),
      encoding: 'utf8',
      timeout: 30000,
    });
    if (r.status !== 0) throw new Error(`mutter_remote ${actions.join(' ')} failed (${r.status}): ${r.stderr}`);
  }

  /** Centre of the first monitor, where the portal's dialogs open. */
  centre() {
    const [w, h] = this.size.split(',')[0].split('x').map(Number);
    return [w / 2, h / 2];
  }

  /**
   * Play the user approving xdg-desktop-portal-gnome 43's "Screen Share"
   * dialog: select the monitor row(s), then press Share. The dialog is
   * centred on the first monitor; these offsets were read off screenshots
   * at 1280x720 (first row at the centre + 25 px, the next 55 px lower,
   * Share at +212/-128). With several monitors and a request for several
   * (`--monitor N`) each row clicked is added to the selection. Pointer
   * moves come in two steps: GTK picks a click up only after motion over
   * the widget.
   */
  approveShareDialog({ rows = 1 } = {}) {
    const [cx, cy] = this.centre();
    const select = [];
    for (let i = 0; i < rows; i++) {
      const y = cy + 25 + 55 * i;
      select.push('sleep', 0.3, 'move', cx - 40, y - 5, 'sleep', 0.3, 'move', cx, y, 'sleep', 0.3, 'click', 'sleep', 0.5);
    }
    this.remote(
      ...select,
      'move', cx + 200, cy - 120, 'sleep', 0.3, 'move', cx + 212, cy - 128, 'sleep', 0.3, 'click', 'sleep', 0.3,
    );
  }

  /** Press Cancel on the "Screen Share" dialog (centre -210/-128 at 1280x720). */
  declineShareDialog() {
    const [cx, cy] = this.centre();
    this.remote('sleep', 0.3, 'move', cx - 190, cy - 120, 'sleep', 0.3, 'move', cx - 210, cy - 128, 'sleep', 0.3, 'click', 'sleep', 0.3);
  }

  /**
   * Approve xdg-desktop-portal-gnome 43's "Remote desktop" dialog: switch
   * on "Allow remote interaction" (centre +189/+72 at 1280x720, the
   * monitor is preselected), then press Share (+212/-128).
   */
  approveRemoteDesktopDialog() {
    const [cx, cy] = this.centre();
    this.remote(
      'sleep', 0.3, 'move', cx + 160, cy + 60, 'sleep', 0.3, 'move', cx + 189, cy + 72, 'sleep', 0.3, 'click', 'sleep', 0.5,
      'move', cx + 200, cy - 120, 'sleep', 0.3, 'move', cx + 212, cy - 128, 'sleep', 0.3, 'click', 'sleep', 0.3,
    );
  }

  /** `gdbus call` inside the session; returns its output. */
  gdbus(dest, objectPath, method, ...args) {
    const r = spawnSync(...asUser(this.user, 'gdbus', ['call', '--session', '--dest', dest, '--object-path', objectPath, '--method', method, ...args]), {
      env: this.childEnv(),
      encoding: 'utf8',
      timeout: 10000,
    });
    if (r.status !== 0) throw new Error(`gdbus ${method} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  }

  /**
   * Turn the monitor (0 normal, 1 = 90 degrees, ...) through
   * org.gnome.Mutter.DisplayConfig: the headless virtual monitor has one
   * mode, but a turned one is 720x1280, a real size change for the
   * screencast.
   */
  rotate(transform) {
    const dc = ['org.gnome.Mutter.DisplayConfig', '/org/gnome/Mutter/DisplayConfig'];
    const state = this.gdbus(...dc, 'org.gnome.Mutter.DisplayConfig.GetCurrentState');
    const serial = /^\(uint32 (\d+),/.exec(state)?.[1];
    const mode = /\('([0-9]+x[0-9]+@[0-9.]+)'/.exec(state)?.[1];
    if (!serial || !mode) throw new Error(`unexpected DisplayConfig state: ${state.slice(0, 300)}`);
    this.gdbus(...dc, 'org.gnome.Mutter.DisplayConfig.ApplyMonitorsConfig', serial, '1',
      `[(0, 0, 1.0, ${transform}, true, [('Meta-0', '${mode}', @a{sv} {})])]`, '@a{sv} {}');
  }

  /** A directory inside the session's folder that its user owns. */
  ownedDir(name) {
    const d = path.join(this.dir, name);
    fs.mkdirSync(d, { recursive: true });
    fs.chownSync(d, this.user.uid, this.user.gid);
    return d;
  }

  /** Pids of every process that runs in this session (by XDG_RUNTIME_DIR). */
  processes() {
    const marker = `XDG_RUNTIME_DIR=${this.env.XDG_RUNTIME_DIR ?? path.join(this.dir, 'run')}`;
    const found = [];
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const env = fs.readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
        if (env.includes(marker)) found.push({ pid: Number(d), cmd: fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ').trim() });
      } catch {
        /* gone, or a kernel thread */
      }
    }
    return found;
  }

  /** SIGTERM the session (it stops everything it started); waits for it. */
  async stop() {
    await this.h.kill(this.rec, 10000);
  }
}

/**
 * Start the session; resolves once its portal answers. `dir` starts it
 * again in the folder of an earlier one (same home: the portal's grants
 * survive, as across a logout and login).
 */
export async function startWaylandSession(h, { size = '1280x720', dir = null } = {}) {
  if (!dir) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-wayland-'));
    fs.chmodSync(dir, 0o755);
    h.tmpDirs.push(dir);
  }
  // The script drops to the session user itself; it owns `dir` from then on.
  // It re-runs itself as that user, so it runs from a copy that user can read.
  // Its pulse layer's config is read from beside it (session.sh).
  readableCopy(PULSE_CONF);
  const rec = h.spawn('wayland-session', readableCopy(SESSION_SH), [dir, size], { env: childEnv() });
  const session = new WaylandSession(h, dir, rec, size);
  const envFile = path.join(dir, 'env');
  await waitFor(
    () => {
      if (rec.exitCode !== undefined) throw new Error(`the session script exited (code ${rec.exitCode})`);
      return fs.existsSync(envFile);
    },
    60000,
    'the Wayland session to be ready',
    200,
  );
  for (const line of fs.readFileSync(envFile, 'utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) session.env[line.slice(0, i)] = line.slice(i + 1);
  }
  await sleep(200);
  return session;
}
