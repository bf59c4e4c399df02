// The page: owns the session lifecycle (connect, reconnect with backoff),
// the status banner, the buttons, frame counting and the test hook
// `window.oriel`. Wire format lives in signalling.js, WebRTC in peer.js,
// numbers in stats.js.

import { Signalling } from './signalling.js';
import { Peer } from './peer.js';
import { StatsPoller } from './stats.js';
import { InputCapture } from './input.js';
import { ControlPanel } from './control.js';
import { Sound } from './sound.js';
import { Microphone } from './microphone.js';
import { Clipboard } from './clipboard.js';
import { Pointer } from './pointer.js';
import { Resizer } from './resize.js';
import { Files } from './files.js';

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 8000;
const MAX_ERRORS_KEPT = 50;
// A session whose WebRTC connection is not up this long after the socket
// opened is stuck (lost offer, blocked ICE): start over rather than hang.
const CONNECT_TIMEOUT_MS = 15000;

const $ = (id) => document.getElementById(id);
const video = $('video');
const banner = $('banner');
const bannerText = $('banner-text');
const bannerDetail = $('banner-detail');
const statsEl = $('stats');

const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;

// The link's capability token travels in the URL fragment, which browsers
// never send to servers. It is read once and never logged.
const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
const displayName = (() => {
  try {
    return localStorage.getItem('oriel.name');
  } catch {
    return null;
  }
})();
// Refusals that a retry cannot fix: stop reconnecting and say why.
const FINAL_ERRORS = new Set(['unauthorized', 'roleTaken', 'unsupportedProtocol', 'rateLimited']);
// Session ends a retry cannot undo (the link is gone, or another tab took the seat).
const FINAL_BYE = /revoked|replaced/;
const NEEDS_LINK = "This page needs a link from the agent's owner (oriel link create)";
const stats = new StatsPoller();
// `?ice=relay` in the page URL: only TURN-relayed paths (tests, or to check
// a TURN setup). Anything else: every path.
const iceTransportPolicy = new URLSearchParams(location.search).get('ice') === 'relay' ? 'relay' : 'all';

// Page-wide state (survives reconnects).
const page = {
  session: null, // the current session, see newSession()
  stopped: false, // true after disconnect()/pagehide: no automatic reconnect
  backoffMs: BACKOFF_MIN_MS,
  retryTimer: null,
  retryAt: 0,
  connects: 0, // WebSocket sessions that reached 'open'
  errors: [],
  detail: '', // last error/bye text, shown in the banner until video plays again
  firstFrameSinceLoadMs: null,
  refused: null, // why the agent will not let this page in; no reconnect then
  refusedTitle: '', // banner heading for `refused`
  role: null,
  slot: null,
  input: null, // {backend, gamepads} from welcome
  participants: [],
  iceServers: [], // from the last welcome (credentials minted for that session)
  iceError: null, // last STUN/TURN problem; cleared when video plays
  captureLost: null, // why the agent's capture is down (its display died), or null
  captureWaiting: false, // down because the desktop has to allow it (e.g. a sharing dialog)
  peerConnections: 0, // RTCPeerConnections made by this page
};

/** Everything that belongs to one WebSocket + RTCPeerConnection pair. */
function newSession() {
  return {
    sig: null,
    peer: null,
    stream: null,
    peerId: null,
    agentState: null, // last peerState from the agent
    openedAt: null, // performance.now() at WebSocket open
    firstFrameSinceConnectMs: null,
    framesPresented: 0,
    lastPresentedFrames: null, // rVFC metadata.presentedFrames at the last callback
    reachedConnected: false,
    ended: false,
    watchdog: null,
  };
}

function recordError(text) {
  page.errors.push(text);
  if (page.errors.length > MAX_ERRORS_KEPT) page.errors.shift();
  page.detail = text;
  console.warn('oriel:', text);
  updateBanner();
}

// ---------------------------------------------------------------- sessions

function connect() {
  clearRetry();
  endSession(true);
  page.stopped = false;
  page.captureLost = null; // the agent says again after welcome if it still is
  const s = newSession();
  page.session = s;
  s.sig = new Signalling(wsUrl, { token, name: displayName }, {
    onOpen: () => {
      if (page.session !== s) return;
      page.connects += 1;
      s.openedAt = performance.now();
      s.watchdog = setTimeout(() => {
        // While the display is lost no offer can come: that is not stuck.
        if (page.session === s && !s.reachedConnected && page.captureLost === null) {
          const why = page.iceError ? `: ${page.iceError}` : '';
          sessionLost(s, `no WebRTC connection ${CONNECT_TIMEOUT_MS / 1000} s after joining${why}`);
        }
      }, CONNECT_TIMEOUT_MS);
      updateBanner();
    },
    onMessage: (msg) => {
      if (page.session === s) onMessage(s, msg);
    },
    onClose: (ev) => {
      if (page.session === s) sessionLost(s, closeReason(ev));
    },
  });
  updateBanner();
}

/**
 * Why the socket closed, for the banner and status().errors, when the agent
 * said (e.g. `1008: no hello within 10 s`, `1009: message too big...`) or the
 * connection broke; null after a normal close. A refused upgrade (the
 * agent's connection limits answer 429/503) shows as 1006: browsers do not
 * hand the HTTP answer to the page.
 */
function closeReason(ev) {
  if (!ev || ev.code === 1000 || ev.code === 1005) return null;
  return `connection closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`;
}

function ensurePeer(s) {
  if (s.peer) return s.peer;
  page.peerConnections += 1;
  sound.reset();
  s.peer = new Peer({
    send: (msg) => s.sig.send(msg),
    iceServers: page.iceServers,
    iceTransportPolicy,
    onIceProblem: (message) => {
      if (page.session !== s) return;
      if (page.iceError !== message) recordError(message);
      page.iceError = message;
      updateBanner();
    },
    onTrack: (stream) => {
      if (page.session !== s) return;
      sound.onTrack(stream);
      microphone.refresh();
      if (s.stream === stream && video.srcObject === stream) return;
      s.stream = stream;
      video.srcObject = stream;
      s.lastPresentedFrames = null;
      video.play().catch(() => {
        /* autoplay is allowed because the video is muted; ignore races */
      });
    },
    onStateChange: (state) => {
      if (page.session !== s) return;
      microphone.refresh();
      if (state === 'connected') {
        s.reachedConnected = true;
        sound.settled();
      }
      // 'disconnected' may heal by itself; 'failed' will not.
      if (state === 'failed') sessionLost(s, 'WebRTC connection failed');
      updateBanner();
    },
    onError: (message) => {
      if (page.session !== s) return;
      recordError(message);
    },
    onChannel: (ch) => {
      if (page.session !== s) return;
      clipboard.onChannel(ch);
      pointer.onChannel(ch);
      files.onChannel(ch);
    },
  });
  stats.attach(s.peer);
  microphone.attach(s.peer);
  clipboard.reset();
  pointer.reset();
  files.reset();
  return s.peer;
}

function onMessage(s, msg) {
  switch (msg.type) {
    case 'welcome':
      s.peerId = typeof msg.peerId === 'number' ? msg.peerId : null;
      page.role = typeof msg.role === 'string' ? msg.role : null;
      page.slot = typeof msg.slot === 'number' ? msg.slot : null;
      page.input = msg.input && typeof msg.input === 'object' ? msg.input : null;
      page.iceServers = Array.isArray(msg.iceServers) ? msg.iceServers.filter(validIceServer) : [];
      renderWho();
      control.setRole(page.role);
      ensurePeer(s);
      // After ensurePeer (a new peer resets the clipboard's state).
      clipboard.told(page.role === 'controller', msg.clipboard === true);
      pointer.told(page.role);
      resizer.told(msg.resize === true);
      break;
    case 'participants':
      page.participants = Array.isArray(msg.participants) ? msg.participants : [];
      renderWho();
      break;
    case 'offer':
      if (typeof msg.sdp !== 'string') break;
      // A second offer on the same socket (the capture came back) belongs
      // to a new connection on the agent's side: start a fresh one.
      if (s.peer?.haveOffer) dropPeer(s);
      ensurePeer(s).handleOffer(msg.sdp);
      break;
    case 'capture':
      if (msg.state === 'lost' || msg.state === 'waiting') {
        page.captureLost = typeof msg.reason === 'string' && msg.reason ? msg.reason : 'display lost';
        page.captureWaiting = msg.state === 'waiting';
        // The agent dropped our media connection; a new offer follows when
        // the display is back. Closing ours now avoids a 'failed' → reconnect.
        dropPeer(s);
      } else if (msg.state === 'ok') {
        page.captureLost = null;
      }
      updateBanner();
      break;
    case 'ice':
      s.peer?.addRemoteCandidate(msg);
      break;
    case 'peerState':
      s.agentState = msg.state;
      break;
    case 'link':
      // The agent's view of this link (congestion estimate, encoder).
      s.link = {
        estimateKbps: msg.estimateKbps ?? null,
        encoderKbps: msg.encoderKbps,
        lossPermille: msg.lossPermille,
        retransmitted: msg.retransmitted,
        rung: msg.rung,
      };
      break;
    case 'pong':
      break;
    case 'error':
      recordError(`${msg.code ?? 'error'}: ${msg.message ?? ''}`.trim());
      if (FINAL_ERRORS.has(msg.code)) refuse(msg.message || msg.code, 'Not admitted');
      break;
    case 'bye':
      // The socket closes next; onClose schedules the reconnect, unless
      // the reason is one a retry cannot fix.
      page.lastBye = typeof msg.reason === 'string' ? msg.reason : '';
      if (page.refused === null) page.detail = `Agent ended the session${msg.reason ? `: ${msg.reason}` : ''}`;
      if (typeof msg.reason === 'string' && FINAL_BYE.test(msg.reason)) refuse(msg.reason, 'Disconnected');
      updateBanner();
      break;
    default:
      // Newer agents may add messages; ignoring them keeps old clients working.
      break;
  }
}

/** An RTCIceServer the browser will accept (a bad one would throw in the constructor). */
function validIceServer(x) {
  return (
    x && typeof x === 'object' && Array.isArray(x.urls) && x.urls.length > 0 &&
    x.urls.every((u) => typeof u === 'string' && /^(stun|turns?):/.test(u)) &&
    (x.username === undefined || typeof x.username === 'string') &&
    (x.credential === undefined || typeof x.credential === 'string')
  );
}

/** The agent will not take this page: stop for good and say why. */
function refuse(reason, title = '') {
  if (page.refused === null) {
    page.refused = reason;
    page.refusedTitle = title;
    page.detail = ''; // the heading says it already
  }
  page.stopped = true;
  clearRetry();
  updateBanner();
}

/** Role and participants, in the toolbar's "who" panel. */
function renderWho() {
  const who = $('who');
  if (!who) return;
  const me = page.session?.peerId ?? null;
  const label = (p) => `${p.name} — ${p.role}${typeof p.slot === 'number' ? ` (slot ${p.slot})` : ''}`;
  who.replaceChildren(
    ...page.participants.map((p) => {
      const li = document.createElement('li');
      li.textContent = label(p) + (p.peerId === me ? ' (you)' : '');
      return li;
    }),
  );
  const role = $('role');
  if (role) {
    // Say so when gamepads cannot work here (they need uinput on the agent).
    const noPads = page.role !== 'viewer' && page.input && page.input.gamepads === false;
    role.textContent = page.role
      ? `${page.role}${page.slot !== null ? ` · slot ${page.slot}` : ''}` +
        (noPads ? ' · gamepads unavailable on this desktop' : '')
      : '';
  }
  $('btn-type').hidden = page.role !== 'controller';
}

/** Close the session's RTCPeerConnection only; the socket stays. */
function dropPeer(s) {
  if (!s.peer) return;
  s.peer.close();
  s.peer = null;
  if (page.session === s) {
    microphone.attach(null);
    clipboard.reset();
    pointer.reset();
    files.reset();
  }
  stats.attach(null);
  s.lastPresentedFrames = null;
}

/** Close the current session's peer and socket (peer first, so no late media). */
function endSession(sayBye) {
  const s = page.session;
  if (!s || s.ended) return;
  s.ended = true;
  clearTimeout(s.watchdog);
  s.peer?.close();
  s.sig?.close(sayBye);
  if (video.srcObject && video.srcObject === s.stream) video.srcObject = null;
  stats.attach(null);
}

/** The socket closed or the peer failed: tear down and retry with backoff. */
function sessionLost(s, reason) {
  if (s.ended) return;
  if (reason) recordError(reason);
  endSession(true);
  if (page.stopped) return;
  if (s.reachedConnected) page.backoffMs = BACKOFF_MIN_MS;
  const delay = page.backoffMs;
  page.backoffMs = Math.min(page.backoffMs * 2, BACKOFF_MAX_MS);
  page.retryAt = performance.now() + delay;
  page.retryTimer = setTimeout(() => {
    page.retryTimer = null;
    connect();
  }, delay);
  updateBanner();
}

function clearRetry() {
  if (page.retryTimer !== null) clearTimeout(page.retryTimer);
  page.retryTimer = null;
}

/** Leave for good (tests, pagehide): bye, close, no reconnect. */
function disconnect() {
  page.stopped = true;
  clearRetry();
  endSession(true);
  updateBanner();
}

// ------------------------------------------------------------ frame counting

// requestVideoFrameCallback fires once per frame handed to the compositor,
// which is what the user sees; getStats' framesDecoded counts decoder output.
function onVideoFrame(_now, meta) {
  const s = page.session;
  if (s && !s.ended && video.srcObject && video.srcObject === s.stream) {
    const pf = meta.presentedFrames;
    // presentedFrames is per element and may skip when the compositor is busy.
    const delta =
      s.lastPresentedFrames !== null && pf > s.lastPresentedFrames ? pf - s.lastPresentedFrames : 1;
    s.lastPresentedFrames = pf;
    s.framesPresented += delta;
    if (s.firstFrameSinceConnectMs === null && s.openedAt !== null) {
      const t = performance.now();
      s.firstFrameSinceConnectMs = t - s.openedAt;
      if (page.firstFrameSinceLoadMs === null) page.firstFrameSinceLoadMs = t;
      page.detail = '';
      page.iceError = null;
      updateBanner();
    }
  }
  video.requestVideoFrameCallback(onVideoFrame);
}
if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
  video.requestVideoFrameCallback(onVideoFrame);
} else {
  console.warn('oriel: requestVideoFrameCallback unsupported; presented frames not counted');
}

// Video size changes (e.g. the desktop resolution changed) need no action
// beyond object-fit, but refresh the banner in case it was the first frame.
video.addEventListener('resize', updateBanner);

// ------------------------------------------------------------------ banner

function isPlaying(s) {
  return (
    !!s && !s.ended && s.firstFrameSinceConnectMs !== null && s.peer?.state === 'connected'
  );
}

function updateBanner() {
  const s = page.session;
  let text;
  if (page.refused !== null) {
    text = page.refusedTitle ? `${page.refusedTitle}: ${page.refused}` : page.refused;
  } else if (page.captureLost !== null && s && !s.ended) {
    text = page.captureWaiting ? 'Waiting for the desktop to allow sharing' : 'Display lost — waiting for it to come back';
  } else if (isPlaying(s)) {
    text = null;
  } else if (page.stopped) {
    text = 'Disconnected';
  } else if (page.retryTimer !== null) {
    const left = Math.max(0, page.retryAt - performance.now()) / 1000;
    text = `Disconnected — retrying in ${left < 1 ? left.toFixed(1) : Math.ceil(left)} s`;
  } else if (page.iceError !== null) {
    // The banner heading names the server and the reason, not a spinner.
    text = `Cannot connect: ${page.iceError}`;
  } else if (s?.peer?.state === 'disconnected') {
    text = 'Connection interrupted…';
  } else {
    text = 'Connecting…';
  }
  // While playing, a fresh error still shows (the user should know), without text.
  const detail = page.captureLost !== null && text !== null && page.refused === null ? page.captureLost : page.detail;
  banner.hidden = text === null && !detail;
  bannerText.textContent = text ?? '';
  bannerText.hidden = text === null;
  bannerDetail.textContent = detail;
}
// The countdown needs ticking; cheap enough to refresh a few times a second.
setInterval(() => {
  if (page.retryTimer !== null) updateBanner();
}, 250);

// ---------------------------------------------------------- stats overlay

let lastPresented = { t: performance.now(), n: 0, session: null };
let presentedFps = null;

function renderStats() {
  const s = page.session;
  const now = performance.now();
  const n = s?.framesPresented ?? 0;
  if (lastPresented.session === s && now > lastPresented.t) {
    presentedFps = ((n - lastPresented.n) * 1000) / (now - lastPresented.t);
  } else {
    presentedFps = null;
  }
  lastPresented = { t: now, n, session: s };
  if (statsEl.hidden) return;
  statsEl.textContent = stats.render({
    width: video.videoWidth,
    height: video.videoHeight,
    presentedFps,
    firstFrameMs: s?.firstFrameSinceConnectMs ?? null,
    pcState: s?.peer?.state ?? null,
    peerId: s?.peerId ?? null,
    link: s?.link ?? null,
  });
}
setInterval(renderStats, 1000);

function setStatsVisible(visible) {
  statsEl.hidden = !visible;
  try {
    localStorage.setItem('oriel.stats', visible ? '1' : '0');
  } catch {
    /* storage may be disabled */
  }
  renderStats();
}
function toggleStats() {
  setStatsVisible(statsEl.hidden);
}
{
  let saved = null;
  try {
    saved = localStorage.getItem('oriel.stats');
  } catch {
    /* storage may be disabled */
  }
  statsEl.hidden = saved === '0'; // visible by default
}

// ----------------------------------------------------------------- controls

const sound = new Sound(video, { button: $('btn-unmute'), volume: $('volume'), none: $('no-sound') });
const microphone = new Microphone($('btn-mic'), { onError: (m) => recordError(m) });
const clipboard = new Clipboard($('btn-copy'), $('clipboard-note'));
const pointer = new Pointer(video, $('remote-pointer'), $('pointer-note'));
const resizer = new Resizer((msg) => page.session?.sig?.send(msg));
const files = new Files($('btn-upload'), $('file-pick'), $('transfers'), video);
files.watchIdleFps();
// Typing the clipboard stays an explicit action (long text is better pasted).
$('btn-type').addEventListener('click', async () => {
  try {
    input.typeText(await navigator.clipboard.readText());
  } catch (e) {
    recordError(`cannot read this computer's clipboard: ${e.message}`);
  }
});

const fullscreenBtn = $('btn-fullscreen');
fullscreenBtn.addEventListener('click', () => {
  if (document.fullscreenElement) {
    document.exitFullscreen().catch(() => {});
  } else {
    // The whole page, so the toolbar and overlay stay usable in fullscreen.
    document.documentElement.requestFullscreen({ navigationUI: 'hide' }).catch((e) => {
      recordError(`fullscreen refused: ${e.message}`);
    });
  }
});
document.addEventListener('fullscreenchange', () => {
  fullscreenBtn.textContent = document.fullscreenElement ? 'Exit fullscreen' : 'Fullscreen';
});

$('btn-stats').addEventListener('click', toggleStats);
window.addEventListener('keydown', (ev) => {
  if (ev.ctrlKey && ev.altKey && ev.code === 'KeyS') {
    ev.preventDefault();
    toggleStats();
  }
});

// ------------------------------------------------------------- lifecycle

// Tell the agent right away instead of letting it time out after 30 s.
window.addEventListener('pagehide', () => disconnect());
// Back from the back/forward cache: the old session is gone, start a new one.
window.addEventListener('pageshow', (ev) => {
  if (ev.persisted) connect();
});

// ------------------------------------------------------------- test hook

/**
 * Stable hook for the e2e tests and benchmarks. status() is synchronous;
 * framesDecoded & co. come from getStats() polled every 250 ms.
 * framesPresented, firstFrameSinceConnectMs and the getStats counters are
 * per session (they restart at 0/null on reconnect); connects, errors and
 * firstFrameSinceLoadMs are per page. role/slot come from the last
 * `welcome`, participants is the last `participants` list as received, and
 * refused is why the page stopped for good (no token, unauthorized,
 * roleTaken, revoked, replaced) or null. iceError is the last STUN/TURN
 * problem (e.g. "TURN server turn:h:3478 refused the credentials (401)"),
 * null once video plays; iceTransportPolicy is 'relay' with ?ice=relay.
 * capture is 'lost' while the agent's
 * display is away (captureLost says why), peerConnections counts the
 * RTCPeerConnections this page made (a recovered capture means a new one
 * on the same session), banner is the banner's visible text, lastBye the
 * reason of the agent's last `bye`.
 */
window.oriel = {
  status() {
    const s = page.session;
    const st = stats.latest;
    return {
      ws: s?.sig?.state ?? 'closed',
      peerId: s?.peerId ?? null,
      pcState: s?.peer?.state ?? null,
      framesDecoded: st.framesDecoded,
      framesPresented: s?.framesPresented ?? 0,
      width: video.videoWidth,
      height: video.videoHeight,
      keyFramesDecoded: st.keyFramesDecoded,
      framesDropped: st.framesDropped,
      packetsLost: st.packetsLost,
      nackCount: st.nackCount,
      pliCount: st.pliCount,
      retransmittedPacketsReceived: st.retransmittedPacketsReceived,
      fecPacketsReceived: st.fecPacketsReceived,
      freezeCount: st.freezeCount,
      totalFreezesDuration: st.totalFreezesDuration,
      bytesReceived: st.bytesReceived,
      firstFrameSinceLoadMs: page.firstFrameSinceLoadMs,
      firstFrameSinceConnectMs: s?.firstFrameSinceConnectMs ?? null,
      connects: page.connects,
      errors: [...page.errors],
      role: page.role,
      slot: page.slot,
      input: page.input ? { ...page.input } : null,
      participants: page.participants.map((p) => ({ ...p })),
      refused: page.refused,
      iceError: page.iceError,
      localCandidateType: st.localCandidateType,
      remoteCandidateType: st.remoteCandidateType,
      iceTransportPolicy,
      capture: page.captureLost === null ? 'ok' : page.captureWaiting ? 'waiting' : 'lost',
      captureLost: page.captureLost,
      peerConnections: page.peerConnections,
      control: control.root.hidden ? null : control.last,
      banner: banner.hidden ? '' : `${bannerText.textContent} ${bannerDetail.textContent}`.trim(),
      link: s?.link ? { ...s.link } : null,
      lastBye: page.lastBye ?? null,
      sound: sound.status(),
      microphone: microphone.status(),
      clipboard: clipboard.status(),
      pointer: pointer.status(),
      resize: resizer.status(),
      files: files.status(),
    };
  },
  disconnect,
  /** Start a new session (after disconnect(), or to force a reconnect). */
  connect,
  /**
   * Send raw bytes on one of the agent's data channels (`input`/`motion`),
   * as any client could: the agent, not this page, decides what is allowed.
   */
  sendInput(label, bytes) {
    return page.session?.peer?.sendInput(label, new Uint8Array(bytes)) ?? false;
  },
  /**
   * Open a data channel of this page's own and send on it for `ms`, as a
   * misbehaving client could: the agent opens every channel itself and cuts
   * off a client that opens one. Resolves with what happened.
   */
  ownChannel(label, ms = 3000) {
    const pc = page.session?.peer?.pc;
    if (!pc) return Promise.resolve({ opened: false, sent: 0 });
    const ch = pc.createDataChannel(label);
    return new Promise((resolve) => {
      let opened = false;
      let sent = 0;
      const start = performance.now();
      const pump = () => {
        if (ch.readyState !== 'open' || performance.now() - start > ms) return resolve({ opened, sent, state: ch.readyState });
        try {
          for (let i = 0; i < 200; i++, sent++) ch.send(new Uint8Array([1, 0x10, 0, 1, 0, 1]));
        } catch {
          /* send queue full */
        }
        setTimeout(pump, 0);
      };
      ch.addEventListener('open', () => { opened = true; pump(); });
      setTimeout(() => { if (!opened) resolve({ opened, sent, state: ch.readyState }); }, ms);
    });
  },
  /** Stop download `id` (as its Stop button does). */
  stopDownload(id) {
    return files.stopDownload(id);
  },
  /** Cancel upload `id` (as its Cancel button does). */
  cancelUpload(id) {
    return files.cancel(id);
  },
  /** Send any signalling message, as any client could (the agent decides). */
  signal(msg) {
    page.session?.sig?.send(msg);
  },
  /** Whether both input channels are open. */
  inputReady() {
    const p = page.session?.peer;
    return !!p && ['input', 'motion'].every((l) => p.channels.get(l)?.readyState === 'open');
  },
};

// Publishing and recording, for the controller.
const control = new ControlPanel(document.getElementById('control'), token);

// Keyboard, mouse, wheel, touch and gamepads, sent as this page's role allows.
const input = new InputCapture(
  video,
  (label, buf) => page.session?.peer?.sendInput(label, buf) ?? false,
  () => page.role,
  () => clipboard.beforePaste(),
);
// Controlling a desktop wants the pointer and keys captured in fullscreen.
document.addEventListener('fullscreenchange', () => {
  if (document.fullscreenElement && page.role === 'controller') input.lock();
});

// A new link pasted into this tab changes only the fragment: start over with it.
window.addEventListener('hashchange', () => location.reload());

if (token) {
  connect();
} else {
  // Without a link there is nothing to present; do not even connect.
  refuse(NEEDS_LINK);
}
