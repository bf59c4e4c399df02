#!/usr/bin/env node
// oriel benchmark part `audio`: the desktop's sound, end to end. How long a
// tone takes from the desktop's sound server to the page, how far sound
// and picture are apart when they start together, and what the sound costs
// the agent with 1 and 8 clients (one encode: the per-client cost should
// stay near zero).
//
//   cd bench && node audio.mjs      (or `make bench-audio`)
//
// What it does, unattended (about 6 minutes, 2 of them Selkies):
//   1. A bare Xvfb (black), a private PulseAudio (tests/sound/pulse.mjs: a
//      null sink as the default output) and the agent recording its monitor.
//   2. Latency, BENCH_AUDIO_CYCLES (30) times, 1.2-1.7 s apart: a 150 ms
//      1 kHz burst is played into the sound server (pacat) and the screen
//      flashes white (xsetroot) at once, then goes black again. A recorder
//      on the same monitor the agent records (parec, 5 ms latency) notes the
//      burst's onset; the page notes it in the received track (WebAudio,
//      a ScriptProcessor of 256 samples on the remote track) and the flash
//      in the presented frames (requestVideoFrameCallback, the luma of a
//      patch at the centre). Audio latency = heard in the page - onset at the
//      monitor; video latency = presented - xsetroot done; AV offset = video
//      latency - audio latency (positive: the picture comes later). All times
//      are on this machine's wall clock.
//   3. Cost: agent CPU (utime+stime) over BENCH_WINDOW_MS (10000) with 1 and
//      8 clients (one Chromium page, the rest bench_receiver viewers), a
//      tone playing, with sound and with --audio off (fresh agents, rounds
//      alternating, BENCH_AUDIO_ROUNDS 2).
//   4. Selkies 2.1 (PyPI, lib/selkies.mjs) on the same display and sound
//      server, after oriel: steps 2 and 3 again, with one Chromium page
//      (Selkies has no headless viewer here). Its page puts the audio track
//      in the stream of its <video> (one msid for both tracks), so the same
//      recorder reads it. Optional: if it cannot be installed or started,
//      the part reports oriel and says why.
//
// Knobs: ORIEL_BIN, BENCH_AUDIO_CYCLES, BENCH_AUDIO_ROUNDS, BENCH_WINDOW_MS,
// BENCH_AUDIO_SELKIES=0 (oriel only), BENCH_NO_MARKDOWN=1, BENCH_TIMEOUT_MS
// (900000).

import fs from 'node:fs';
import os from 'node:os';
import { spawn, spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import {
  CFG, agentInfo, childEnv, children, envNum, fmt, launchBrowser, log, machineInfo, median, openClient, pidsCpuSec, procCpuSec, procStatus,
  quantile, round1, sleep, start, startAgent, startBareDisplay, stopChild, tmpDirs, waitClients, waitFor, waitPresented,
} from './lib/harness.mjs';
import { isMain, noteAgentWarnings, readingAndOddities, runPart } from './lib/run.mjs';
import { Receivers } from './lib/receiver.mjs';
import { pactlAt, pulseSetup } from '../tests/sound/pulse.mjs';
import { SELKIES_VERSION, SELKIES_VIDEO, ensureSelkies, openSelkiesPage, selkiesPids, startSelkies, stopSelkies } from './lib/selkies.mjs';

const CYCLES = envNum('BENCH_AUDIO_CYCLES', 30);
const ROUNDS = envNum('BENCH_AUDIO_ROUNDS', 2);
const SELKIES = process.env.BENCH_AUDIO_SELKIES !== '0';
// Selkies' two runs add about 3 minutes.
CFG.timeoutMs = envNum('BENCH_TIMEOUT_MS', 900000);
const RATE = 48000;
const BURST_MS = 150;
const now = () => performance.timeOrigin + performance.now();

// ------------------------------------------------------------ the desktop

async function startPulse() {
  const dir = fs.mkdtempSync(`${os.tmpdir()}/oriel-bench-pulse-`);
  tmpDirs.push(dir);
  const setup = pulseSetup(dir);
  const rec = start('pulseaudio', setup.program, setup.args, childEnv(setup.env));
  const pactl = pactlAt(setup.address);
  await waitFor(() => pactl('info').status === 0, 10000, 'pulseaudio answering');
  return { address: setup.address, rec };
}

/** 16-bit mono samples of a 1 kHz sine for `ms`. */
function burst(ms) {
  const n = Math.round((RATE * ms) / 1000);
  const b = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(12000 * Math.sin((2 * Math.PI * 1000 * i) / RATE)), i * 2);
  return b;
}

/**
 * Onsets on the sink's monitor, as the agent hears it: parec's chunks,
 * 2.5 ms blocks, the first loud block after 100 ms of quiet. An onset's
 * time is the chunk's arrival less the samples after the onset in it.
 */
function monitorOnsets(address) {
  const onsets = [];
  const child = spawn('parec', ['--raw', '--format=s16le', `--rate=${RATE}`, '--channels=1', '--device=desk.monitor', '--latency-msec=5'],
    { env: childEnv({ PULSE_SERVER: address }), stdio: ['ignore', 'pipe', 'ignore'] });
  let quiet = 0;
  let carry = Buffer.alloc(0);
  const BLOCK = 120;
  child.stdout.on('data', (d) => {
    const t = now();
    const buf = Buffer.concat([carry, d]);
    const blocks = Math.floor(buf.length / (BLOCK * 2));
    for (let b = 0; b < blocks; b++) {
      let sq = 0;
      for (let i = 0; i < BLOCK; i++) {
        const x = buf.readInt16LE((b * BLOCK + i) * 2);
        sq += x * x;
      }
      const loud = Math.sqrt(sq / BLOCK) > 1000;
      if (loud && quiet >= 40) onsets.push(t - ((blocks - b) * BLOCK * 1000) / RATE);
      quiet = loud ? 0 : quiet + 1;
    }
    carry = buf.subarray(blocks * BLOCK * 2);
  });
  return { onsets, stop: () => child.kill('SIGTERM') };
}

/** Runs in the page: onsets of sound in the received track, flashes in the presented frames of the <video> `sel`. */
function installRecorder(sel) {
  const video = document.querySelector(sel);
  const rec = { audio: [], video: [], lastLum: null, quiet: 0, errors: 0 };
  const ctx = new AudioContext();
  const src = ctx.createMediaStreamSource(new MediaStream(video.srcObject.getAudioTracks()));
  const proc = ctx.createScriptProcessor(256, 1, 1);
  proc.onaudioprocess = (e) => {
    const d = e.inputBuffer.getChannelData(0);
    let sq = 0;
    for (let i = 0; i < d.length; i++) sq += d[i] * d[i];
    const loud = Math.sqrt(sq / d.length) > 0.03;
    if (loud && rec.quiet >= 20) rec.audio.push(performance.timeOrigin + performance.now());
    rec.quiet = loud ? 0 : rec.quiet + 1;
  };
  src.connect(proc);
  proc.connect(ctx.destination);
  ctx.resume();
  async function onFrame(_, meta) {
    video.requestVideoFrameCallback(onFrame);
    try {
      const frame = new VideoFrame(video);
      try {
        const vr = frame.visibleRect;
        const rect = { x: (vr.x + vr.width / 2) & ~1, y: (vr.y + vr.height / 2) & ~1, width: 16, height: 16 };
        const buf = new Uint8Array(frame.allocationSize({ rect }));
        const layout = await frame.copyTo(buf, { rect });
        const rgb = /^(RGB|BGR)/.test(frame.format ?? '');
        const i = layout[0].offset;
        const lum = rgb ? (buf[i] + buf[i + 1] + buf[i + 2]) / 3 : buf[i];
        if (rec.lastLum !== null && rec.lastLum < 64 && lum > 192) rec.video.push(performance.timeOrigin + meta.presentationTime);
        rec.lastLum = lum;
      } finally {
        frame.close();
      }
    } catch {
      rec.errors++;
    }
  }
  video.requestVideoFrameCallback(onFrame);
  window.__av = rec;
  return ctx.state;
}

const xsetroot = (display, color) => {
  const t0 = now();
  spawnSync('xsetroot', ['-solid', color], { env: childEnv({ DISPLAY: display }) });
  return { t0, t1: now() };
};

/** The first of `times` in [from, from + within), or null. */
const firstIn = (times, from, within = 1000) => times.find((t) => t >= from && t < from + within) ?? null;

/**
 * The bursts and flashes through one agent's page, `up` = {page, sel}: the
 * page is up and presenting. Returns the rows and their quantiles.
 */
async function measureLatency(display, sound, up) {
  const { page } = up;
  await sleep(1000);
  const state = await page.evaluate(installRecorder, up.sel);
  const monitor = monitorOnsets(sound.address);
  const player = spawn('pacat', ['--playback', '--raw', '--format=s16le', `--rate=${RATE}`, '--channels=1', '--latency-msec=10'],
    { env: childEnv({ PULSE_SERVER: sound.address }), stdio: ['pipe', 'ignore', 'ignore'] });
  const tone = burst(BURST_MS);
  const cycles = [];
  await sleep(500);
  for (let i = 0; i < CYCLES; i++) {
    const wrote = now();
    player.stdin.write(tone);
    const flash = xsetroot(display, 'white');
    cycles.push({ wrote, flash });
    await sleep(400);
    xsetroot(display, 'black');
    await sleep(800 + Math.random() * 500);
  }
  await sleep(1000);
  const got = await page.evaluate(() => window.__av);
  const chromium = await page.evaluate(() => window.__benchAudio()).catch(() => null);
  monitor.stop();
  player.stdin.end();
  player.kill('SIGTERM');
  const rows = cycles.map((c) => {
    const onset = firstIn(monitor.onsets, c.wrote - 5, 500);
    const heard = onset !== null ? firstIn(got.audio, onset, 1000) : null;
    const shown = firstIn(got.video, c.flash.t1, 1000);
    const audioMs = onset !== null && heard !== null ? heard - onset : null;
    const videoMs = shown !== null ? shown - c.flash.t1 : null;
    return {
      playedToMonitorMs: onset !== null ? round1(onset - c.wrote) : null,
      audioMs: round1(audioMs),
      videoMs: round1(videoMs),
      xsetrootMs: round1(c.flash.t1 - c.flash.t0),
      avOffsetMs: audioMs !== null && videoMs !== null ? round1(videoMs - audioMs) : null,
    };
  });
  const stat = (k, abs = false) => {
    const xs = rows.map((r) => r[k]).filter((x) => x !== null).map((x) => (abs ? Math.abs(x) : x));
    return { n: xs.length, p50: round1(quantile(xs, 0.5)), p99: round1(quantile(xs, 0.99)) };
  };
  return {
    audioContext: state, rows, pageErrors: got.errors, chromium,
    audio: stat('audioMs'), video: stat('videoMs'), avOffset: stat('avOffsetMs'), avOffsetAbs: stat('avOffsetMs', true),
    playedToMonitor: stat('playedToMonitorMs'), xsetroot: stat('xsetrootMs'),
  };
}

async function latency(display, sound) {
  const agent = await startAgent(display, { env: { PULSE_SERVER: sound.address } });
  const ctx = await launchBrowser();
  const page = await openClient(ctx, agent);
  await waitPresented(page);
  const out = await measureLatency(display, sound, { page, sel: 'video' });
  const health = await agent.healthz();
  await ctx.close().catch(() => {});
  await stopChild(agent.rec);
  return { ...out, health };
}

// ---------------------------------------------------------------- Selkies

// Selkies' sound as shipped (pcmflux: Opus, 10 ms frames, RED, 128 kb/s),
// but recording the bench's sink: its default device is `output.monitor`, a
// null sink it would create beside ours, which nothing plays into.
const SELKIES_SOUND = ['--audio-enabled', 'true', '--audio-device-name', 'desk.monitor'];
const SELKIES_MUTE = ['--audio-enabled', 'false'];

/** Selkies on `display` with its page open in a fresh browser: {s, ctx, page}. */
async function selkiesUp(display, sound, audio) {
  const ctx = await launchBrowser();
  let s = null;
  try {
    s = await startSelkies({
      display, width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps,
      extraArgs: audio ? SELKIES_SOUND : SELKIES_MUTE, env: { PULSE_SERVER: sound.address },
    });
    const { page } = await openSelkiesPage(ctx, s.url);
    if (audio) {
      // The audio track joins the <video>'s stream (Selkies' _ontrack sets
      // srcObject from the video track's streams[0], and both tracks share
      // one msid): without it the recorder would hear nothing.
      await waitFor(() => page.evaluate((sel) => (document.querySelector(sel)?.srcObject?.getAudioTracks().length ?? 0) > 0, SELKIES_VIDEO),
        10000, "an audio track in Selkies' <video> stream", 100);
    }
    return { s, ctx, page };
  } catch (e) {
    await ctx.close().catch(() => {});
    if (s) await stopSelkies(s);
    throw e;
  }
}

/** What Selkies' log says about its sound (pcmflux, the device, errors). */
const selkiesSoundLog = (s) => s.rec.log.filter((l) => /pcmflux|audio device|audio pipeline|pulse/i.test(l)).slice(0, 20);

async function selkiesLatency(display, sound) {
  const { s, ctx, page } = await selkiesUp(display, sound, true);
  try {
    const out = await measureLatency(display, sound, { page, sel: SELKIES_VIDEO });
    return { ...out, soundLog: selkiesSoundLog(s), args: s.args };
  } finally {
    await ctx.close().catch(() => {});
    await stopSelkies(s);
  }
}

/** Selkies' CPU (its whole process group) over the window with its one page, sound on or off. */
async function selkiesCostWindow(display, sound, { audio }) {
  const { s, ctx } = await selkiesUp(display, sound, audio);
  try {
    await sleep(CFG.settleMs);
    const pids = selkiesPids(s);
    const t0 = performance.now();
    const c0 = pidsCpuSec(pids);
    await sleep(CFG.windowMs);
    const c1 = pidsCpuSec(pids);
    const dt = (performance.now() - t0) / 1000;
    const rssKb = pids.reduce((a, p) => { try { return a + procStatus(p).rssKb; } catch { return a; } }, 0);
    const r = { audio, clients: 1, cpuPct: round1(((c1 - c0) / dt) * 100), rssMiB: round1(rssKb / 1024), processes: pids.length };
    log(`selkies cost: 1 client, sound ${audio ? 'on' : 'off'}: cpu ${fmt(r.cpuPct)} % rss ${fmt(r.rssMiB)} MiB`);
    return r;
  } finally {
    await ctx.close().catch(() => {});
    await stopSelkies(s);
  }
}

async function selkiesCost(display, sound) {
  const tone = start('tone', 'gst-launch-1.0', ['-q', 'audiotestsrc', 'is-live=true', 'freq=440', 'volume=0.3', '!', 'pulsesink'],
    childEnv({ PULSE_SERVER: sound.address }));
  const runs = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const audio of r % 2 === 0 ? [true, false] : [false, true]) runs.push({ round: r + 1, ...(await selkiesCostWindow(display, sound, { audio })) });
    }
  } finally {
    await stopChild(tone);
  }
  const m = (audio) => round1(median(runs.filter((x) => x.audio === audio).map((x) => x.cpuPct)));
  const summary = { on1: m(true), off1: m(false) };
  summary.sound1 = round1(summary.on1 - summary.off1);
  return { runs, summary };
}

/**
 * Selkies' latency and cost, or {error} with what stopped it (install,
 * start, page, no audio track): oriel's figures stand either way.
 */
async function selkies(display, sound) {
  const out = {};
  try {
    out.install = await ensureSelkies();
  } catch (e) {
    log(`selkies: not measured: ${e.message}`);
    return { error: `Selkies ${SELKIES_VERSION} could not be installed: ${e.message.split('\n')[0]}` };
  }
  try {
    out.latency = await selkiesLatency(display, sound);
    log(`selkies latency: heard p50 ${fmt(out.latency.audio.p50)} p99 ${fmt(out.latency.audio.p99)} ms; AV offset p50 ${fmt(out.latency.avOffset.p50)}; chromium ${JSON.stringify(out.latency.chromium)}`);
  } catch (e) {
    log(`selkies: latency not measured: ${e.message}`);
    // startSelkies gives no handle when it fails: its log is the harness child's.
    out.logTail = children.filter((c) => c.name === 'selkies').pop()?.log.slice(-30) ?? [];
    const last = out.logTail.filter((l) => l.trim() && !/ exited: code=/.test(l)).pop();
    out.error = `Selkies ${SELKIES_VERSION} did not run: ${e.message.split('\n')[0]}${last ? ` (its log ends: \`${last.trim().slice(0, 200).replace(/`/g, "'")}\`)` : ''}`;
    return out;
  }
  try {
    out.cost = await selkiesCost(display, sound);
  } catch (e) {
    log(`selkies: cost not measured: ${e.message}`);
    out.costError = e.message.split('\n')[0];
  }
  return out;
}

// ------------------------------------------------------------------ cost

async function costWindow(display, sound, { audio, clients }) {
  const agent = await startAgent(display, { env: { PULSE_SERVER: sound.address }, args: audio ? [] : ['--audio', 'off'] });
  const ctx = await launchBrowser();
  const page = await openClient(ctx, agent);
  await waitPresented(page);
  const rx = await Receivers.start(agent.viewerUrl, { name: 'bench-audio' });
  if (clients > 1) {
    const ids = rx.add(clients - 1);
    await rx.waitFirstFrames(ids, 30000).catch((e) => log(`receivers: ${e.message}`));
  }
  await waitClients(agent, clients, 30000);
  await sleep(CFG.settleMs);
  const t0 = performance.now();
  const c0 = procCpuSec(agent.pid);
  await sleep(CFG.windowMs);
  const c1 = procCpuSec(agent.pid);
  const dt = (performance.now() - t0) / 1000;
  const st = procStatus(agent.pid);
  const health = await agent.healthz();
  await rx.quit();
  await ctx.close().catch(() => {});
  await stopChild(agent.rec);
  const r = { audio, clients, cpuPct: round1(((c1 - c0) / dt) * 100), rssMiB: round1(st.rssKb / 1024), threads: st.threads, sound: health.audio };
  log(`cost: ${clients} client(s), sound ${audio ? 'on' : 'off'}: cpu ${fmt(r.cpuPct)} % rss ${fmt(r.rssMiB)} MiB threads ${r.threads}`);
  return r;
}

async function cost(display, sound) {
  const tone = start('tone', 'gst-launch-1.0', ['-q', 'audiotestsrc', 'is-live=true', 'freq=440', 'volume=0.3', '!', 'pulsesink'],
    childEnv({ PULSE_SERVER: sound.address }));
  const runs = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [true, false] : [false, true];
    for (const clients of [1, 8]) for (const audio of order) runs.push({ round: r + 1, ...(await costWindow(display, sound, { audio, clients })) });
  }
  await stopChild(tone);
  const m = (audio, clients) => round1(median(runs.filter((x) => x.audio === audio && x.clients === clients).map((x) => x.cpuPct)));
  const summary = { on1: m(true, 1), off1: m(false, 1), on8: m(true, 8), off8: m(false, 8) };
  summary.sound1 = round1(summary.on1 - summary.off1);
  summary.sound8 = round1(summary.on8 - summary.off8);
  summary.perClient = round1((summary.sound8 - summary.sound1) / 7);
  return { runs, summary };
}

// ---------------------------------------------------------------- report

/** Selkies' latency block of a result, or null (not run, failed, or a result from before it was run). */
const selkiesOf = (res) => res.selkies?.latency ?? null;

function whatTheNumbersSay(res) {
  const l = res.latency;
  const c = res.cost.summary;
  const k = selkiesOf(res);
  const kc = res.selkies?.cost?.summary ?? null;
  const out = [];
  out.push(`A tone at the sound server (the monitor the agent records) is heard in the page ${fmt(l.audio.p50)} ms later at p50 (p99 ${fmt(l.audio.p99)}, ${l.audio.n} of ${res.config.cycles} bursts); ` +
    `the goal is p50 ≤ 40 ms: ${l.audio.p50 !== null && l.audio.p50 <= 40 ? 'met' : `not met (+${fmt(l.audio.p50 - 40)} ms)`}. ` +
    'It covers the agent\'s capture (pulsesrc, 10 ms packets), Opus, the network, Chromium\'s jitter buffer (NetEq) and decoding, and one 256-sample block of the page\'s reader; the player\'s own buffer before the server is not in it ' +
    `(pacat, written to the monitor ${fmt(l.playedToMonitor.p50)} ms at p50).`);
  const ch = l.chromium;
  if (ch) {
    out.push(`Of that, Chromium's jitter buffer (NetEq) held the sound ${fmt(ch.jitterBufferMs)} ms on average (its target ${fmt(ch.jitterBufferTargetMs)} ms, although the page asks for 0), ` +
      `with ${ch.packetsLost ?? '?'} packets lost and ${ch.concealedSamples ?? '?'} samples concealed of ${ch.totalSamplesReceived ?? '?'}; its playout to the (headless, fake) output device adds ${fmt(ch.playoutMs)} ms that this reader does not wait for.`);
  }
  out.push(`The flash that started with each burst was presented ${fmt(l.video.p50)} ms after xsetroot returned (p50, p99 ${fmt(l.video.p99)}). ` +
    `Picture minus sound: p50 ${fmt(l.avOffset.p50)} ms, |offset| p50 ${fmt(l.avOffsetAbs.p50)} / p99 ${fmt(l.avOffsetAbs.p99)} ms (goal |offset| p50 ≤ 20 ms: ` +
    `${l.avOffsetAbs.p50 !== null && l.avOffsetAbs.p50 <= 20 ? 'met' : 'not met'}). The page reads the sound from WebAudio, beside the <video> element, so this is the offset of the two streams as delivered; the element's own lip sync may move the picture further.`);
  out.push(`Sound costs the agent ${fmt(c.sound1)} % of a core with one client and ${fmt(c.sound8)} % with eight (medians of ${res.config.rounds} rounds, sound on minus --audio off): ` +
    `${fmt(c.perClient)} % of a core per added client for the sound, the encode being shared.`);
  if (k) {
    const kch = k.chromium;
    out.push(`Selkies ${res.selkies.install?.versions?.split(' ')[0] ?? '2.1'}, the same bursts and flashes in the same run: heard ${fmt(k.audio.p50)} ms at p50 (p99 ${fmt(k.audio.p99)}, ${k.audio.n} of ${res.config.cycles}), ` +
      `${fmt(Math.abs(k.audio.p50 - l.audio.p50))} ms ${k.audio.p50 >= l.audio.p50 ? 'later' : 'sooner'} than oriel; picture ${fmt(k.video.p50)} ms, picture minus sound p50 ${fmt(k.avOffset.p50)} ms (|offset| p99 ${fmt(k.avOffsetAbs.p99)}). ` +
      (kch ? `Its page asks nothing of the jitter buffer; NetEq held ${fmt(kch.jitterBufferMs)} ms on average (target ${fmt(kch.jitterBufferTargetMs)}). ` +
        `Its capture gates digital silence (pcmflux sends nothing between the bursts: ${kch.packetsReceived ?? '?'} packets against oriel's ${ch?.packetsReceived ?? '?'}), so its ${kch.concealedSamples ?? '?'} concealed samples are mostly those gaps (${kch.packetsLost ?? '?'} packets lost). ` : '') +
      (kc ? `Its sound costs ${fmt(kc.sound1)} % of a core with its one page (${fmt(kc.on1)} against ${fmt(kc.off1)} % with --audio-enabled false, all of its processes).` : ''));
  }
  return out.map((x) => `- ${x}`).join('\n');
}

export function render(res, jsonRel) {
  const l = res.latency;
  const c = res.cost.summary;
  const k = selkiesOf(res);
  const kc = res.selkies?.cost?.summary ?? null;
  const L = ['## Sound: latency, sync with the picture, cost', ''];
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}). Agent ${res.agent.build} build; sound: ${l.health?.audio ?? '?'}.`);
  L.push('');
  L.push(`Method: a bare Xvfb, a private PulseAudio with a null sink as the default output, the agent recording its monitor. ${res.config.cycles} times a 150 ms 1 kHz burst is played into the server (pacat) and the screen flashes white (xsetroot). ` +
    'A recorder on the same monitor (parec, 5 ms latency) notes each burst\'s onset; the page notes it in the received track (WebAudio ScriptProcessor, 256 samples) and the flash in the presented frames (requestVideoFrameCallback presentationTime, the luma at the centre). Times on the machine\'s wall clock. ' +
    `Cost: agent CPU over ${res.config.windowMs / 1000} s with 1 and 8 clients (one Chromium, the rest bench_receiver), a tone playing, sound on against \`--audio off\`, fresh agents, ${res.config.rounds} rounds.`);
  L.push('');
  if (k) {
    L.push(`Selkies ${res.selkies.install?.versions?.split(' ')[0] ?? '2.1'} (PyPI, pixelflux ${res.selkies.install?.versions?.split(' ')[1] ?? '?'}) after oriel on the same display and sound server, in its WebRTC mode with its sound as shipped (pcmflux: Opus, 10 ms frames, RED) ` +
      'but recording the same monitor (`--audio-device-name desk.monitor`); its page puts the audio track in its <video>\'s stream, which the same recorder reads. ' +
      `Its cost: all of its processes with its one page, sound on against \`--audio-enabled false\`, ${res.config.rounds} rounds.`);
    L.push('');
    L.push(`| | oriel: samples | p50 ms | p99 ms | Selkies ${SELKIES_VERSION.replace(/\.0$/, '')}: samples | p50 ms | p99 ms |`);
    L.push('|---|---:|---:|---:|---:|---:|---:|');
    const row = (what, a, b, bold = false) => {
      const v = (x) => (bold ? `**${fmt(x)}**` : fmt(x));
      return `| ${what} | ${a.n} | ${v(a.p50)} | ${fmt(a.p99)} | ${b.n} | ${v(b.p50)} | ${fmt(b.p99)} |`;
    };
    L.push(row('sound: monitor → heard in the page', l.audio, k.audio, true));
    L.push(row('picture: xsetroot done → presented', l.video, k.video));
    L.push(row('picture minus sound', l.avOffset, k.avOffset));
    L.push(row('\\|picture minus sound\\|', l.avOffsetAbs, k.avOffsetAbs, true));
    L.push(row('(player: written → at the monitor)', l.playedToMonitor, k.playedToMonitor));
    L.push('');
    const a = l.chromium ?? {};
    const b = k.chromium ?? {};
    const n = (x) => x ?? 'n/a';
    L.push(`| Chromium's receiver (means) | oriel | Selkies ${SELKIES_VERSION.replace(/\.0$/, '')} |`);
    L.push('|---|---:|---:|');
    L.push(`| jitter buffer (NetEq) ms | ${fmt(a.jitterBufferMs)} | ${fmt(b.jitterBufferMs)} |`);
    L.push(`| its target ms | ${fmt(a.jitterBufferTargetMs)} | ${fmt(b.jitterBufferTargetMs)} |`);
    L.push(`| playout to the output device ms | ${fmt(a.playoutMs)} | ${fmt(b.playoutMs)} |`);
    L.push(`| packets received / lost | ${n(a.packetsReceived)} / ${n(a.packetsLost)} | ${n(b.packetsReceived)} / ${n(b.packetsLost)} |`);
    L.push(`| samples concealed / received | ${n(a.concealedSamples)} / ${n(a.totalSamplesReceived)} | ${n(b.concealedSamples)} / ${n(b.totalSamplesReceived)} |`);
  } else {
    L.push('| | samples | p50 ms | p99 ms |');
    L.push('|---|---:|---:|---:|');
    L.push(`| sound: monitor → heard in the page | ${l.audio.n} | **${fmt(l.audio.p50)}** | ${fmt(l.audio.p99)} |`);
    L.push(`| picture: xsetroot done → presented | ${l.video.n} | ${fmt(l.video.p50)} | ${fmt(l.video.p99)} |`);
    L.push(`| picture minus sound | ${l.avOffset.n} | ${fmt(l.avOffset.p50)} | ${fmt(l.avOffset.p99)} |`);
    L.push(`| \\|picture minus sound\\| | ${l.avOffsetAbs.n} | **${fmt(l.avOffsetAbs.p50)}** | ${fmt(l.avOffsetAbs.p99)} |`);
    L.push(`| (player: written → at the monitor) | ${l.playedToMonitor.n} | ${fmt(l.playedToMonitor.p50)} | ${fmt(l.playedToMonitor.p99)} |`);
  }
  L.push('');
  L.push('| agent, clients | CPU %, sound on | sound off | the sound\'s share |');
  L.push('|---|---:|---:|---:|');
  L.push(`| oriel, 1 | ${fmt(c.on1)} | ${fmt(c.off1)} | **${fmt(c.sound1)}** |`);
  L.push(`| oriel, 8 | ${fmt(c.on8)} | ${fmt(c.off8)} | **${fmt(c.sound8)}** |`);
  if (kc) L.push(`| Selkies ${SELKIES_VERSION.replace(/\.0$/, '')}, 1 | ${fmt(kc.on1)} | ${fmt(kc.off1)} | **${fmt(kc.sound1)}** |`);
  L.push('');
  // Results from before Selkies was run here have no `selkies` at all.
  if (!res.selkies) L.push('Selkies 2.1 was not run beside it in this run.', '');
  else if (!k) L.push(`Selkies 2.1 is missing from this run: ${res.selkies.error ?? 'no figures'}.`, '');
  L.push(...readingAndOddities(whatTheNumbersSay(res), res.notes));
  return L.join('\n');
}

export function headline(res) {
  const l = res.latency;
  const c = res.cost.summary;
  const k = selkiesOf(res);
  const kc = res.selkies?.cost?.summary ?? null;
  const beside = k ? `; Selkies 2.1 in the same run: heard p50 ${fmt(k.audio.p50)} / p99 ${fmt(k.audio.p99)} ms, picture minus sound p50 ${fmt(k.avOffset.p50)} ms (|offset| p99 ${fmt(k.avOffsetAbs.p99)})` +
    `${kc ? `, its sound ${fmt(kc.sound1)} % of a core with 1 client` : ''}` : res.selkies ? '; Selkies 2.1 not measured in this run' : '';
  return [`Sound: a tone at the sound server is heard in the page p50 ${fmt(l.audio.p50)} / p99 ${fmt(l.audio.p99)} ms; picture minus sound p50 ${fmt(l.avOffset.p50)} ms (|offset| p99 ${fmt(l.avOffsetAbs.p99)}); ` +
    `the sound costs ${fmt(c.sound1)} % of a core with 1 client, ${fmt(c.sound8)} % with 8${beside} (part \`audio\`).`];
}

async function main(res) {
  res.command = 'cd bench && node audio.mjs';
  res.config = { cycles: CYCLES, rounds: ROUNDS, windowMs: CFG.windowMs, width: CFG.width, height: CFG.height, framerate: CFG.framerate };
  res.machine = machineInfo();
  res.agent = agentInfo();
  const { display } = await startBareDisplay();
  spawnSync('xsetroot', ['-solid', 'black'], { env: childEnv({ DISPLAY: display }) });
  const sound = await startPulse();
  res.latency = await latency(display, sound);
  res.cost = await cost(display, sound);
  log(`chromium audio: ${JSON.stringify(res.latency.chromium)}`);
  res.selkies = SELKIES ? await selkies(display, sound) : { error: 'Selkies was not asked for (BENCH_AUDIO_SELKIES=0)' };
  res.notes = [];
  const check = (l, who) => {
    if (l.audioContext !== 'running') res.notes.push(`${who}: the page's AudioContext was ${l.audioContext}`);
    if (l.audio.n < CYCLES * 0.8) res.notes.push(`${who}: only ${l.audio.n} of ${CYCLES} bursts were heard in the page`);
    if (l.video.n < CYCLES * 0.8) res.notes.push(`${who}: only ${l.video.n} of ${CYCLES} flashes were seen in the page`);
  };
  check(res.latency, 'oriel');
  if (res.selkies.latency) check(res.selkies.latency, 'Selkies');
  if (res.selkies.costError) res.notes.push(`Selkies' CPU was not measured: ${res.selkies.costError}`);
  noteAgentWarnings(res, res.notes, []);
  const l = res.latency;
  const k = res.selkies.latency;
  return `audio: heard p50 ${fmt(l.audio.p50)} p99 ${fmt(l.audio.p99)} ms; video p50 ${fmt(l.video.p50)}; AV offset p50 ${fmt(l.avOffset.p50)} |p99| ${fmt(l.avOffsetAbs.p99)}; ` +
    `cost 1: ${fmt(res.cost.summary.sound1)} % 8: ${fmt(res.cost.summary.sound8)} %\n` +
    (k ? `selkies: heard p50 ${fmt(k.audio.p50)} p99 ${fmt(k.audio.p99)} ms; video p50 ${fmt(k.video.p50)}; AV offset p50 ${fmt(k.avOffset.p50)} |p99| ${fmt(k.avOffsetAbs.p99)}; ` +
      `cost 1: ${fmt(res.selkies.cost?.summary.sound1)} %` : `selkies: not measured (${res.selkies.error})`);
}

if (isMain(import.meta.url)) runPart('audio', main);
