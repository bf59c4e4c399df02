// Sound for the e2e tests: a private PulseAudio (its socket in a 0700
// temp directory, a null sink as the default output), a tone played into
// it, and what a page hears, by WebAudio's AnalyserNode on the stream the
// page's <video> plays.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { childEnv, waitFor } from './harness.mjs';
import { pactlAt, pulseSetup } from '../sound/pulse.mjs';


/** Starts PulseAudio for harness `h`; returns {address, dir, rec, pactl(args)}. */
export async function startSoundServer(h) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-e2e-pulse-'));
  h.tmpDirs.push(dir);
  const setup = pulseSetup(dir);
  const rec = h.spawn('pulseaudio', setup.program, setup.args, { env: childEnv(setup.env) });
  const pactl = pactlAt(setup.address);
  await waitFor(() => {
    if (rec.exitCode !== undefined) throw new Error(`pulseaudio exited: ${rec.log.slice(-5).join(' | ')}`);
    return pactl('info').status === 0;
  }, 10000, 'pulseaudio answering', 100);
  return { address: setup.address, dir, rec, pactl };
}

/** A sine at `freq` Hz into the default output of `address`. */
export function playTone(h, address, freq) {
  return h.spawn(`tone-${freq}`, 'gst-launch-1.0', [
    '-q', 'audiotestsrc', 'is-live=true', `freq=${freq}`, 'volume=0.5', '!', 'audioconvert', '!', 'pulsesink',
  ], { env: childEnv({ PULSE_SERVER: address }) });
}

/**
 * The loudest frequency the page hears over `ms`: {freq, db, binHz}.
 * Chromium hands a remote track to WebAudio while a (muted) element plays
 * it (FIELD-NOTES); the page's <video> does.
 */
export function hearPeak(page, ms = 1500) {
  return page.evaluate(async (ms) => {
    const video = document.querySelector('video');
    const stream = video.srcObject;
    if (!stream || !stream.getAudioTracks().length) return { freq: null, db: null, tracks: 0 };
    const ctx = new AudioContext();
    await ctx.resume();
    const source = ctx.createMediaStreamSource(new MediaStream(stream.getAudioTracks()));
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0;
    source.connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    const sum = new Float32Array(analyser.frequencyBinCount);
    const end = performance.now() + ms;
    let n = 0;
    while (performance.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      analyser.getFloatFrequencyData(bins);
      for (let i = 0; i < bins.length; i++) sum[i] += bins[i];
      n += 1;
    }
    let best = 1;
    for (let i = 1; i < sum.length; i++) if (sum[i] > sum[best]) best = i;
    const binHz = ctx.sampleRate / analyser.fftSize;
    await ctx.close();
    return { freq: best * binHz, db: sum[best] / n, binHz, tracks: stream.getAudioTracks().length };
  }, ms);
}

/** Waits until the page's loudest frequency is within two bins of `freq`. */
export async function hears(page, freq, what) {
  let last;
  await waitFor(async () => {
    last = await hearPeak(page, 1000);
    return last.freq !== null && Math.abs(last.freq - freq) <= 2 * last.binHz && last.db > -70;
  }, 15000, `${what}: the page hearing ${freq} Hz`, 0).catch((e) => {
    e.message += ` (last heard ${JSON.stringify(last)})`;
    throw e;
  });
  return last;
}

/** The pulse clients recording on `pactl`'s server (source outputs) named oriel. */
export function orielRecordings(pactl) {
  const r = pactl('list', 'source-outputs');
  return (r.stdout.match(/application\.name = "oriel"/g) ?? []).length;
}

/** A WAV file of a sine at `freq` Hz (mono, 48 kHz, `seconds` long), for Chromium's fake microphone. */
export function toneFile(dir, freq, seconds = 10) {
  const file = path.join(dir, `tone-${freq}.wav`);
  const r = spawnSync('gst-launch-1.0', ['-q', 'audiotestsrc', `freq=${freq}`, 'volume=0.5', `num-buffers=${Math.round(seconds * 48000 / 1024)}`,
    'samplesperbuffer=1024', '!', 'audio/x-raw,rate=48000,channels=1,format=S16LE', '!', 'wavenc', '!', 'filesink', `location=${file}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`making ${file}: ${r.stderr}`);
  return file;
}

/** Goertzel power of `freq` in mono s16le samples at 48 kHz. */
function power(samples, freq) {
  const k = 2 * Math.cos((2 * Math.PI * freq) / 48000);
  let s1 = 0;
  let s2 = 0;
  for (const x of samples) {
    const s0 = x + k * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return (s1 * s1 + s2 * s2 - k * s1 * s2) / samples.length;
}

/**
 * Records `seconds` of the default source of `address`, what a program on
 * the desktop recording "the microphone" gets: {rms, ratio(freq)} where
 * ratio is the power at freq over the mean power of a few other tones.
 */
export function recordDefaultSource(address, seconds = 1.5) {
  const r = spawnSync('parec', ['--raw', '--format=s16le', '--rate=48000', '--channels=1', '--device=@DEFAULT_SOURCE@', '--latency-msec=20'],
    { env: childEnv({ PULSE_SERVER: address }), timeout: seconds * 1000, encoding: 'buffer', maxBuffer: 64 << 20, killSignal: 'SIGTERM' });
  const buf = r.stdout ?? Buffer.alloc(0);
  const samples = new Int16Array(buf.buffer, buf.byteOffset, Math.floor(buf.length / 2));
  // The first 200 ms may hold what was there before.
  const tail = samples.subarray(Math.min(samples.length, 9600));
  let sq = 0;
  for (const x of tail) sq += x * x;
  const rms = tail.length ? Math.sqrt(sq / tail.length) : 0;
  const ratio = (freq) => {
    const others = [430, 1570, 2350, 3100].map((f) => power(tail, f));
    const mean = others.reduce((a, b) => a + b, 0) / others.length;
    return power(tail, freq) / Math.max(mean, 1e-9);
  };
  return { samples: tail.length, rms, ratio };
}
