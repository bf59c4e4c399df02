#!/usr/bin/env node
// oriel benchmark part `files`: files both ways between the controller's
// page and the desktop on loopback, and what the picture does meanwhile.
//
//   cd bench && node files.mjs        (or `make bench-files`)
//
// Two desktops, one after the other, each with its own agent and one
// Chromium page holding the controller link:
//   - still (a bare Xvfb: the capture sends a repeat a second): the
//     transfers' own speed, the page's upload pacing idle (it yields only
//     to a moving picture);
//   - moving (the bench's full-screen mover at the configured frame rate):
//     the frame rate the page decodes before and during each transfer,
//     and the speed the upload keeps while it yields to the picture.
// Upload: the page's Upload picker (what a drop does), timed from the pick
// to the agent's `done` (the file synced and in place), its SHA-256
// checked. Download: `oriel send FILE`, timed from the command's start to
// the page holding every byte (it then hands the file to the browser's
// downloads). Agent CPU (utime+stime) and peak RSS over each transfer.
//
// Knobs (environment): ORIEL_BIN, BENCH_FILES_MIB (256), BENCH_NO_MARKDOWN=1,
// BENCH_TIMEOUT_MS (600000).
import crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CFG, agentInfo, envNum, fmt, launchBrowser, log, machineInfo, procCpuSec, procStatus, sleep, startAgent,
  startBareDisplay, startDisplay, status, stopChild, tmpDirs, waitFor,
} from './lib/harness.mjs';
import { isMain, noteAgentWarnings, runPart, saveAgentLog } from './lib/run.mjs';

const MIB = envNum('BENCH_FILES_MIB', 256);
CFG.timeoutMs = envNum('BENCH_TIMEOUT_MS', 600000);

function randomFile(dir, mib) {
  const file = path.join(dir, `bench-${mib}MiB.bin`);
  const fd = fs.openSync(file, 'w');
  const hash = crypto.createHash('sha256');
  for (let i = 0; i < mib; i++) {
    const block = crypto.randomBytes(1 << 20);
    hash.update(block);
    fs.writeSync(fd, block);
  }
  fs.closeSync(fd);
  return { file, sha256: hash.digest('hex') };
}

const sha256Of = (file) => new Promise((resolve, reject) => {
  const h = crypto.createHash('sha256');
  fs.createReadStream(file).on('data', (d) => h.update(d)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
});
const rssMiB = (pid) => (procStatus(pid).rssKb ?? 0) / 1024;
const frames = async (page) => (await status(page)).framesDecoded;

/** Runs `transfer` while sampling the agent; its time, fps, CPU and peak RSS. */
async function measured(agent, page, transfer) {
  const f0 = await frames(page);
  const cpu0 = procCpuSec(agent.pid);
  const rss0 = rssMiB(agent.pid);
  let rssMax = rss0;
  const sampler = setInterval(() => { rssMax = Math.max(rssMax, rssMiB(agent.pid)); }, 200);
  const t0 = performance.now();
  try {
    await transfer();
  } finally {
    clearInterval(sampler);
  }
  const secs = (performance.now() - t0) / 1000;
  const f1 = await frames(page);
  return {
    seconds: secs,
    mibPerSecond: MIB / secs,
    mbPerSecond: (MIB * 1.048576) / secs,
    fps: (f1 - f0) / secs,
    agentCpuPercent: (100 * (procCpuSec(agent.pid) - cpu0)) / secs,
    agentRssGrowthMiB: rssMax - rss0,
  };
}

async function oneDesktop(res, kind, src, ctx) {
  const display = kind === 'still' ? await startBareDisplay() : await startDisplay();
  const uploads = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-bench-uploads-'));
  tmpDirs.push(uploads);
  const agent = await startAgent(display.display, { args: ['--upload-dir', uploads] });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  await page.goto(agent.controllerUrl, { waitUntil: 'load', timeout: 20000 });
  await waitFor(async () => (await status(page)).files?.available, 20000, 'the controller page\'s files channel');
  await waitFor(async () => (await frames(page)) > 0, 20000, 'the controller page to decode');
  // The frame rate before, over 3 s (the page's pacing takes its baseline
  // from the last second too).
  const b0 = await frames(page);
  await sleep(3000);
  const fpsBefore = ((await frames(page)) - b0) / 3;

  const up = await measured(agent, page, async () => {
    await page.setInputFiles('#file-pick', src.file);
    await waitFor(async () => {
      const t = (await status(page)).files.transfers.at(-1);
      if (t?.state === 'failed') throw new Error(`upload failed: ${t.reason}`);
      return t?.state === 'done';
    }, CFG.timeoutMs, 'the upload', 100);
  });
  const st = await status(page);
  up.pageRateAtEndMiBs = st.files.pace.rate / (1 << 20);
  const saved = path.join(uploads, path.basename(src.file));
  up.sha256Matches = (await sha256Of(saved)) === src.sha256;
  fs.rmSync(saved, { force: true });

  const before = (await status(page)).files.downloads.length;
  let sendOut = '';
  const down = await measured(agent, page, async () => {
    const child = spawn(CFG.bin, ['send', '--state-dir', agent.stateDir, src.file], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => { sendOut += d; });
    child.stderr.on('data', (d) => { sendOut += d; });
    await waitFor(async () => {
      const d = (await status(page)).files.downloads;
      if (d.length > before && d.at(-1).state === 'failed') throw new Error(`download failed: ${d.at(-1).reason}`);
      return d.length > before && d.at(-1).state === 'saved';
    }, CFG.timeoutMs, 'the download', 100);
  });
  down.sendOutput = sendOut.trim();
  const r = { desktop: kind, fpsBefore, upload: up, download: down };
  log(`${kind}: upload ${fmt(up.mbPerSecond)} MB/s at ${fmt(up.fps)} fps (before ${fmt(fpsBefore)}), agent ${fmt(up.agentCpuPercent)} % CPU, +${fmt(up.agentRssGrowthMiB)} MiB; ` +
    `download ${fmt(down.mbPerSecond)} MB/s at ${fmt(down.fps)} fps, agent ${fmt(down.agentCpuPercent)} % CPU`);
  res.agentLogFiles.push(saveAgentLog(agent.rec.log, res.startedAt, `files-${kind}`));
  noteAgentWarnings(res, res.notes, agent.rec.log);
  await page.close();
  await stopChild(agent.rec);
  for (const rec of display.recs ?? [display.xvfb]) await stopChild(rec);
  return r;
}

async function main(res) {
  res.command = 'cd bench && node files.mjs';
  res.config = { mib: MIB, width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps, scene: CFG.scene };
  res.machine = machineInfo();
  res.agent = agentInfo();
  res.notes = [];
  res.agentLogFiles = [];
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-bench-files-'));
  tmpDirs.push(scratch);
  const src = randomFile(scratch, MIB);
  const ctx = await launchBrowser();
  res.desktops = [];
  for (const kind of ['still', 'moving']) res.desktops.push(await oneDesktop(res, kind, src, ctx));
  const [still, moving] = res.desktops;
  res.summary = {
    uploadMBs: still.upload.mbPerSecond,
    downloadMBs: still.download.mbPerSecond,
    movingUploadMBs: moving.upload.mbPerSecond,
    fpsBefore: moving.fpsBefore,
    fpsDuringUpload: moving.upload.fps,
    fpsDuringDownload: moving.download.fps,
    intact: res.desktops.every((d) => d.upload.sha256Matches),
  };
  const s = res.summary;
  return `files ${MIB} MiB on loopback: upload ${fmt(s.uploadMBs)} MB/s, download ${fmt(s.downloadMBs)} MB/s (still desktop); ` +
    `moving desktop ${fmt(s.fpsBefore)} fps before, ${fmt(s.fpsDuringUpload)} during the upload (${fmt(s.movingUploadMBs)} MB/s), ${fmt(s.fpsDuringDownload)} during the download`;
}

/** This part's section of BENCHMARKS.md. */
export function render(res, jsonRel) {
  const c = res.config;
  const s = res.summary;
  const L = [];
  L.push('## Files both ways');
  L.push('');
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}).`);
  L.push('');
  L.push(`One ${c.mib} MiB file of random bytes, uploaded by the controller's page (its Upload picker, as a drop does; timed to the agent's \`done\`, the file synced ` +
    'and in place, SHA-256 checked) and sent back with `oriel send` (timed from the command to the page holding every byte). First on a still desktop ' +
    `(a bare Xvfb), where the page's pacing stays idle, then on the bench's moving ${c.width}x${c.height}@${c.framerate} scene, where the page slows an ` +
    'upload down whenever the frame rate it decodes falls under 90 % of the best it just had. Agent CPU is its utime+stime over the transfer; RSS growth its peak over the start. Loopback, one machine.');
  L.push('');
  L.push('| desktop | fps before | upload MB/s | fps during upload | agent CPU % | agent RSS + MiB | page pace at end MiB/s | intact | download MB/s | fps during download | agent CPU % |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|');
  for (const d of res.desktops) {
    L.push(`| ${d.desktop} | ${fmt(d.fpsBefore)} | **${fmt(d.upload.mbPerSecond)}** | ${fmt(d.upload.fps)} | ${fmt(d.upload.agentCpuPercent)} | ${fmt(d.upload.agentRssGrowthMiB)} | ` +
      `${d.upload.pageRateAtEndMiBs >= 256 ? 'unlimited' : fmt(d.upload.pageRateAtEndMiBs)} | ${d.upload.sha256Matches ? 'yes' : '**no**'} | **${fmt(d.download.mbPerSecond)}** | ${fmt(d.download.fps)} | ${fmt(d.download.agentCpuPercent)} |`);
  }
  L.push('');
  L.push('### What the numbers say');
  L.push('');
  const goal = 50;
  L.push(`- On loopback the upload ran at ${fmt(s.uploadMBs)} MB/s and the download at ${fmt(s.downloadMBs)} MB/s, against a goal of ${goal} MB/s: ` +
    `${s.uploadMBs >= goal && s.downloadMBs >= goal ? 'both meet it' : 'not met'}. Both ends encrypt and decrypt every byte (DTLS) and run SCTP in user space ` +
    '(Chromium\'s and webrtcbin\'s usrsctp) on the same 2 cores.');
  L.push(`- With the desktop moving the page decoded ${fmt(s.fpsBefore)} fps before, ${fmt(s.fpsDuringUpload)} during the upload and ${fmt(s.fpsDuringDownload)} during the download; ` +
    `the upload kept ${fmt(s.movingUploadMBs)} MB/s while yielding to the picture.`);
  if (res.notes?.length) {
    L.push('');
    L.push('### Oddities seen in this run');
    L.push('');
    for (const n of res.notes) L.push(`- ${n}`);
  }
  L.push('');
  return L.join('\n');
}

/** One-line findings for the top of BENCHMARKS.md. */
export function headline(res) {
  const s = res.summary;
  return [`Files on loopback (${res.config.mib} MiB): upload ${fmt(s.uploadMBs)} MB/s, download ${fmt(s.downloadMBs)} MB/s; on a moving desktop ` +
    `${fmt(s.fpsBefore)} fps before, ${fmt(s.fpsDuringUpload)} during an upload, ${fmt(s.fpsDuringDownload)} during a download (part \`files\`).`];
}

if (isMain(import.meta.url)) runPart('files', main);
