#!/usr/bin/env node
// oriel benchmark part `glass`: glass-to-glass latency. A probe program on
// the captured X display paints the wall-clock time as black/white blocks;
// Chromium reads the time back from every presented video frame and
// subtracts it from its own clock (same machine, same clock).
//
//   cd bench && node glass.mjs      (or `make bench-glass`)
//
// What it does, unattended (about 5 minutes on a 2-core machine):
//   1. For each of 720p30, 720p60, 1080p30: Xvfb with a screen of that size,
//      the harness's full-screen moving video beneath (scrolling SMPTE bars and
//      a clock at that frame rate, so x264 does its usual work on every frame),
//      and `examples/clock_probe` on top: a 1024x64 px band at the top-left
//      (2 rows of 32 cells of 32 px) that repaints CLOCK_REALTIME in ms
//      (40 bits + CRC-16, with marker cells) every millisecond, one atomic
//      CopyArea per paint, a round trip after each. The mover beneath rather
//      than a pattern drawn by the probe: the encoder sees the same content as
//      in the other parts, and the probe stays a small, cheap X client.
//   2. For each playout-delay setting, 0/0 (the agent's default) and off
//      (`--no-playout-delay`): a fresh agent on that display (`--framerate`),
//      one Chromium page (the same page throughout) opens the viewer link.
//   3. An injected script (page.evaluate; web-client/ is untouched) hooks
//      `video.requestVideoFrameCallback`: each presented frame's top band is
//      copied out (WebCodecs `new VideoFrame(video)` + `copyTo` of the band's
//      luma; a canvas drawImage where that fails, BENCH_GLASS_VIDEOFRAME=0
//      forces it), the cells are read (a cell whose centre is neither
//      clearly black nor clearly white, wrong marker cells or a bad CRC reject
//      the frame, counted by reason) and the time recorded with the frame's
//      metadata: presentationTime, expectedDisplayTime, receiveTime,
//      captureTime, rtpTimestamp (all + performance.timeOrigin).
//      Sanity checks: a decoded time after the frame's presentation time is
//      impossible and rejected (`future`); the copy can grab a newer frame
//      than the callback describes: frames whose VideoFrame.timestamp is not
//      the callback's mediaTime are rejected (`mismatch`; on the canvas path:
//      a painted time off its rtpTimestamp by > 0.6 frame intervals).
//      The headline is painted → presentationTime (frame handed to the
//      compositor); expectedDisplayTime is only an estimate in headless.
//   4. BENCH_GLASS_SECONDS (30) of samples per setting after BENCH_SETTLE_MS
//      (3000) of settling. getStats() (inbound-rtp video) is read before and
//      after the window for the browser's own averages (jitter buffer, decode,
//      processing delay), and the agent's /metrics for capture → encoded.
//   5. Raw results to bench/results/<date>-glass.json, BENCHMARKS.md
//      regenerated (bench/report.mjs), a summary on stdout.
//
// Knobs (environment): ORIEL_BIN, CHROMIUM, CLOCK_PROBE (the probe binary;
// default: examples/clock_probe next to the agent), BENCH_GLASS_SECONDS (30),
// BENCH_GLASS_BLOCK (32, cell size in px), BENCH_GLASS_VIDEOFRAME (1),
// BENCH_GLASS_CONFIGS
// ("720p30,720p60,1080p30"), BENCH_GLASS_MODES ("0/0,off"), BENCH_SETTLE_MS
// (3000), BENCH_NO_MARKDOWN=1 (experiments: leave BENCHMARKS.md and results/
// alone), BENCH_TIMEOUT_MS, BENCH_AGENT_ARGS (extra agent arguments).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  CFG, childEnv, children, chromiumPids, envNum, fmt, launchBrowser, log, machineInfo, agentInfo, median, pidsCpuSec,
  procCpuSec, quantile, round1, sleep, start, startAgent, startDisplay, stopChild, sysCpu, waitClients,
  waitForLine, waitPresented,
} from './lib/harness.mjs';
import { agentWarnings, isMain, readingAndOddities, runPart, saveAgentLog } from './lib/run.mjs';
import { SELKIES_VIDEO, ensureSelkies, openSelkiesPage, selkiesEncoder, startSelkies, stopSelkies } from './lib/selkies.mjs';

export const ALL_CONFIGS = {
  '720p30': { width: 1280, height: 720, framerate: 30 },
  '720p60': { width: 1280, height: 720, framerate: 60 },
  '1080p30': { width: 1920, height: 1080, framerate: 30 },
};
const ALL_MODES = {
  '0/0': { args: [], label: '0/0 (default)' },
  off: { args: ['--no-playout-delay'], label: 'off' },
  // Not oriel: Selkies 2.1 on the same display, probe and page reader.
  selkies: { selkies: true, label: 'Selkies 2.1' },
};

export const GLASS = {
  seconds: envNum('BENCH_GLASS_SECONDS', 30),
  block: envNum('BENCH_GLASS_BLOCK', 32),
  configs: (process.env.BENCH_GLASS_CONFIGS || '720p30,720p60,1080p30').split(',').filter((c) => ALL_CONFIGS[c]),
  modes: (process.env.BENCH_GLASS_MODES || '0/0,off,selkies').split(',').filter((m) => ALL_MODES[m]),
  // Read frames through WebCodecs' VideoFrame (1) or a canvas (0).
  videoFrame: envNum('BENCH_GLASS_VIDEOFRAME', 1) === 1,
  probe: process.env.CLOCK_PROBE || path.join(path.dirname(CFG.bin), 'examples', 'clock_probe'),
};

// ---------------------------------------------------------- in the page

/**
 * Runs in the page (page.evaluate): installs window.__glass, a recorder fed by
 * requestVideoFrameCallback. The grid follows examples/clock_probe.rs: 2 rows
 * x 32 cells of `block` px from the top-left corner; per row white, black,
 * 28 data cells, black, white; data = 40 bits of ms mod 2^40, then their
 * CRC-16/CCITT-FALSE, MSB first, white = 1.
 */
function installRecorder(cfg) {
  const video = document.querySelector(cfg.selector ?? 'video');
  if (!video) throw new Error('no <video> element on the page');
  const COLS = 32;
  const ROWS = 2;
  const DATA = 28;
  // A cell's centre must be clearly white or clearly black; in between is a
  // blend of two paints or encoder smear, and rejects the frame.
  const WHITE_MIN = 160;
  const BLACK_MAX = 96;
  const canvas = document.createElement('canvas');
  const g = canvas.getContext('2d', { willReadFrequently: true, alpha: false });
  const crc16 = (bytes) => {
    let crc = 0xffff;
    for (const b of bytes) {
      crc ^= b << 8;
      for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc;
  };
  const abs = (t) => (t === undefined || t === null ? null : performance.timeOrigin + t);

  // The band's pixels as luma: straight from the decoded frame's Y plane
  // when WebCodecs can copy it out (VideoFrame.copyTo with a rect: only the
  // band, no RGB conversion), else through a canvas (drawImage converts the
  // whole frame to RGB in software here: ~10x the work).
  async function grab(bw, bh) {
    if (cfg.useVideoFrame && typeof VideoFrame === 'function') {
      let frame;
      try {
        frame = new VideoFrame(video);
        const ts = frame.timestamp;
        const fmt = frame.format;
        const vr = frame.visibleRect;
        const rect = { x: vr.x, y: vr.y, width: Math.min(vr.width, bw + (bw & 1)), height: Math.min(vr.height, bh + (bh & 1)) };
        if (/^(I4|NV12)/.test(fmt ?? '')) {
          const buf = new Uint8Array(frame.allocationSize({ rect }));
          const layout = await frame.copyTo(buf, { rect });
          const { offset, stride } = layout[0];
          return { via: 'videoframe', ts, lum: (x, y) => buf[offset + y * stride + x] };
        }
        if (/^(RGB|BGR)/.test(fmt ?? '')) {
          const buf = new Uint8Array(frame.allocationSize({ rect }));
          const layout = await frame.copyTo(buf, { rect });
          const { offset, stride } = layout[0];
          return { via: 'videoframe', ts, lum: (x, y) => { const i = offset + y * stride + x * 4; return (buf[i] + buf[i + 1] + buf[i + 2]) / 3; } };
        }
      } catch (e) {
        rec.videoFrameErrors = (rec.videoFrameErrors ?? 0) + 1;
        rec.videoFrameError = String(e);
      } finally {
        frame?.close();
      }
    }
    if (canvas.width !== bw || canvas.height !== bh) {
      canvas.width = bw;
      canvas.height = bh;
    }
    g.drawImage(video, 0, 0, bw, bh, 0, 0, bw, bh);
    const px = g.getImageData(0, 0, bw, bh).data;
    return { via: 'canvas', lum: (x, y) => { const i = (y * bw + x) * 4; return (px[i] + px[i + 1] + px[i + 2]) / 3; } };
  }

  async function decode(nowAbs) {
    const w = video.videoWidth;
    const h = video.videoHeight;
    if (!w || !h) return { err: 'size' };
    const sx = w / cfg.screenWidth;
    const sy = h / cfg.screenHeight;
    const bw = Math.min(w, Math.ceil(COLS * cfg.block * sx));
    const bh = Math.min(h, Math.ceil(ROWS * cfg.block * sy));
    const { via, ts, lum: at } = await grab(bw, bh);
    rec.via[via] = (rec.via[via] ?? 0) + 1;
    const cells = [];
    let worst = 255; // distance of the least clear cell from its threshold
    for (let r = 0; r < ROWS; r++) {
      for (let c = 0; c < COLS; c++) {
        // The centre half of the cell: its edges bleed into the neighbours.
        const x0 = Math.floor((c + 0.25) * cfg.block * sx);
        const x1 = Math.max(x0 + 1, Math.floor((c + 0.75) * cfg.block * sx));
        const y0 = Math.floor((r + 0.25) * cfg.block * sy);
        const y1 = Math.max(y0 + 1, Math.floor((r + 0.75) * cfg.block * sy));
        let sum = 0;
        let n = 0;
        for (let y = y0; y < y1; y += 2) {
          for (let x = x0; x < x1; x += 2) {
            sum += at(x, y);
            n++;
          }
        }
        const lum = sum / n;
        cells.push(lum);
        worst = Math.min(worst, lum >= 128 ? lum - WHITE_MIN : BLACK_MAX - lum);
      }
    }
    if (worst < 0) return { err: 'margin', cells };
    const bit = cells.map((l) => (l >= 128 ? 1 : 0));
    for (let r = 0; r < ROWS; r++) {
      const o = r * COLS;
      if (bit[o] !== 1 || bit[o + 1] !== 0 || bit[o + COLS - 2] !== 0 || bit[o + COLS - 1] !== 1) return { err: 'markers', cells };
    }
    const data = [];
    for (let r = 0; r < ROWS; r++) for (let c = 2; c < 2 + DATA; c++) data.push(bit[r * COLS + c]);
    // 40 time bits as a float (bitwise ops are 32-bit in JS), then the CRC.
    let t = 0;
    for (let i = 0; i < 40; i++) t = t * 2 + data[i];
    let crc = 0;
    for (let i = 40; i < 56; i++) crc = crc * 2 + data[i];
    const bytes = [];
    for (let i = 0; i < 5; i++) {
      let b = 0;
      for (let j = 0; j < 8; j++) b = b * 2 + data[i * 8 + j];
      bytes.push(b);
    }
    if (crc16(bytes) !== crc) return { err: 'crc', cells };
    // ms modulo 2^40: the nearest full value to the page's own clock.
    const wrap = 2 ** 40;
    const painted = t + wrap * Math.round((nowAbs - t) / wrap);
    return { painted, worst, ts: ts ?? null };
  }

  const rec = {
    running: false,
    samples: [],
    rejects: { size: 0, margin: 0, markers: 0, crc: 0, error: 0 },
    examples: [],
    via: {},
    callbacks: 0,
    decodeMs: 0,
    firstPresentedFrames: null,
    lastPresentedFrames: null,
  };
  async function onFrame(now, meta) {
    if (!rec.running) return;
    // Ask for the next frame first: reading this one may take a while.
    video.requestVideoFrameCallback(onFrame);
    rec.callbacks++;
    if (rec.firstPresentedFrames === null) rec.firstPresentedFrames = meta.presentedFrames;
    rec.lastPresentedFrames = meta.presentedFrames;
    const t0 = performance.now();
    let d;
    try {
      d = await decode(performance.timeOrigin + meta.presentationTime);
    } catch (e) {
      d = { err: 'error', message: String(e) };
    }
    rec.decodeMs += performance.now() - t0;
    if (d.err) {
      rec.rejects[d.err] = (rec.rejects[d.err] ?? 0) + 1;
      if (rec.examples.length < 5) rec.examples.push({ err: d.err, message: d.message, cells: d.cells?.map((l) => Math.round(l)) });
    } else {
      rec.samples.push([
        d.painted,
        abs(meta.presentationTime),
        abs(meta.expectedDisplayTime),
        abs(meta.receiveTime),
        abs(meta.captureTime),
        meta.rtpTimestamp ?? null,
        abs(now),
        meta.presentedFrames,
        meta.processingDuration ?? null,
        Math.round(d.worst),
        meta.mediaTime ?? null,
        d.ts,
      ]);
    }
  }
  // Median of a few reads: a preemption between the two reads skews one.
  const clockSkew = () => {
    const d = [];
    for (let i = 0; i < 21; i++) d.push(Date.now() - (performance.timeOrigin + performance.now()));
    return d.sort((x, y) => x - y)[10];
  };
  window.__glass = {
    start() {
      Object.assign(rec, { running: true, samples: [], callbacks: 0, decodeMs: 0, firstPresentedFrames: null, lastPresentedFrames: null, examples: [], via: {}, videoFrameErrors: 0, videoFrameError: null });
      for (const k of Object.keys(rec.rejects)) rec.rejects[k] = 0;
      rec.skewStart = clockSkew();
      video.requestVideoFrameCallback(onFrame);
    },
    stop() {
      rec.running = false;
      return {
        samples: rec.samples, rejects: rec.rejects, examples: rec.examples, callbacks: rec.callbacks,
        via: rec.via, videoFrameErrors: rec.videoFrameErrors, videoFrameError: rec.videoFrameError,
        decodeMsPerCallback: rec.callbacks ? rec.decodeMs / rec.callbacks : null,
        presentedFrames: rec.firstPresentedFrames === null ? 0 : rec.lastPresentedFrames - rec.firstPresentedFrames + 1,
        // Date.now() against timeOrigin + performance.now(): how far the
        // page's two clocks disagree (the probe paints CLOCK_REALTIME).
        skewStartMs: rec.skewStart, skewEndMs: clockSkew(),
        videoWidth: video.videoWidth, videoHeight: video.videoHeight,
      };
    },
  };
}

/** Runs in the page: the RTCPeerConnection handle kept by installPcHook. */
async function inboundStats() {
  const pc = (window.__glassPcs ?? []).filter((p) => p.connectionState !== 'closed').pop();
  if (!pc) return null;
  const out = { at: performance.now() };
  for (const x of (await pc.getStats()).values()) {
    if (x.type === 'inbound-rtp' && (x.kind ?? x.mediaType) === 'video') {
      for (const k of ['jitterBufferDelay', 'jitterBufferTargetDelay', 'jitterBufferMinimumDelay', 'jitterBufferEmittedCount',
        'totalDecodeTime', 'framesDecoded', 'totalProcessingDelay', 'totalAssemblyTime', 'framesAssembledFromMultiplePackets',
        'framesReceived', 'framesDropped', 'freezeCount', 'totalFreezesDuration', 'packetsLost', 'packetsReceived',
        'nackCount', 'pliCount', 'bytesReceived', 'keyFramesDecoded', 'totalInterFrameDelay', 'retransmittedPacketsReceived']) out[k] = x[k] ?? null;
      // Absent until the first retransmission arrives.
      out.retransmittedPacketsReceived ??= 0;
      out.decoderImplementation = x.decoderImplementation ?? null;
    }
    if (x.type === 'candidate-pair' && x.nominated && x.state === 'succeeded') out.rttMs = x.currentRoundTripTime !== undefined ? x.currentRoundTripTime * 1000 : null;
  }
  return out;
}

// ------------------------------------------------------------ analysis

function dist(xs) {
  const v = xs.filter((x) => Number.isFinite(x));
  if (!v.length) return { n: 0, p1: null, p50: null, p95: null, p99: null, max: null, min: null, mean: null };
  return {
    n: v.length,
    p1: round1(quantile(v, 0.01)),
    p50: round1(quantile(v, 0.5)),
    p95: round1(quantile(v, 0.95)),
    p99: round1(quantile(v, 0.99)),
    max: round1(Math.max(...v)),
    min: round1(Math.min(...v)),
    mean: round1(v.reduce((a, b) => a + b, 0) / v.length),
  };
}

/** Turns the page's raw samples into checked latencies. */
function analyse(raw, framerate) {
  const S = raw.samples.map((s) => ({
    painted: s[0], presented: s[1], expected: s[2], received: s[3], captured: s[4], rtp: s[5], callback: s[6], presentedFrames: s[7], worst: s[9],
    mediaTime: s[10], frameTs: s[11],
  }));
  const withTs = S.filter((s) => s.mediaTime !== null && s.frameTs !== null);
  const tsDiff = withTs.map((s) => s.frameTs - s.mediaTime * 1e6);
  let ok = S;
  // The pixels must come from the frame the callback describes: the copy
  // can grab a newer one. With WebCodecs the frame's own timestamp must
  // equal the callback's mediaTime (exact). Without it (canvas path), the
  // rtpTimestamp stands in: painted - rtp/90 is constant up to capture
  // jitter, and a frame off by more than 0.6 frame intervals is rejected.
  let mismatch = [];
  const withRtp = ok.filter((s) => s.rtp !== null);
  let prev = null;
  let base = 0;
  for (const s of withRtp) {
    if (prev !== null && s.rtp < prev - 2 ** 31) base += 2 ** 32; // wrapped
    prev = s.rtp;
    s.offset = s.painted - (s.rtp + base) / 90;
  }
  const mid = median(withRtp.map((s) => s.offset));
  for (const s of withRtp) s.offsetDev = s.offset - mid;
  const tol = 0.6 * (1000 / framerate);
  const sameFrame = (s) => (s.frameTs !== null && s.mediaTime !== null
    ? Math.abs(s.frameTs - s.mediaTime * 1e6) < 500
    : s.offsetDev === undefined || withRtp.length <= 10 || Math.abs(s.offsetDev) <= tol);
  mismatch = ok.filter((s) => !sameFrame(s));
  ok = ok.filter(sameFrame);
  // Then the sanity check proper: a frame cannot show a time after its own
  // presentation; allow 1 ms for the ms resolution of the painted value and
  // the page's timer coarsening. Any such frame means the clocks disagree.
  const future = ok.filter((s) => s.painted > s.presented + 1);
  ok = ok.filter((s) => s.painted <= s.presented + 1);
  const d = (f) => dist(ok.map(f));
  const received = ok.filter((s) => s.received !== null);
  const r = {
    decoded: S.length,
    accepted: ok.length,
    rejectedFuture: future.length,
    rejectedMismatch: mismatch.length,
    mismatchRtpOffsetsMs: mismatch.slice(0, 10).map((s) => round1(s.offsetDev)),
    checkedBy: withTs.length ? 'VideoFrame.timestamp = mediaTime' : 'rtpTimestamp',
    // The headline figure: painted → presented (handed to the compositor).
    glass: d((s) => s.presented - s.painted),
    atExpectedDisplay: d((s) => s.expected - s.painted),
    atCallback: d((s) => s.callback - s.painted),
    paintedToReceived: dist(received.map((s) => s.received - s.painted)),
    receivedToPresented: dist(received.map((s) => s.presented - s.received)),
    presentedToExpected: d((s) => s.expected - s.presented),
    paintedToCaptureTime: dist(ok.filter((s) => s.captured !== null).map((s) => s.captured - s.painted)),
    withReceiveTime: received.length,
    withCaptureTime: ok.filter((s) => s.captured !== null).length,
    withRtpTimestamp: withRtp.length,
    // Accepted frames: painted - rtpTimestamp/90 around its median. Capture
    // jitter (ximagesrc grabbing late, the probe held up) widens it.
    rtpOffsetSpreadMs: dist(ok.filter((s) => s.offsetDev !== undefined).map((s) => s.offsetDev)),
    worstCellMargin: dist(S.map((s) => s.worst)),
    frameTsMinusMediaTimeUs: dist(tsDiff),
  };
  return r;
}

function statsDelta(a, b) {
  if (!a || !b) return null;
  const dd = (k) => (a[k] !== null && b[k] !== null && a[k] !== undefined && b[k] !== undefined ? b[k] - a[k] : null);
  const per = (num, den, scale = 1000) => (dd(num) !== null && dd(den) ? round1((dd(num) / dd(den)) * scale) : null);
  const sec = (b.at - a.at) / 1000;
  return {
    windowSec: round1(sec),
    jitterBufferMs: per('jitterBufferDelay', 'jitterBufferEmittedCount'),
    jitterBufferTargetMs: per('jitterBufferTargetDelay', 'jitterBufferEmittedCount'),
    jitterBufferMinimumMs: per('jitterBufferMinimumDelay', 'jitterBufferEmittedCount'),
    decodeMs: per('totalDecodeTime', 'framesDecoded'),
    processingDelayMs: per('totalProcessingDelay', 'framesDecoded'),
    assemblyMs: per('totalAssemblyTime', 'framesAssembledFromMultiplePackets'),
    interFrameMs: per('totalInterFrameDelay', 'framesDecoded'),
    decodedFps: dd('framesDecoded') !== null ? round1(dd('framesDecoded') / sec) : null,
    receivedFps: dd('framesReceived') !== null ? round1(dd('framesReceived') / sec) : null,
    framesDropped: dd('framesDropped'),
    freezes: dd('freezeCount'),
    packetsLost: dd('packetsLost'),
    nacks: dd('nackCount'),
    plis: dd('pliCount'),
    retransmissionsReceived: dd('retransmittedPacketsReceived'),
    frozenSec: dd('totalFreezesDuration') !== null ? Math.round(dd('totalFreezesDuration') * 1000) / 1000 : null,
    keyFrames: dd('keyFramesDecoded'),
    kbps: dd('bytesReceived') !== null ? Math.round((dd('bytesReceived') * 8) / sec / 1000) : null,
    rttMs: b.rttMs ?? null,
    decoderImplementation: b.decoderImplementation ?? null,
  };
}

function agentLatency(m0, m1) {
  const q = (m, p) => m[`oriel_capture_to_encoded_seconds{quantile="${p}"}`];
  const c0 = m0.oriel_capture_to_encoded_seconds_count ?? 0;
  const c1 = m1.oriel_capture_to_encoded_seconds_count;
  if (c1 === undefined) return null;
  return {
    // Quantiles over the frames of the agent's last 30 s (LatencyWindow::MAX_AGE),
    // read right at the end of the window.
    p50Ms: round1(q(m1, '0.5') * 1000),
    p99Ms: round1(q(m1, '0.99') * 1000),
    frames: c1,
    // Mean over the measurement window only.
    windowMeanMs: c1 > c0 ? round1(((m1.oriel_capture_to_encoded_seconds_sum - (m0.oriel_capture_to_encoded_seconds_sum ?? 0)) / (c1 - c0)) * 1000) : null,
    windowFrames: c1 - c0,
    // To the frame's last packet into the client's socket (newer agents).
    sentP50Ms: m1['oriel_capture_to_sent_seconds{quantile="0.5"}'] === undefined ? null : round1(m1['oriel_capture_to_sent_seconds{quantile="0.5"}'] * 1000),
  };
}

// ------------------------------------------------------------ measuring

export async function stopRec(rec) {
  await stopChild(rec);
  const i = children.indexOf(rec);
  if (i >= 0) children.splice(i, 1);
}

export async function startProbe(display) {
  if (!fs.existsSync(GLASS.probe)) {
    throw new Error(`clock probe missing: ${GLASS.probe} (cargo build --release --examples, or set CLOCK_PROBE)`);
  }
  const rec = start('clock_probe', GLASS.probe, ['--display', display, '--block', String(GLASS.block), '--stats-every', '2'],
    childEnv({ DISPLAY: display }));
  await waitForLine(rec, /clock_probe: painting/, 10000, 'the clock probe window');
  return rec;
}

function probeRates(rec, fromLine) {
  return rec.log.slice(fromLine).map((l) => (l.match(/^clock_probe: paints=\d+ seconds=[\d.]+ rate=(\d+)/) || [])[1]).filter(Boolean).map(Number);
}

/**
 * Installs the frame recorder in `page` (showing a stream of `conf`'s
 * screen size), once per page load.
 */
export async function installGlassRecorder(page, conf, selector = 'video') {
  await page.evaluate(installRecorder, { screenWidth: conf.width, screenHeight: conf.height, block: GLASS.block, useVideoFrame: GLASS.videoFrame, selector });
}

/**
 * One measurement window on a page that is playing and has the recorder
 * installed: `seconds` of frames, getStats() before and after, the agent's
 * capture → encoded, CPU of everything involved and of the machine. Returns
 * the window's fields (glass.mjs's per-setting record, less the setting).
 */
export async function glassWindow(page, agent, probe, conf, seconds, label) {
  const out = {};
  const chrPids = chromiumPids();
  const s0 = await page.evaluate(inboundStats);
  const m0 = await agent.metrics();
  const cpu0 = { agent: procCpuSec(agent.pid), chromium: pidsCpuSec(chrPids), probe: pidsCpuSec([probe.child.pid]),
    xvfb: pidsCpuSec(children.filter((r) => r.name === 'Xvfb' || r.name === 'mover').map((r) => r.child.pid)), node: process.cpuUsage(), sys: sysCpu() };
  const probeLine = probe.log.length;
  const t0 = performance.now();
  await page.evaluate(() => window.__glass.start());
  await sleep(seconds * 1000);
  const raw = await page.evaluate(() => window.__glass.stop());
  const dt = (performance.now() - t0) / 1000;
  const s1 = await page.evaluate(inboundStats);
  const m1 = await agent.metrics();
  const cpu1 = { agent: procCpuSec(agent.pid), chromium: pidsCpuSec(chrPids), probe: pidsCpuSec([probe.child.pid]),
    xvfb: pidsCpuSec(children.filter((r) => r.name === 'Xvfb' || r.name === 'mover').map((r) => r.child.pid)), node: process.cpuUsage(), sys: sysCpu() };
  if (!agent.alive) throw new Error('the agent died');

  out.windowSec = round1(dt);
  out.page = {
    callbacks: raw.callbacks, presentedFrames: raw.presentedFrames, rejects: raw.rejects, rejectExamples: raw.examples,
    readVia: raw.via, videoFrameErrors: raw.videoFrameErrors, videoFrameError: raw.videoFrameError,
    decodeMsPerCallback: round1(raw.decodeMsPerCallback), skewStartMs: round1(raw.skewStartMs), skewEndMs: round1(raw.skewEndMs),
    videoWidth: raw.videoWidth, videoHeight: raw.videoHeight,
  };
  out.latency = analyse(raw, conf.framerate);
  out.rejected = Object.values(raw.rejects).reduce((a, b) => a + b, 0) + out.latency.rejectedFuture + out.latency.rejectedMismatch;
  out.decodedRate = raw.presentedFrames ? round1((out.latency.accepted / raw.presentedFrames) * 100) : null;
  out.browser = statsDelta(s0, s1);
  out.agentCaptureToEncoded = agentLatency(m0, m1);
  out.cpu = {
    agentPct: round1(((cpu1.agent - cpu0.agent) / dt) * 100),
    chromiumPct: round1(((cpu1.chromium - cpu0.chromium) / dt) * 100),
    probePct: round1(((cpu1.probe - cpu0.probe) / dt) * 100),
    xvfbAndMoverPct: round1(((cpu1.xvfb - cpu0.xvfb) / dt) * 100),
    machineBusyPct: round1(((cpu1.sys.busy - cpu0.sys.busy) / (cpu1.sys.total - cpu0.sys.total)) * os.cpus().length * 100),
    // This node process (the bench; with glass-network also the relay).
    benchNodePct: round1(((cpu1.node.user - cpu0.node.user + cpu1.node.system - cpu0.node.system) / 1e6 / dt) * 100),
  };
  // Whatever else ran meanwhile (clamped: the /proc reads are not simultaneous).
  out.cpu.otherLoadPct = round1(Math.max(0, out.cpu.machineBusyPct - out.cpu.agentPct - out.cpu.chromiumPct - out.cpu.probePct - out.cpu.xvfbAndMoverPct - out.cpu.benchNodePct));
  out.loadAvgAfter = os.loadavg().map((x) => Math.round(x * 100) / 100);
  out.probeRate = median(probeRates(probe, probeLine));
  out.keyframesForced = (m1.oriel_keyframes_forced_total ?? 0) - (m0.oriel_keyframes_forced_total ?? 0);
  // Every decoded frame, compact (one CSV string, ms, 0.1 ms resolution).
  const p0 = raw.samples.length ? raw.samples[0][0] : 0;
  const rel = (x, from) => (x === null ? '' : (Math.round((x - from) * 10) / 10).toString());
  out.samplesCsv = ['painted (ms since the first), presented, received (ms after painted)',
    ...raw.samples.map((s) => [rel(s[0], p0), rel(s[1], s[0]), rel(s[3], s[0])].join(','))].join('\n');
  out.samplesFirstPaintedMs = p0;
  const L = out.latency;
  log(`${label}: ${L.accepted} samples (${out.decodedRate} % of ${raw.presentedFrames} presented), rejected ${JSON.stringify(raw.rejects)} future ${L.rejectedFuture} mismatch ${L.rejectedMismatch}; ` +
    `glass p50 ${fmt(L.glass.p50)} p95 ${fmt(L.glass.p95)} p99 ${fmt(L.glass.p99)} max ${fmt(L.glass.max)} ms; at expected display p50 ${fmt(L.atExpectedDisplay.p50)}; ` +
    `painted→received p50 ${fmt(L.paintedToReceived.p50)} received→presented p50 ${fmt(L.receivedToPresented.p50)}; agent capture→encoded p50 ${fmt(out.agentCaptureToEncoded?.p50Ms)} p99 ${fmt(out.agentCaptureToEncoded?.p99Ms)}; ` +
    `jitter buffer ${fmt(out.browser?.jitterBufferMs)} decode ${fmt(out.browser?.decodeMs)} ms; probe ${out.probeRate} paints/s; agent cpu ${fmt(out.cpu.agentPct)}% machine ${fmt(out.cpu.machineBusyPct)}%`);
  return out;
}

/** The harness's browser, with the handle on the page's RTCPeerConnection that inboundStats reads. */
export async function launchGlassBrowser() {
  const ctx = await launchBrowser();
  // Our own handle on the page's RTCPeerConnection, for inbound-rtp fields
  // the harness hook does not return.
  await ctx.addInitScript(() => {
    const Orig = window.RTCPeerConnection;
    if (!Orig || window.__glassPcs) return;
    window.__glassPcs = [];
    window.RTCPeerConnection = class extends Orig {
      constructor(...args) {
        super(...args);
        window.__glassPcs.push(this);
      }
    };
  });
  return ctx;
}

/**
 * The same window for Selkies 2.1 on the same display: its own page (in the
 * same browser), the recorder on its WebRTC <video>, its process's CPU. It
 * has no capture → encoded figure.
 */
async function measureSelkies(ctx, display, configName, probe) {
  const conf = ALL_CONFIGS[configName];
  const s = await startSelkies({ display, width: conf.width, height: conf.height, framerate: conf.framerate, bitrateKbps: CFG.bitrateKbps });
  const out = { config: configName, mode: 'selkies', ...conf, agentArgs: s.args };
  let page;
  try {
    ({ page } = await openSelkiesPage(ctx, s.url));
    await sleep(CFG.settleMs);
    await installGlassRecorder(page, conf, SELKIES_VIDEO);
    const target = { pid: s.pid, get alive() { return s.rec.exitCode === undefined; }, metrics: async () => ({}) };
    Object.assign(out, await glassWindow(page, target, probe, conf, GLASS.seconds, `${configName} selkies`));
    out.selkiesEncoder = selkiesEncoder(s);
  } finally {
    await page?.close().catch(() => {});
    await stopSelkies(s);
  }
  return out;
}

async function measureSetting(page, display, configName, modeName, probe) {
  const conf = ALL_CONFIGS[configName];
  const mode = ALL_MODES[modeName];
  if (mode.selkies) return measureSelkies(page.context(), display, configName, probe);
  const baseExtra = CFG.agentExtraArgs;
  CFG.agentExtraArgs = [...baseExtra, ...mode.args];
  let agent;
  try {
    agent = await startAgent(display);
  } finally {
    CFG.agentExtraArgs = baseExtra;
  }
  const out = { config: configName, mode: modeName, ...conf, agentArgs: agent.args() };
  try {
    out.healthz = await agent.healthz();
    await page.goto(agent.viewerUrl, { waitUntil: 'load', timeout: 20000 });
    await waitPresented(page);
    await waitClients(agent, 1);
    await sleep(CFG.settleMs);
    await installGlassRecorder(page, conf);
    Object.assign(out, await glassWindow(page, agent, probe, conf, GLASS.seconds, `${configName} playout ${modeName}`));
  } finally {
    await page.evaluate(() => window.oriel?.disconnect()).catch(() => {});
    await page.goto('about:blank').catch(() => {});
    // sctpenc reports an error when the page leaves (FIELD-NOTES); counted apart.
    const sctp = (l) => /SCTP association went into error state/.test(l);
    out.agentWarnings = agentWarnings(agent.rec.log.filter((l) => !sctp(l)));
    out.sctpTeardownWarnings = agent.rec.log.filter((l) => sctp(l) && /\b(WARN|ERROR)\b/.test(l)).length;
    out.agentLogFile = saveAgentLog(agent.rec.log, new Date().toISOString(), `glass-${configName}-${modeName.replace('/', '-')}`);
    await stopRec(agent.rec);
  }
  return out;
}

// -------------------------------------------------------------- report

const modeLabel = (m) => ALL_MODES[m]?.label ?? m;

function whatTheNumbersSay(res) {
  const out = [];
  const runs = res.runs.filter((r) => r.latency?.accepted);
  const cores = res.machine.cores;
  const busy = runs.filter((r) => r.cpu.machineBusyPct > cores * 100 * 0.85);
  if (busy.length) {
    out.push(`Read with care: in ${busy.length} of ${runs.length} settings (${busy.map((r) => `${r.config} ${r.mode}`).join(', ')}) the machine was over 85 % busy ` +
      `(up to ${fmt(Math.max(...busy.map((r) => r.cpu.machineBusyPct)))} % of ${cores * 100} %; the agent, Chromium, Xvfb and the probe of this part take ${fmt(median(runs.map((r) => r.cpu.agentPct + r.cpu.chromiumPct + r.cpu.probePct + r.cpu.xvfbAndMoverPct)))} % between them, the rest is other work). ` +
      'CPU contention delays capture, encoding and the page alike and shows up in the p95/p99 first.');
  }
  const get = (c, m) => runs.find((r) => r.config === c && r.mode === m);
  for (const r of runs.filter((x) => x.mode === '0/0')) {
    const L = r.latency;
    const a = r.agentCaptureToEncoded;
    const b = r.browser ?? {};
    const net = a && L.paintedToReceived.p50 !== null ? L.paintedToReceived.p50 - a.p50Ms : null;
    // Means against means: jitterBufferDelay runs from the first packet, the
    // page's receiveTime is the last one, so take the assembly time out.
    const held = Number.isFinite(b.jitterBufferMs) && Number.isFinite(b.decodeMs) ? b.jitterBufferMs - (b.assemblyMs ?? 0) + b.decodeMs : null;
    const render = held !== null && Number.isFinite(L.receivedToPresented.mean) ? L.receivedToPresented.mean - held : null;
    out.push(`${r.config}, playout delay 0/0: of the ${fmt(L.glass.p50)} ms (p50) from paint to presentation, ` +
      `${fmt(L.paintedToReceived.p50)} ms pass before the frame's last packet reaches Chromium; the agent's capture → encoded accounts for ${fmt(a?.p50Ms)} ms of that ` +
      (a?.sentP50Ms !== null && a?.sentP50Ms !== undefined
        ? `(p50; p99 ${fmt(a?.p99Ms)}) and its last packet enters the socket ${fmt(a.sentP50Ms)} ms after capture (payloading, the client's queue, webrtcbin and SRTP take ${fmt(a.sentP50Ms - a.p50Ms)} ms), leaving ${fmt(L.paintedToReceived.p50 - a.sentP50Ms)} ms for loopback and Chromium's packet handling. `
        : `(p50; p99 ${fmt(a?.p99Ms)}), leaving ${fmt(net)} ms for payloading, the per-client queue, webrtcbin (SRTP) and loopback. `) +
      `Received → presented takes ${fmt(L.receivedToPresented.p50)} ms (p50, mean ${fmt(L.receivedToPresented.mean)}): getStats has frames waiting ${fmt(b.jitterBufferMs)} ms (mean) in the jitter buffer from their first packet ` +
      `(${fmt(b.assemblyMs)} ms of it for the rest of the frame to arrive) and ${fmt(b.decodeMs)} ms in the decoder, ` +
      (render === null ? '' : render >= 1 ? `which leaves about ${fmt(render)} ms (mean) for Chromium to hand the frame to its compositor. ` : 'which accounts for all of it: Chromium hands a decoded frame to its compositor at once. ') +
      `Chromium's own estimate of when the frame reaches the screen (\`expectedDisplayTime\`) lies another ${fmt(L.presentedToExpected.p50)} ms (p50) later.`);
  }
  for (const c of res.config.configs) {
    const on = get(c, '0/0');
    const off = get(c, 'off');
    if (!on || !off) continue;
    const dj = off.browser?.jitterBufferMs !== null && on.browser?.jitterBufferMs !== null ? off.browser.jitterBufferMs - on.browser.jitterBufferMs : null;
    const dp = off.latency.glass.p50 - on.latency.glass.p50;
    const drp = off.latency.receivedToPresented.p50 - on.latency.receivedToPresented.p50;
    out.push(`${c}: without the playout-delay extension the p50 is ${fmt(off.latency.glass.p50)} ms instead of ${fmt(on.latency.glass.p50)} (${dp >= 0 ? '+' : ''}${fmt(dp)} ms), p99 ${fmt(off.latency.glass.p99)} instead of ${fmt(on.latency.glass.p99)}; ` +
      `received → presented grows by ${fmt(drp)} ms (p50) and the jitter buffer mean by ${dj === null ? 'n/a' : `${dj >= 0 ? '+' : ''}${fmt(dj)}`} ms` +
      (dp <= 3 ? ': on loopback the difference is small in this run.'
        : dj !== null && drp - dj > drp / 2
          ? `: most of the wait is after decoding, where Chromium holds each frame until the render time its WebRTC timing assigns (smoothing); with 0/0 it presents a frame as soon as it is decoded.`
          : ': Chromium holds frames back in its jitter buffer for smoothness when it is not told otherwise.'));
  }
  const r30 = get('720p30', '0/0');
  const r60 = get('720p60', '0/0');
  if (r30 && r60) {
    const fps60 = r60.browser?.decodedFps;
    out.push(`720p60 against 720p30 (both 0/0): p50 ${fmt(r60.latency.glass.p50)} against ${fmt(r30.latency.glass.p50)} ms; the agent spends ${fmt(r60.cpu.agentPct)} % of a core against ${fmt(r30.cpu.agentPct)} %` +
      (fps60 && fps60 < 54 ? `, but the 60 fps stream reached only ${fmt(fps60)} fps in Chromium in this run (the machine was ${fmt(r60.cpu.machineBusyPct)} % busy), so this row says more about contention than about 60 fps. ` : ` for ${fmt((fps60 ?? 60) / (r30.browser?.decodedFps || 30))}x the frames. `) +
      `The probe repaints every millisecond, so each frame shows the time of its own capture: a change on screen at a random moment also waits for the next capture, on average half a frame interval more (16.7 ms at 30 fps, 8.3 ms at 60 fps), which these figures do not include.`);
  }
  const r1080 = get('1080p30', '0/0');
  if (r30 && r1080) {
    out.push(`1080p30 against 720p30 (0/0): capture → encoded p50 ${fmt(r1080.agentCaptureToEncoded?.p50Ms)} against ${fmt(r30.agentCaptureToEncoded?.p50Ms)} ms for 2.25x the pixels, glass p50 ${fmt(r1080.latency.glass.p50)} against ${fmt(r30.latency.glass.p50)} ms, decode ${fmt(r1080.browser?.decodeMs)} against ${fmt(r30.browser?.decodeMs)} ms per frame.`);
  }
  for (const sk of runs.filter((x) => x.mode === 'selkies')) {
    const o = get(sk.config, '0/0');
    if (!o) continue;
    const ratio = sk.latency.glass.p50 / o.latency.glass.p50;
    out.push(`${sk.config}, Selkies 2.1 in the same run (same display, probe and reader): p50 ${fmt(sk.latency.glass.p50)} / p99 ${fmt(sk.latency.glass.p99)} ms against oriel's ${fmt(o.latency.glass.p50)} / ${fmt(o.latency.glass.p99)} ` +
      `(${ratio >= 1 ? `oriel ${fmt(ratio, 2)}x faster` : `Selkies ${fmt(1 / ratio, 2)}x faster`} at p50); CPU ${fmt(sk.cpu.agentPct)} % of a core against ${fmt(o.cpu.agentPct)} %; Selkies decoded ${fmt(sk.browser?.decodedFps)} fps.`);
  }
  return out.map((x) => `- ${x}`).join('\n');
}

/** This part's section of BENCHMARKS.md. */
export function render(res, jsonRel) {
  const L = [];
  L.push(res.config.taskset ? `## Glass-to-glass latency, both agents on one core (\`taskset -c ${res.config.taskset}\`)` : '## Glass-to-glass latency');
  L.push('');
  if (res.config.taskset) L.push(`The slow-machine case on any machine: oriel and Selkies ran pinned to CPU ${res.config.taskset} (\`BENCH_TASKSET\`); Chromium, the probe and Xvfb were not. Otherwise the same as the part \`glass\`.`, '');
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}). ` +
    `Encoder ${[...new Set(res.runs.map((r) => r.healthz?.encoder).filter(Boolean))].join(', ') || '?'} (from /healthz), ${res.config.bitrateKbps} kbit/s, ${res.agent.build} build. Load average at start: ${res.machine.loadAvgAtStart.join(' ')}.`);
  L.push('');
  L.push(`Method: \`examples/clock_probe\` paints CLOCK_REALTIME in ms on the captured Xvfb screen (a ${32 * res.config.block}x${2 * res.config.block} px band of ${res.config.block} px cells at the top-left: ` +
    'marker cells, 40 bits of time, a CRC-16; one atomic CopyArea per paint, a round trip after each, a new paint every millisecond) above the harness\'s full-screen moving video ' +
    '(scrolling SMPTE bars and a clock at the capture frame rate). One Chromium page opens a viewer link; a script injected by the bench hooks `requestVideoFrameCallback`, ' +
    'reads the band of each presented frame (WebCodecs `new VideoFrame(video)` and `copyTo` of the band\'s luma; a canvas where that fails), decodes the cells and subtracts the painted time from `performance.timeOrigin + presentationTime` ' +
    '(when Chromium handed the frame to its compositor: the latest moment the page can observe; the "at expected display" column uses `expectedDisplayTime`, Chromium\'s estimate of when the frame reaches the screen, which headless has none of). ' +
    'Frames with a cell neither clearly black nor white, wrong markers or a bad CRC are rejected, and so are frames whose time lies after their presentation, or whose pixels came from another frame than the callback describes (the copied `VideoFrame`\'s timestamp differs from the callback\'s `mediaTime`). ' +
    `${res.config.seconds} s of frames per setting after ${res.config.settleMs / 1000} s of settling; a fresh agent per setting, a fresh Xvfb per resolution. Percentiles are nearest-rank.`);
  L.push('');
  L.push('| setting | playout delay | samples | decoded / presented | rejected | **p50 ms** | p95 ms | p99 ms | max ms | at expected display p50 / p99 ms | encoder |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|');
  for (const r of res.runs) {
    if (r.error) {
      L.push(`| ${r.config} | ${modeLabel(r.mode)} | **failed**: ${r.error.replace(/\|/g, '/').slice(0, 120)} | | | | | | | | |`);
      continue;
    }
    const g = r.latency.glass;
    L.push(`| ${r.config} | ${modeLabel(r.mode)} | ${r.latency.accepted} | ${fmt(r.decodedRate)} % of ${r.page.presentedFrames} | ${r.rejected} | **${fmt(g.p50)}** | ${fmt(g.p95)} | ${fmt(g.p99)} | ${fmt(g.max)} | ` +
      `${fmt(r.latency.atExpectedDisplay.p50)} / ${fmt(r.latency.atExpectedDisplay.p99)} | ${r.healthz?.encoder ?? '?'} |`);
  }
  L.push('');
  L.push('### Where the time goes');
  L.push('');
  L.push('Agent: `oriel_capture_to_encoded_seconds` from `/metrics` (a pad probe at the encoder\'s output: pipeline clock now minus the frame\'s capture timestamp; ' +
    `p50/p99 over the frames of the agent's last 30 s, read at the end of the window${res.config.seconds < 30 ? `: the window and the ${30 - res.config.seconds} s before it` : ''}). ` +
    'Page: `receiveTime` (last packet of the frame received) from the same frame callbacks, p50 of the per-frame differences. ' +
    'Browser means from `getStats()` inbound-rtp over the window: jitterBufferDelay / jitterBufferEmittedCount (counted from a frame\'s first packet, so it includes waiting for the rest of the frame: totalAssemblyTime), totalDecodeTime / framesDecoded, totalProcessingDelay / framesDecoded (first packet in to decoded). ' +
    '`oriel_capture_to_sent_seconds`: the same clock when the frame\'s last video packet enters the client\'s socket (nicesink), after payloading, the per-client queue and webrtcbin (SRTP). ' +
    '"outside the agent" = painted → received minus capture → sent (minus capture → encoded where an agent had no send point): loopback UDP and Chromium\'s packet handling ' +
    '(the painted time and the capture timestamp differ by about a millisecond: the probe repaints every millisecond, ximagesrc stamps the frame slot it woke up for).');
  L.push('');
  L.push('| setting | playout delay | agent capture → encoded p50 / p99 ms | agent capture → sent p50 ms | painted → received p50 ms | outside the agent ms | received → presented p50 ms | jitter buffer mean ms | decode mean ms | processing delay mean ms | presented → expected display p50 ms | decoded fps | kbit/s | agent CPU % |');
  L.push('|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of res.runs) {
    if (r.error) continue;
    const a = r.agentCaptureToEncoded;
    const l = r.latency;
    const b = r.browser ?? {};
    const inAgent = a?.sentP50Ms ?? a?.p50Ms;
    const net = a && l.paintedToReceived.p50 !== null ? l.paintedToReceived.p50 - inAgent : null;
    L.push(`| ${r.config} | ${modeLabel(r.mode)} | ${fmt(a?.p50Ms)} / ${fmt(a?.p99Ms)} | ${fmt(a?.sentP50Ms)} | ${fmt(l.paintedToReceived.p50)} | ${fmt(net)} | ${fmt(l.receivedToPresented.p50)} | ` +
      `${fmt(b.jitterBufferMs)} | ${fmt(b.decodeMs)} | ${fmt(b.processingDelayMs)} | ${fmt(l.presentedToExpected.p50)} | ${fmt(b.decodedFps)} | ${b.kbps ?? 'n/a'} | ${fmt(r.cpu?.agentPct)} |`);
  }
  L.push('');
  L.push('<details><summary>Checks and context per setting</summary>');
  L.push('');
  L.push('| setting | playout delay | callbacks / presented | rejected: margin / markers / CRC / future / other frame | painted - rtpTimestamp spread p1..p99 ms (capture jitter) | receiveTime / captureTime / rtpTimestamp present | page clock skew ms | probe paints/s | CPU %: agent / Chromium / probe / Xvfb+mover / machine | keyframes forced | lost / NACK / PLI |');
  L.push('|---|---|---|---|---|---|---|---:|---|---:|---|');
  for (const r of res.runs) {
    if (r.error) continue;
    const j = r.page.rejects;
    const l = r.latency;
    const b = r.browser ?? {};
    L.push(`| ${r.config} | ${modeLabel(r.mode)} | ${r.page.callbacks} / ${r.page.presentedFrames} | ${j.margin} / ${j.markers} / ${j.crc} / ${l.rejectedFuture} / ${l.rejectedMismatch} | ` +
      `${fmt(l.rtpOffsetSpreadMs?.p1)} .. ${fmt(l.rtpOffsetSpreadMs?.p99)} | ` +
      `${l.withReceiveTime} / ${l.withCaptureTime} / ${l.withRtpTimestamp} of ${l.decoded} | ${fmt(r.page.skewStartMs)} → ${fmt(r.page.skewEndMs)} | ${r.probeRate ?? 'n/a'} | ` +
      `${fmt(r.cpu.agentPct)} / ${fmt(r.cpu.chromiumPct)} / ${fmt(r.cpu.probePct)} / ${fmt(r.cpu.xvfbAndMoverPct)} / ${fmt(r.cpu.machineBusyPct)} | ${r.keyframesForced} | ${b.packetsLost ?? '?'} / ${b.nacks ?? '?'} / ${b.plis ?? '?'} |`);
  }
  L.push('');
  L.push('</details>');
  L.push('');
  L.push(...readingAndOddities(whatTheNumbersSay(res), res.notes));
  return L.join('\n');
}

/** One-line findings for the top of BENCHMARKS.md. */
const partOf = (res) => (res.config?.taskset ? 'glass-taskset' : 'glass');

export function headline(res) {
  const ok = res.runs.filter((r) => r.latency?.accepted);
  const on = ok.filter((r) => r.mode === '0/0');
  const out = [];
  if (on.length) {
    const r30 = on.find((r) => r.config === '720p30');
    out.push(`Glass-to-glass (paint on the X screen → frame presented in Chromium, playout delay 0/0): ` +
      on.map((r) => `${r.config} p50 ${fmt(r.latency.glass.p50)} / p99 ${fmt(r.latency.glass.p99)} ms`).join(', ') +
      (r30 ? `; at 720p30 capture → encoded in the agent is ${fmt(r30.agentCaptureToEncoded?.p50Ms)} ms of it (p50), received → presented in Chromium ${fmt(r30.latency.receivedToPresented.p50)} ms` : '') +
      ` (part \`${partOf(res)}\`).`);
  }
  const off = ok.filter((r) => r.mode === 'off');
  if (off.length) {
    out.push('Without the playout-delay extension: ' + off.map((r) => `${r.config} p50 ${fmt(r.latency.glass.p50)} / p99 ${fmt(r.latency.glass.p99)} ms`).join(', ') + ` (part \`${partOf(res)}\`).`);
  }
  const sk = ok.filter((r) => r.mode === 'selkies');
  if (sk.length) {
    out.push('Selkies 2.1 in the same run, same probe and page reader: ' + sk.map((r) => {
      const o = on.find((x) => x.config === r.config);
      return `${r.config} p50 ${fmt(r.latency.glass.p50)} / p99 ${fmt(r.latency.glass.p99)} ms${o ? ` (oriel ${fmt(o.latency.glass.p50)} / ${fmt(o.latency.glass.p99)})` : ''}`;
    }).join(', ') + ` (part \`${partOf(res)}\`).`);
  }
  return out;
}

function summaryText(res) {
  const L = ['', `oriel bench glass ${res.startedAt} (${res.agent.build} build, ${res.config.seconds} s per setting)`];
  L.push('setting   playout  samples  decoded%  rejected    p50    p95    p99    max  agent c→e p50/p99  recv→pres p50');
  for (const r of res.runs) {
    if (r.error) {
      L.push(`${r.config.padEnd(8)}  ${r.mode.padEnd(7)}  failed: ${r.error}`);
      continue;
    }
    const g = r.latency.glass;
    L.push(`${r.config.padEnd(8)}  ${r.mode.padEnd(7)}  ${String(r.latency.accepted).padStart(7)}  ${fmt(r.decodedRate).padStart(8)}  ${String(r.rejected).padStart(8)}  ` +
      `${fmt(g.p50).padStart(5)}  ${fmt(g.p95).padStart(5)}  ${fmt(g.p99).padStart(5)}  ${fmt(g.max).padStart(5)}  ` +
      `${`${fmt(r.agentCaptureToEncoded?.p50Ms)}/${fmt(r.agentCaptureToEncoded?.p99Ms)}`.padStart(17)}  ${fmt(r.latency.receivedToPresented.p50).padStart(13)}`);
  }
  for (const n of res.notes ?? []) L.push(`note: ${n}`);
  return L.join('\n');
}

function oddities(res) {
  const notes = [];
  if (res.agent.build !== 'release') notes.push(`agent is a ${res.agent.build} build`);
  for (const r of res.runs) {
    const tag = `${r.config} playout ${r.mode}`;
    if (r.error) {
      notes.push(`${tag}: failed: ${r.error}`);
      continue;
    }
    if (!r.display?.covers) notes.push(`${tag}: the moving window does not cover the screen`);
    const rej = r.rejected;
    const all = r.latency.decoded + Object.values(r.page.rejects).reduce((a, b) => a + b, 0);
    if (all && rej / all > 0.05) notes.push(`${tag}: ${rej} of ${all} frames rejected (${JSON.stringify(r.page.rejects)}, future ${r.latency.rejectedFuture}, other frame ${r.latency.rejectedMismatch})`);
    if (r.latency.rejectedFuture) notes.push(`${tag}: ${r.latency.rejectedFuture} frame(s) showed a time after their own presentation (rejected)`);
    if (r.latency.rejectedMismatch) notes.push(`${tag}: ${r.latency.rejectedMismatch} frame(s) read from another frame than the callback described (${r.latency.checkedBy}; their painted - rtpTimestamp offsets ${r.latency.mismatchRtpOffsetsMs.join(', ')} ms; rejected)`);
    if (r.page.callbacks < 0.9 * r.page.presentedFrames) notes.push(`${tag}: frame callbacks ran for ${r.page.callbacks} of ${r.page.presentedFrames} presented frames`);
    if (Math.abs(r.page.skewEndMs) > 2) notes.push(`${tag}: the page's Date.now() and timeOrigin + performance.now() differ by ${fmt(r.page.skewEndMs)} ms`);
    if (r.browser?.decodedFps && r.browser.decodedFps < 0.9 * r.framerate) notes.push(`${tag}: the stream ran at ${fmt(r.browser.decodedFps)} fps of the ${r.framerate} captured for (decoded frames per second in Chromium)`);
    if (r.browser?.freezes) notes.push(`${tag}: Chromium counted ${r.browser.freezes} freeze(s)`);
    if (r.cpu.machineBusyPct > os.cpus().length * 100 * 0.85) notes.push(`${tag}: the machine was ${fmt(r.cpu.machineBusyPct)} % busy (of ${os.cpus().length * 100}): latency figures suffer from CPU contention`);
    if (r.agentWarnings?.note) notes.push(`${tag}: ${r.agentWarnings.note}`);
  }
  const ok = res.runs.filter((r) => r.latency?.decoded);
  if (ok.length && ok.every((r) => !r.latency.withCaptureTime)) {
    notes.push('No frame carried a `captureTime` in its frame-callback metadata (the agent sends no abs-capture-time extension): the split uses `receiveTime` and the agent\'s own metric.');
  }
  return notes;
}

// ---------------------------------------------------------------- main

async function main(res) {
  res.command = `cd bench && ${CFG.taskset ? `BENCH_TASKSET=${CFG.taskset} ` : ''}node glass.mjs`;
  res.config = {
    taskset: CFG.taskset,
    seconds: GLASS.seconds, block: GLASS.block, configs: GLASS.configs, modes: GLASS.modes, settleMs: CFG.settleMs,
    bitrateKbps: CFG.bitrateKbps, scene: CFG.scene, probe: GLASS.probe, agentExtraArgs: CFG.agentExtraArgs,
  };
  res.machine = machineInfo();
  res.agent = agentInfo();
  log(`agent ${res.agent.bin} (${res.agent.build}), probe ${GLASS.probe}, ${res.machine.cores} cores, load ${res.machine.loadAvgAtStart.join(' ')}`);
  if (!fs.existsSync(GLASS.probe)) throw new Error(`clock probe missing: ${GLASS.probe} (cargo build --release --examples, or set CLOCK_PROBE)`);
  if (GLASS.modes.includes('selkies')) res.selkies = await ensureSelkies();

  // The page's viewport stays 1280x720; the 1080p stream is scaled into it
  // like on a laptop screen (the band is read at the stream's own size).
  CFG.width = 1280;
  CFG.height = 720;
  const ctx = await launchGlassBrowser();
  const page = await ctx.newPage();
  page.on('pageerror', (e) => log(`page error: ${e.message}`));

  res.runs = [];
  for (const configName of GLASS.configs) {
    const conf = ALL_CONFIGS[configName];
    Object.assign(CFG, { width: conf.width, height: conf.height, framerate: conf.framerate });
    const display = await startDisplay();
    log(`${configName}: display ${display.display}, mover window ${JSON.stringify(display.geometry)}`);
    const probe = await startProbe(display.display);
    try {
      for (const modeName of GLASS.modes) {
        try {
          const r = await measureSetting(page, display.display, configName, modeName, probe);
          r.display = display;
          res.runs.push(r);
        } catch (e) {
          log(`${configName} playout ${modeName} FAILED: ${e.message}`);
          res.runs.push({ config: configName, mode: modeName, ...conf, error: e.message.split('\n')[0] });
        }
      }
    } finally {
      await stopRec(probe);
      for (const name of ['mover', 'Xvfb']) for (const r of children.filter((x) => x.name === name)) await stopRec(r);
    }
  }
  if (!res.runs.some((r) => r.latency?.accepted)) throw new Error(`no setting produced a sample: ${res.runs.map((r) => r.error).join('; ')}`);
  res.healthz = res.runs.find((r) => r.healthz)?.healthz;
  res.notes = oddities(res);
  return summaryText(res);
}

if (isMain(import.meta.url)) {
  // The watchdog: each setting needs ~10 s of setup and teardown around its
  // window; allow 30 s per setting besides it. (Set here, not at import: report.mjs
  // imports this module inside other parts' processes.)
  CFG.timeoutMs = envNum('BENCH_TIMEOUT_MS', Math.max(540000, GLASS.configs.length * GLASS.modes.length * (GLASS.seconds + CFG.settleMs / 1000 + 30) * 1000));
  runPart(CFG.taskset ? 'glass-taskset' : 'glass', main);
}
