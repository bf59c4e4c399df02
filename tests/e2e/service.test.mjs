// oriel as the systemd user service (systemd/oriel.service), under a real
// `systemd --user` (tests/systemd/user-manager.sh) for a desktop user
// (`nobody`): installed the way `make install` does, started with
// `systemctl --user start`, which returns once the agent says READY=1. The
// user's sound server is whatever that manager starts for its login
// (Debian's socket-activated PulseAudio): the service finds it under its
// $XDG_RUNTIME_DIR as the desktop's own programs do, and a page hears a
// tone played in the session. Stopping the unit ends it cleanly.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Agent, Harness, ORIEL_BIN, REPO_ROOT, asUser, childEnv, freePort, sleep, status, waitDecoding, waitFor } from './harness.mjs';
import { hears, orielRecordings } from './sound.mjs';

const h = new Harness('service');
const USER = { uid: 65534, gid: 65534 };
const MANAGER = path.join(REPO_ROOT, 'tests/systemd/user-manager.sh');
const missing = ['systemctl', 'setpriv', 'unshare', 'pulseaudio'].filter(
  (c) => spawnSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' }).status !== 0);

let dir;
let manager;
let display;
let browser;
let userEnv;

/** `systemctl --user ARGS` as the session's user. */
function systemctl(...args) {
  return spawnSync(...asUser(USER, 'systemctl', ['--user', ...args]), { env: childEnv(userEnv), encoding: 'utf8', timeout: 60000 });
}

const show = (prop) => systemctl('show', 'oriel', '-p', prop, '--value').stdout.trim();

/** Everything in the cgroups handed to the user: killed, then removed. */
function killUserCgroups() {
  const file = dir && path.join(dir, 'cgroups');
  if (!file || !fs.existsSync(file)) return;
  for (const cg of fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    try { fs.writeFileSync(path.join(cg, 'cgroup.kill'), '1'); } catch { /* v1: below */ }
    spawnSync('sh', ['-c', `find '${cg}' -name cgroup.procs -exec cat {} + | xargs -r kill -9`]);
  }
  spawnSync('sleep', ['0.5']);
  for (const cg of fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    spawnSync('find', [cg, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']);
  }
}

/** Pids still in the unit's cgroup (cgroup2 or name=systemd). */
function unitPids() {
  const pids = new Set();
  for (const cg of fs.readFileSync(path.join(dir, 'cgroups'), 'utf8').split('\n').filter(Boolean)) {
    const procs = path.join(cg, 'app.slice', 'oriel.service', 'cgroup.procs');
    if (fs.existsSync(procs)) for (const p of fs.readFileSync(procs, 'utf8').split('\n').filter(Boolean)) pids.add(p);
  }
  return [...pids];
}

before(async () => {
  if (missing.length) return;
  ({ display } = await h.startDisplay());
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-e2e-user-'));
  fs.chmodSync(dir, 0o755);
  h.tmpDirs.push(dir);
  h.cleanups.push(async () => killUserCgroups());
  userEnv = { XDG_RUNTIME_DIR: path.join(dir, 'run'), HOME: path.join(dir, 'home') };
  manager = h.spawn('systemd-user', 'bash', [MANAGER, dir], { env: childEnv() });
  await waitFor(() => {
    if (manager.exitCode !== undefined) throw new Error(`the user manager exited (code ${manager.exitCode})`);
    // Asked by property: `is-system-running` checks this side's /run/systemd.
    return /^(running|degraded)$/.test(systemctl('show', '-p', 'SystemState', '--value').stdout.trim());
  }, 30000, 'systemd --user running', 200);
  browser = await h.launchBrowser();
});

after(() => h.cleanup());

h.test('installed as the user service: `systemctl --user start` returns once it is ready, it finds the login\'s sound server, a page hears the session\'s tone, stop ends it cleanly', { skip: missing.length ? `missing: ${missing.join(', ')}` : false }, async () => {
  const home = userEnv.HOME;
  const own = (p) => fs.chownSync(p, USER.uid, USER.gid);
  // What `make install` puts in place, owned by the user.
  for (const d of ['.local', '.local/bin', '.config', '.config/systemd', '.config/systemd/user', '.config/oriel']) {
    fs.mkdirSync(path.join(home, d), { recursive: true });
    own(path.join(home, d));
  }
  const bin = path.join(home, '.local/bin/oriel');
  fs.copyFileSync(ORIEL_BIN, bin);
  fs.chmodSync(bin, 0o755);
  own(bin);
  const unit = path.join(home, '.config/systemd/user/oriel.service');
  fs.copyFileSync(path.join(REPO_ROOT, 'systemd/oriel.service'), unit);
  own(unit);
  const port = await freePort();
  const config = path.join(home, '.config/oriel/config.toml');
  fs.writeFileSync(config, `listen = "127.0.0.1:${port}"\ncapture = "x11"\ninput = "none"\n`);
  own(config);

  // A graphical login hands its display to the manager (import-environment).
  assert.equal(systemctl('set-environment', `DISPLAY=${display}`).status, 0);
  assert.equal(systemctl('daemon-reload').status, 0);
  const started = systemctl('start', 'oriel');
  assert.equal(started.status, 0, `systemctl --user start oriel: ${started.stderr}`);
  // Type=notify: active means the agent said READY=1, i.e. it listens.
  assert.equal(show('ActiveState'), 'active');

  const stateDir = path.join(home, '.local/state/oriel');
  const agent = new Agent(h, null, port, stateDir);
  agent.runAs = USER;
  agent.linkEnv = userEnv;
  const health = await agent.healthz();
  assert.match(health.audio, /on unix:\S+\/run\/pulse\/native \(found by \$XDG_RUNTIME_DIR\/pulse\/native/, `the login's sound server: ${health.audio}`);
  agent.controllerUrl = fs.readFileSync(path.join(stateDir, 'controller-link'), 'utf8').trim();
  const page = await h.openClient(browser, agent, agent.controllerUrl);
  await waitDecoding(page, 30000);
  assert.equal((await status(page)).sound.tracks, 1, 'one audio track beside the video');

  // A program in the session plays into the default output.
  const tone = h.spawn('tone', ...asUser(USER, 'gst-launch-1.0', ['-q', 'audiotestsrc', 'is-live=true', 'freq=660', 'volume=0.5', '!', 'audioconvert', '!', 'pulsesink']),
    { env: childEnv(userEnv) });
  await hears(page, 660, 'the session\'s tone');
  await h.kill(tone);
  // As the user: the login's PulseAudio lets in who has its cookie.
  const pactl = (...args) => spawnSync(...asUser(USER, 'pactl', args), { env: childEnv(userEnv), encoding: 'utf8', timeout: 5000 });
  assert.match(pactl('info').stdout, /Server Name: pulseaudio/, 'the login\'s sound server is Debian\'s socket-activated PulseAudio');
  assert.equal(orielRecordings(pactl), 1, 'the service records the login\'s sound server');
  await page.close();

  const stopped = systemctl('stop', 'oriel');
  assert.equal(stopped.status, 0, `systemctl --user stop oriel: ${stopped.stderr}`);
  assert.equal(show('ActiveState'), 'inactive');
  assert.equal(show('Result'), 'success', 'SIGTERM ends it with exit 0');
  assert.equal(show('NRestarts'), '0', 'it never crashed and restarted');
  await waitFor(() => unitPids().length === 0, 5000, 'no process left in the unit');
  await waitFor(() => orielRecordings(pactl) === 0, 5000, 'no recording left on the sound server');
  assert.ok(!/oriel_mic/.test(pactl('list', 'short', 'modules').stdout), 'its microphone modules unloaded');
});
