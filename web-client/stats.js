// Receiver statistics: polls RTCPeerConnection.getStats() often enough for
// the test hook to be fresh (every 250 ms), derives rates over ~1 s, and
// renders the overlay text. Knows nothing about signalling or reconnects.

const POLL_MS = 250;
const RATE_WINDOW_MS = 1000;

/** Counters of one session, as last read from getStats(). */
function emptySnapshot() {
  return {
    framesDecoded: 0,
    keyFramesDecoded: 0,
    framesDropped: 0,
    bytesReceived: 0,
    frameWidth: 0,
    frameHeight: 0,
    rttMs: null,
    jitterBufferMs: null,
    packetsLost: 0,
    nackCount: 0,
    pliCount: 0,
    // Loss recovery, as the browser saw it: retransmissions (RTX) and FEC
    // that arrived, and freezes (Chromium: frames later than ~3x the
    // average frame interval).
    retransmittedPacketsReceived: 0,
    fecPacketsReceived: 0,
    freezeCount: 0,
    totalFreezesDuration: 0,
    // Candidate types of the selected pair (host, srflx, prflx, relay):
    // `relay` means the media goes through a TURN server.
    localCandidateType: null,
    remoteCandidateType: null,
  };
}

/** Pull the fields we show out of one RTCStatsReport. */
export function parseReport(report) {
  const snap = emptySnapshot();
  let selectedPairId = null;
  const pairs = [];
  const candidates = new Map();
  report.forEach((s) => {
    if (s.type === 'local-candidate' || s.type === 'remote-candidate') candidates.set(s.id, s);
    if (s.type === 'inbound-rtp' && (s.kind ?? s.mediaType) === 'video') {
      snap.framesDecoded = s.framesDecoded ?? 0;
      snap.keyFramesDecoded = s.keyFramesDecoded ?? 0;
      snap.framesDropped = s.framesDropped ?? 0;
      snap.bytesReceived = s.bytesReceived ?? 0;
      snap.frameWidth = s.frameWidth ?? 0;
      snap.frameHeight = s.frameHeight ?? 0;
      snap.packetsLost = s.packetsLost ?? 0;
      snap.nackCount = s.nackCount ?? 0;
      snap.pliCount = s.pliCount ?? 0;
      snap.retransmittedPacketsReceived = s.retransmittedPacketsReceived ?? 0;
      snap.fecPacketsReceived = s.fecPacketsReceived ?? 0;
      snap.freezeCount = s.freezeCount ?? 0;
      snap.totalFreezesDuration = s.totalFreezesDuration ?? 0;
      if (s.jitterBufferEmittedCount > 0) {
        snap.jitterBufferMs = (1000 * s.jitterBufferDelay) / s.jitterBufferEmittedCount;
      }
    } else if (s.type === 'transport' && s.selectedCandidatePairId) {
      selectedPairId = s.selectedCandidatePairId;
    } else if (s.type === 'candidate-pair') {
      pairs.push(s);
    }
  });
  // Prefer the transport's selected pair; fall back to a nominated, working one.
  const pair =
    pairs.find((p) => p.id === selectedPairId) ??
    pairs.find((p) => p.nominated && p.state === 'succeeded');
  if (pair && typeof pair.currentRoundTripTime === 'number') {
    snap.rttMs = pair.currentRoundTripTime * 1000;
  }
  if (pair) {
    snap.localCandidateType = candidates.get(pair.localCandidateId)?.candidateType ?? null;
    snap.remoteCandidateType = candidates.get(pair.remoteCandidateId)?.candidateType ?? null;
  }
  return snap;
}

export class StatsPoller {
  constructor() {
    this.peer = null;
    this.latest = emptySnapshot();
    this.history = []; // [{t, framesDecoded, bytesReceived}], newest last
    this.fps = 0;
    this.bitrateMbps = 0;
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.busy = false;
  }

  /** Follow a new session's peer (or null); counters start from zero. */
  attach(peer) {
    this.peer = peer;
    this.latest = emptySnapshot();
    this.history = [];
    this.fps = 0;
    this.bitrateMbps = 0;
  }

  async poll() {
    const peer = this.peer;
    if (!peer || peer.closed || this.busy) return;
    this.busy = true;
    try {
      const report = await peer.getStats();
      if (peer !== this.peer) return; // session changed while we waited
      const snap = parseReport(report);
      this.latest = snap;
      this.updateRates(performance.now(), snap);
    } catch {
      /* pc closed mid-call: the next session re-attaches */
    } finally {
      this.busy = false;
    }
  }

  updateRates(now, snap) {
    this.history.push({ t: now, framesDecoded: snap.framesDecoded, bytes: snap.bytesReceived });
    // Keep just enough history to span the rate window.
    while (this.history.length > 2 && now - this.history[1].t >= RATE_WINDOW_MS) {
      this.history.shift();
    }
    const old = this.history[0];
    const dt = (now - old.t) / 1000;
    if (dt > 0.2) {
      this.fps = (snap.framesDecoded - old.framesDecoded) / dt;
      this.bitrateMbps = ((snap.bytesReceived - old.bytes) * 8) / dt / 1e6;
    }
  }

  /** Overlay text; `extra` carries what the page knows (presented frames, first frame). */
  render(extra) {
    const s = this.latest;
    const fmt = (v, digits = 0, unit = '') => (v == null ? '–' : `${v.toFixed(digits)}${unit}`);
    return [
      `resolution   ${s.frameWidth || extra.width}x${s.frameHeight || extra.height}`,
      `fps          ${fmt(this.fps, 1)}  (presented ${fmt(extra.presentedFps, 1)})`,
      `bitrate      ${fmt(this.bitrateMbps, 2, ' Mbit/s')}`,
      `rtt          ${fmt(s.rttMs, 1, ' ms')}`,
      `jitter buf   ${fmt(s.jitterBufferMs, 1, ' ms')}`,
      `keyframes    ${s.keyFramesDecoded}`,
      `decoded      ${s.framesDecoded}`,
      `dropped      ${s.framesDropped}`,
      `lost pkts    ${s.packetsLost}  nack ${s.nackCount}  pli ${s.pliCount}`,
      `recovered    rtx ${s.retransmittedPacketsReceived}  fec ${s.fecPacketsReceived}`,
      `freezes      ${s.freezeCount}  (${fmt(s.totalFreezesDuration, 1, ' s')})`,
      `link         est ${fmt(extra.link?.estimateKbps, 0, ' kbit/s')}  encoder ${fmt(extra.link?.encoderKbps, 0, ' kbit/s')}`,
      `agent sees   loss ${fmt(extra.link ? extra.link.lossPermille / 10 : null, 1, ' %')}  rtx ${extra.link?.retransmitted ?? '–'}  rung ${extra.link?.rung ?? '–'}`,
      `first frame  ${fmt(extra.firstFrameMs, 0, ' ms')}`,
      `connection   ${extra.pcState ?? '–'}  peer ${extra.peerId ?? '–'}`,
      `path         ${s.localCandidateType ?? '–'} → ${s.remoteCandidateType ?? '–'}`,
    ].join('\n');
  }
}
