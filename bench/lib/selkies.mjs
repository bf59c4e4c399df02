// Selkies 2.1.0 (PyPI `selkies`) beside oriel on the same Xvfb display, in
// its WebRTC transport with software x264, for side-by-side benchmarks.
//
// What "WebRTC mode" is in 2.1.0 (read from the wheel, not assumed): no
// GStreamer at all. The server is Python (aiohttp) with a vendored,
// aiortc-derived WebRTC/ICE stack; video comes from pixelflux (a Rust
// extension wheel: XShm capture of the root window + libx264 bundled in the
// wheel), full frames, one RTP H.264 stream per display. The web client is
// inside the wheel and served from `/`; it asks `/api/status` for the mode
// and signals over `ws://HOST/api/webrtc/signaling/` (the server offers).
//
// Nothing here touches the shared display's size: `--enable-resize false`
// keeps the desktop as Xvfb made it, and the capture follows the root
// window. So `width`/`height` are checked against the screen, not applied.
//
// It runs as one more child of the harness (`start()`: own process group,
// killed with every other child on any exit).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  childEnv, children, freePort, log, pinned, sleep, start, stopChild, tmpDirs, waitFor, waitForLine,
} from './harness.mjs';

export const SELKIES_VERSION = '2.1.0';
/** The venv Selkies lives in (outside the repo; reused across runs). */
export const SELKIES_VENV = process.env.SELKIES_VENV
  || path.join(os.homedir(), '.cache', 'oriel-bench', `selkies-${SELKIES_VERSION}`);
export const SELKIES_BIN = path.join(SELKIES_VENV, 'bin', 'selkies');
/** The page's WebRTC <video> (the client also has a hidden `#videoStream` for WebSockets mode). */
export const SELKIES_VIDEO = 'video#stream';

// Debian 12's own Python (3.11, the wheels' cp311 ABI); a fresh Debian has no
// pyenv, and Selkies 2.1.0 needs nothing from Debian's Python packages (no gi).
const PYTHON = process.env.SELKIES_PYTHON || '/usr/bin/python3';

// Debian packages Selkies needs here. python3-venv: venv + ensurepip for
// /usr/bin/python3. libgbm1, libpixman-1-0, libxkbcommon0: the libraries the
// pixelflux wheel leaves to the host (it bundles x264, x265, libvpx, SVT-AV1).
// x11-xserver-utils: xrandr/xrdb/xset, which Selkies runs on X11 (DPI at
// startup, display queries); without them it logs warnings and streams anyway.
export const SELKIES_DEBIAN_PACKAGES = ['python3-venv', 'libgbm1', 'libpixman-1-0', 'libxkbcommon0', 'x11-xserver-utils'];

function run(cmd, args, { timeoutMs = 600000, env = process.env } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, env, maxBuffer: 64 * 1024 * 1024 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

export function missingDebianPackages(pkgs = SELKIES_DEBIAN_PACKAGES) {
  return pkgs.filter((p) => !/install ok installed/.test(run('dpkg-query', ['-W', '-f=${Status}', p]).out));
}

/** The installed Selkies version in the venv, or null. */
export function selkiesVersion() {
  if (!fs.existsSync(SELKIES_BIN)) return null;
  const r = run(path.join(SELKIES_VENV, 'bin', 'python'),
    ['-c', 'import importlib.metadata as m, pixelflux; print(m.version("selkies"), m.version("pixelflux"))'], { timeoutMs: 60000 });
  return r.ok ? r.out.trim() : null;
}

/**
 * Makes sure Selkies 2.1.0 can run: the missing Debian packages (apt-get,
 * as scripts/install-deps.sh does it), the venv (only if missing), and
 * selkies==2.1.0 in it. Wheels only (`--only-binary :all:`): every
 * dependency has a cp311 manylinux wheel, and a source build on 2 cores
 * would take long and is not what is being compared. Returns
 * `{bin, venv, versions}` (versions: "selkies pixelflux").
 */
export async function ensureSelkies() {
  const missing = missingDebianPackages();
  if (missing.length) {
    log(`selkies: installing Debian packages ${missing.join(' ')}`);
    // As root (the benchmarks' case) straight; otherwise through sudo, as install-deps.sh does.
    const aptGet = (args) => (process.getuid?.() === 0 ? ['apt-get', args] : ['sudo', ['apt-get', ...args]]);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const upd = run(...aptGet(['update', '-qq']), { env });
    if (!upd.ok) throw new Error(`apt-get update failed:\n${upd.out.slice(-2000)}`);
    const inst = run(...aptGet(['install', '-y', '-qq', '--no-install-recommends', ...missing]), { env });
    if (!inst.ok) throw new Error(`apt-get install ${missing.join(' ')} failed:\n${inst.out.slice(-2000)}`);
  }
  let versions = selkiesVersion();
  if (!versions?.startsWith(`${SELKIES_VERSION} `)) {
    if (!fs.existsSync(path.join(SELKIES_VENV, 'bin', 'python'))) {
      log(`selkies: creating the venv ${SELKIES_VENV}`);
      fs.mkdirSync(path.dirname(SELKIES_VENV), { recursive: true });
      const v = run(PYTHON, ['-m', 'venv', SELKIES_VENV]);
      if (!v.ok) throw new Error(`${PYTHON} -m venv ${SELKIES_VENV} failed:\n${v.out.slice(-2000)}`);
    }
    log(`selkies: pip install selkies==${SELKIES_VERSION} (wheels only)`);
    const pip = run('nice', ['-n', '19', path.join(SELKIES_VENV, 'bin', 'python'), '-m', 'pip', 'install', '-q',
      '--disable-pip-version-check', '--only-binary', ':all:', `selkies==${SELKIES_VERSION}`], { timeoutMs: 900000 });
    if (!pip.ok) throw new Error(`pip install selkies==${SELKIES_VERSION} failed:\n${pip.out.slice(-3000)}`);
    versions = selkiesVersion();
    if (!versions?.startsWith(`${SELKIES_VERSION} `)) throw new Error(`selkies ${SELKIES_VERSION} not importable after install (got ${versions})`);
  }
  return { bin: SELKIES_BIN, venv: SELKIES_VENV, versions };
}

/** The page to open (127.0.0.1, not localhost: Selkies bounces a page on ::1, which gathers no ICE host candidates). */
export function selkiesPageUrl({ port, host = '127.0.0.1', hash = '' } = {}) {
  return `http://${host}:${port}/${hash}`;
}

function screenSize(display) {
  const r = run('xdpyinfo', ['-display', display], { timeoutMs: 15000 });
  const m = r.out.match(/dimensions:\s+(\d+)x(\d+) pixels/);
  return m ? { width: +m[1], height: +m[2] } : null;
}

/**
 * Starts Selkies on X `display` in WebRTC mode, software H.264 (x264), at
 * `framerate` and `bitrateKbps` (both locked, so the page cannot change
 * them), no login, loopback only, no STUN/TURN (an empty RTC config file:
 * the defaults would name Google's STUN and a public TURN), audio,
 * clipboard, gamepads, printing and resizing off. Resolves once the page is
 * served and the WebRTC mode is up. `extraArgs` go last (a later flag wins
 * in argparse), e.g. `['--video-streaming-mode', 'false']`.
 * Returns {rec, pid, port, url, dir, args}.
 */
export async function startSelkies({ display, width, height, framerate = 30, port = null, bitrateKbps = 4000, extraArgs = [], env = {}, startMs = 60000 } = {}) {
  if (!fs.existsSync(SELKIES_BIN)) throw new Error(`selkies missing: ${SELKIES_BIN} (call ensureSelkies() first)`);
  const size = screenSize(display);
  if (!size) throw new Error(`cannot read the size of display ${display}`);
  if ((width && size.width !== width) || (height && size.height !== height)) {
    throw new Error(`display ${display} is ${size.width}x${size.height}, not ${width}x${height} (Selkies captures the screen as it is)`);
  }
  port ??= await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-bench-selkies-'));
  tmpDirs.push(dir);
  // Selkies keeps files under HOME (~/Desktop for transfers, ~/.local/state
  // for printing) and sockets under XDG_RUNTIME_DIR: private ones per run.
  for (const d of ['home', 'run']) fs.mkdirSync(path.join(dir, d), { mode: 0o700 });
  // Its RTC config file wins over every other STUN/TURN source; it must not
  // be group/world-writable or Selkies ignores it.
  const rtc = path.join(dir, 'rtc.json');
  fs.writeFileSync(rtc, JSON.stringify({ iceServers: [] }), { mode: 0o600 });
  const args = [
    '--mode', 'webrtc', '--enable-dual-mode', 'false',
    '--addr', '127.0.0.1', '--port', String(port),
    '--enable-basic-auth', 'false',
    // h264enc is x264 in the PyPI pixelflux (pixelflux.SOFTWARE_ENCODERS);
    // a single value locks the menu. use-cpu locked and gpu-id -1: software
    // only, and no hardware probe at startup.
    '--encoder', 'h264enc', '--use-cpu', 'true|locked', '--gpu-id', '-1',
    '--framerate', `${framerate}-${framerate}`,
    '--video-bitrate', `${bitrateKbps}-${bitrateKbps}`, '--rate-control-mode', 'cbr',
    '--rtc-config-json', rtc,
    '--enable-resize', 'false',
    '--audio-enabled', 'false', '--microphone-enabled', 'false', '--webcam-enabled', 'false',
    '--gamepad-enabled', 'false', '--printing-enabled', 'false', '--enable-clipboard', 'false',
    ...extraArgs,
  ];
  // Pinned like oriel when the bench asks (CFG.taskset); taskset execs it.
  const pin = pinned();
  const rec = start('selkies', pin.length ? pin[0] : SELKIES_BIN, pin.length ? [...pin.slice(1), SELKIES_BIN, ...args] : args, childEnv({
    DISPLAY: display, HOME: path.join(dir, 'home'), XDG_RUNTIME_DIR: path.join(dir, 'run'),
    PYTHONUNBUFFERED: '1',
    // Its own settings come from SELKIES_* and a few generic names
    // (PASSWORD, USER, ...): keep the parent's out.
    PASSWORD: null, PASSWD: null, CUSTOM_WS_PORT: null, SUBFOLDER: null, ...env,
  }));
  await waitForLine(rec, /Selkies server running on/, startMs, 'Selkies to listen');
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (rec.exitCode !== undefined) throw new Error(`selkies exited:\n${rec.log.slice(-30).join('\n')}`);
    const res = await fetch(`${base}/api/status`, { signal: AbortSignal.timeout(3000) });
    const st = res.ok ? await res.json() : null;
    return st?.current_mode === 'webrtc' && (await fetch(`${base}/`, { signal: AbortSignal.timeout(3000) })).ok;
  }, 20000, 'Selkies to serve its page in WebRTC mode', 200);
  return { rec, pid: rec.child.pid, port, url: selkiesPageUrl({ port }), dir, args };
}

/** Stops Selkies (SIGTERM to its group, then SIGKILL) and drops it from the harness's children. */
export async function stopSelkies(s) {
  await stopChild(s.rec, 8000);
  const i = children.indexOf(s.rec);
  if (i >= 0) children.splice(i, 1);
}

/**
 * Pids of every process of this Selkies: its process group (start() gives
 * it one), so helpers it runs (xrandr, the GPU probe, pixelflux's encoder
 * probe) count while they live. Sum them with procCpuSec/procStatus.
 */
export function selkiesPids(s) {
  const pgid = s.rec.child.pid;
  const out = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[2]) === pgid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/**
 * What Selkies' log says about its encoder: its startup summary, the
 * software library per display ("encodes H.264 in software (x264)"), and
 * pixelflux's "Stream settings active" line (printed once a client makes
 * it capture). Null fields until the lines appear.
 */
export function selkiesEncoder(s) {
  const find = (re) => s.rec.log.map((l) => l.match(re)).filter(Boolean).pop() ?? null;
  const summary = find(/Selkies \S+ starting: .*/);
  const sw = find(/encodes (\S+) in software \(([^)]+)\)/);
  const px = find(/\[X11\] Stream settings active -> Res: (\d+)x(\d+) \| FPS: ([\d.]+) \| Encoder: ([^|]+?)\s*(\||$).*/);
  return {
    summary: summary?.[0] ?? null,
    software: sw ? { codec: sw[1], library: sw[2] } : null,
    pixelflux: px ? { width: +px[1], height: +px[2], fps: +px[3], encoder: px[4].trim(), line: px[0] } : null,
  };
}

/** Runs in the page: the state of Selkies' WebRTC <video>. */
function videoState(sel) {
  const v = document.querySelector(sel);
  if (!v) return null;
  if (!window.__selkiesRvfc && v.requestVideoFrameCallback) {
    window.__selkiesRvfc = { count: 0 };
    const cb = () => {
      window.__selkiesRvfc.count++;
      v.requestVideoFrameCallback(cb);
    };
    v.requestVideoFrameCallback(cb);
  }
  return {
    paused: v.paused, currentTime: v.currentTime, videoWidth: v.videoWidth, videoHeight: v.videoHeight,
    hasStream: !!v.srcObject, presented: window.__selkiesRvfc?.count ?? 0, mdnsDropped: window.__selkiesMdnsDropped ?? null,
    // glass.mjs's recorder hooks document.querySelector('video'): is that this one?
    firstVideo: document.querySelector('video') === v,
    videos: [...document.querySelectorAll('video')].map((x) => x.id || x.className || '(anon)'),
  };
}

/**
 * Opens Selkies' page in `browser` (a playwright Browser or BrowserContext,
 * e.g. the harness's launchBrowser()) and resolves once its WebRTC <video>
 * presents frames (requestVideoFrameCallback fired `minFrames` times, a
 * size known). No click is sent: a click on this page is input into the
 * shared X display. The harness's Chromium flags allow autoplay, and a
 * paused video is started with play() from script instead.
 * Returns {page, video: SELKIES_VIDEO, state, firstFrameMs}.
 */
export async function openSelkiesPage(browser, url, { timeoutMs = 30000, minFrames = 5 } = {}) {
  const page = await browser.newPage();
  page.on('pageerror', (e) => log(`selkies page error: ${e.message}`));
  // Chromium hides its host addresses behind mDNS names (`<uuid>.local`).
  // Selkies' ICE would resolve those by multicast queries on the LAN
  // interface; oriel drops such candidates and learns the page's address
  // from its connectivity checks (peer-reflexive). Do the same for Selkies:
  // the page's signaling messages ("<peer> {"ice": ...}" and the answer's
  // a=candidate lines) lose their .local candidates before they are sent.
  await page.addInitScript(() => {
    const send = WebSocket.prototype.send;
    window.__selkiesMdnsDropped = 0;
    const isMdns = (c) => /^\S+ \d+ \S+ \d+ \S+\.local /.test(String(c ?? '').replace(/^a=/, '').replace(/^candidate:/, ''));
    WebSocket.prototype.send = function (data) {
      const m = typeof data === 'string' ? data.match(/^(\S+) (\{.*)$/s) : null;
      if (m) {
        try {
          const msg = JSON.parse(m[2]);
          if (msg.ice && isMdns(msg.ice.candidate)) {
            window.__selkiesMdnsDropped++;
            return undefined;
          }
          if (msg.sdp?.sdp && /\.local /.test(msg.sdp.sdp)) {
            msg.sdp = { type: msg.sdp.type, sdp: msg.sdp.sdp.split('\r\n').filter((l) => !(l.startsWith('a=candidate:') && isMdns(l))).join('\r\n') };
            return send.call(this, `${m[1]} ${JSON.stringify(msg)}`);
          }
        } catch {
          /* not signaling JSON */
        }
      }
      return send.call(this, data);
    };
  });
  const t0 = Date.now();
  await page.goto(url, { waitUntil: 'load', timeout: 20000 });
  let state;
  try {
    state = await waitFor(async () => {
      const st = await page.evaluate(videoState, SELKIES_VIDEO);
      if (st?.hasStream && st.paused) await page.evaluate((sel) => document.querySelector(sel)?.play().catch(() => {}), SELKIES_VIDEO);
      return st && st.presented >= minFrames && st.videoWidth > 0 ? st : null;
    }, timeoutMs, "Selkies' video to present frames", 100);
  } catch (e) {
    const shot = path.join(os.tmpdir(), `oriel-bench-selkies-page-${Date.now()}.png`);
    await page.screenshot({ path: shot }).catch(() => {});
    throw new Error(`${e.message} (screenshot ${shot})`);
  }
  if (!state.firstVideo) log(`selkies: ${SELKIES_VIDEO} is not the page's first <video> (${state.videos.join(', ')}): hook it by that selector`);
  return { page, video: SELKIES_VIDEO, state, firstFrameMs: Date.now() - t0 };
}

/** Presented frames per second over `ms`, and the size, from the page's rVFC counter (openSelkiesPage installed it). */
export async function selkiesPresentedRate(page, ms = 10000) {
  const a = await page.evaluate(videoState, SELKIES_VIDEO);
  const t = Date.now();
  await sleep(ms);
  const b = await page.evaluate(videoState, SELKIES_VIDEO);
  const sec = (Date.now() - t) / 1000;
  return { frames: b.presented - a.presented, seconds: sec, fps: (b.presented - a.presented) / sec, videoWidth: b.videoWidth, videoHeight: b.videoHeight };
}
