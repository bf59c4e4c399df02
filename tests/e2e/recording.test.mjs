// Recording (`--record PATH`): the shared encoded stream goes into a
// Matroska file without re-encoding. (a) A clean stop (SIGTERM) leaves a
// file that gst-discoverer-1.0 reads as H.264 at the desktop's size, as
// long as the recording ran; a viewer joining and leaving meanwhile does
// not cut it, nor does the idle stop after it left. (b) A killed agent
// (SIGKILL) still leaves a file that decodes to the end.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, Harness, ORIEL_BIN, childEnv, sleep, status, tokenOf, waitDecoding, waitFor, within } from './harness.mjs';

const h = new Harness('recording');
after(() => h.cleanup());

function tmpDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-e2e-rec-'));
  h.tmpDirs.push(d);
  return d;
}

/** gst-discoverer-1.0's view of `file`: {duration (s), width, height, caps}. */
function discover(file) {
  const r = spawnSync('gst-discoverer-1.0', ['-v', file], { encoding: 'utf8', timeout: 30000 });
  assert.equal(r.status, 0, `gst-discoverer-1.0 failed: ${r.stderr}${r.stdout}`);
  const m = r.stdout.match(/Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/);
  assert.ok(m, `no duration in:\n${r.stdout}`);
  const num = (re) => Number((r.stdout.match(re) ?? [])[1]);
  return {
    duration: Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]),
    width: num(/Width: (\d+)/),
    height: num(/Height: (\d+)/),
    h264: /video\/x-h264/.test(r.stdout),
    text: r.stdout,
  };
}

/** Decodes `file` to the end: {code, frames, stderr}. */
function decode(file) {
  const r = spawnSync(
    'gst-launch-1.0',
    ['-v', 'filesrc', `location=${file}`, '!', 'matroskademux', '!', 'h264parse', '!',
      'avdec_h264', '!', 'fakesink', 'silent=false', 'sync=false'],
    { encoding: 'utf8', timeout: 60000, maxBuffer: 64 * 1024 * 1024 },
  );
  const frames = (r.stdout.match(/last-message = chain/g) ?? []).length;
  return { code: r.status, frames, stderr: r.stderr };
}

async function metric(agent, name) {
  return Agent.metricSamples(await agent.metrics(), name)[0]?.value;
}

h.test('--record: a clean stop leaves a complete file of the desktop, a viewer coming and going changes nothing', async (t) => {
  const { display } = await h.startDisplay({ size: '1280x720' });
  const dir = tmpDir();
  const file = path.join(dir, 'desk.mkv');
  fs.writeFileSync(file, 'not to be overwritten');
  const agent = await h.startAgent({ display, args: ['--record', file, '--idle-stop-ms', '500'] });
  // desk.mkv exists: the recording goes to desk-2.mkv.
  const recorded = path.join(dir, 'desk-2.mkv');
  await h.waitForLog(agent.rec, /recording started.*started_by=--record/, 20000, 'recording started');
  const started = Date.now();
  assert.ok(agent.log.some((l) => /recording started/.test(l) && l.includes(recorded)), 'logged with its path');
  assert.equal(fs.readFileSync(file, 'utf8'), 'not to be overwritten');

  // No viewer: the recording alone keeps the capture running.
  await sleep(2000);
  assert.equal(await metric(agent, 'oriel_recording_active'), 1);
  assert.equal(await metric(agent, 'oriel_pipeline_running'), 1);
  // A viewer comes (its join keyframe goes into the file too) and leaves;
  // the idle stop (500 ms) must not stop the recording's capture.
  const browser = await h.launchBrowser();
  const page = await h.openClient(browser, agent);
  await waitDecoding(page, 20000);
  await page.close();
  const left = Date.now() - started;
  await sleep(Math.max(1000, 10000 - left));
  const frames = await metric(agent, 'oriel_recording_frames_total');
  assert.ok(frames > 100, `${frames} frames recorded`);
  assert.ok((await metric(agent, 'oriel_recording_bytes_total')) > 0);

  const elapsed = (Date.now() - started) / 1000;
  agent.signal('SIGTERM');
  const exit = await within(agent.rec.exited, 15000, null);
  assert.deepEqual(exit, { code: 0, signal: null }, 'clean exit');
  assert.ok(agent.log.some((l) => /recording stopped/.test(l) && l.includes(recorded)), 'stop logged');

  const info = discover(recorded);
  assert.ok(info.h264, `video/x-h264 in:\n${info.text}`);
  assert.equal(info.width, 1280);
  assert.equal(info.height, 720);
  // The file starts at the first keyframe after "recording started" and
  // ends at SIGTERM; a file cut short or without a duration fails here.
  assert.ok(Math.abs(info.duration - elapsed) < 1.5,
    `file lasts ${info.duration.toFixed(2)} s, the recording ran ${elapsed.toFixed(2)} s`);
  const played = decode(recorded);
  assert.equal(played.code, 0, played.stderr);
  assert.ok(played.frames >= frames * 0.95, `${played.frames} frames decode of ${frames} recorded`);
  t.diagnostic(`clean stop: file ${info.duration.toFixed(2)} s, recording ran ${elapsed.toFixed(2)} s; ${played.frames} frames decode, ${frames} recorded`);
});

h.test('--record: a killed agent still leaves a playable file', async (t) => {
  const { display } = await h.startDisplay({ size: '1280x720' });
  const dir = tmpDir();
  const agent = await h.startAgent({ display, args: ['--record', dir] });
  const line = await h.waitForLog(agent.rec, /recording started/, 20000, 'recording started');
  // A directory gets a time-stamped file.
  const m = line.match(/path=(\S+oriel-\d{8}-\d{6}Z\.mkv)/);
  assert.ok(m, `a time-stamped file in ${line}`);
  const recorded = m[1];
  assert.equal(path.dirname(recorded), dir);
  await sleep(5000);
  const frames = await metric(agent, 'oriel_recording_frames_total');
  agent.signal('SIGKILL');
  await within(agent.rec.exited, 5000);

  const played = decode(recorded);
  assert.equal(played.code, 0, `the killed recording does not play: ${played.stderr}`);
  // Everything counted before the kill was written (unbuffered).
  assert.ok(frames > 50, `${frames} frames recorded in 5 s`);
  assert.ok(played.frames >= frames, `${played.frames} frames decode, ${frames} were recorded before the kill`);
  t.diagnostic(`SIGKILL: ${played.frames} frames decode, ${frames} counted before the kill`);
});

h.test('the controller starts and stops a recording from its page while a viewer plays on; the CLI stops one too; a viewer token is refused', async (t) => {
  const { display } = await h.startDisplay({ size: '1280x720' });
  const dir = tmpDir();
  const agent = await h.startAgent({ display, args: ['--record', dir], env: {} });
  // --record also starts one at once; stop it first through the CLI (the controller's endpoint).
  await h.waitForLog(agent.rec, /recording started/, 20000, 'the startup recording');
  const cli = (...args) => spawnSync(ORIEL_BIN, ['record', ...args, '--url', agent.url, '--state-dir', agent.stateDir], { encoding: 'utf8', env: childEnv() });
  const stopped = cli('stop');
  assert.equal(stopped.status, 0, stopped.stderr);
  assert.equal(JSON.parse(stopped.stdout).active, false);

  const browser = await h.launchBrowser();
  const viewer = await h.openClient(browser, agent);
  const controller = await h.openClient(browser, agent, agent.controllerUrl);
  await waitDecoding(controller, 20000, 5);
  const before = await waitDecoding(viewer, 20000, 5);
  // A viewer's token is refused by the control endpoint.
  const denied = await fetch(`${agent.url}api/control`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${tokenOf(agent.viewerUrl())}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ record: { on: true } }),
  });
  assert.equal(denied.status, 403);

  await waitFor(async () => (await status(controller)).control?.recording?.active === false, 10000, 'the panel to show recording stopped');
  await controller.click('#control button[data-what="record"]');
  await waitFor(async () => (await status(controller)).control?.recording?.active === true, 10000, 'the panel to show it recording');
  const line = await h.waitForLog(agent.rec, /recording started.*started_by=controller/, 10000, 'who started it');
  const recorded = line.match(/path=(\S+\.mkv)/)[1];
  const started = Date.now();
  await sleep(4000);
  await controller.click('#control button[data-what="record"]');
  await waitFor(async () => (await status(controller)).control?.recording?.active === false, 10000, 'stopped again');
  const elapsed = (Date.now() - started) / 1000;

  // The viewer kept its session and decoded all along.
  const after = await status(viewer);
  assert.equal(after.connects, before.connects);
  assert.equal(after.peerConnections, before.peerConnections);
  assert.ok(after.framesDecoded >= before.framesDecoded + 60, `viewer decoded ${after.framesDecoded - before.framesDecoded} frames meanwhile`);
  const info = discover(recorded);
  assert.equal(info.width, 1280);
  assert.ok(Math.abs(info.duration - elapsed) < 1.5, `file ${info.duration} s, recorded for ${elapsed} s`);
  t.diagnostic(`controller recording: ${info.duration.toFixed(2)} s file for ${elapsed.toFixed(2)} s`);
  await h.kill(agent.rec);
});

/** Mounts a `size` tmpfs on a new directory, or returns null (why in `.why`) where mount is not allowed. */
function smallFilesystem(size) {
  const dir = tmpDir();
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'oriel-e2e-full', dir], { encoding: 'utf8' });
  if (r.status !== 0) return { dir: null, why: `mount -t tmpfs failed (${(r.stderr || r.error?.message || '').trim()}): not root?` };
  // Lazily: detached at once even if a failed test left the agent running.
  h.cleanups.push(async () => spawnSync('umount', ['-l', dir]));
  return { dir, why: null };
}

/** Writes zeros into `file` until the filesystem refuses (ENOSPC): the disk is full. */
function fillUp(file) {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  let written = 0;
  try {
    for (;;) written += fs.writeSync(fd, chunk);
  } catch (e) {
    if (e.code !== 'ENOSPC') throw e;
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

async function failures(agent, reason) {
  const s = Agent.metricSamples(await agent.metrics(), 'oriel_recording_failures_total');
  return s.find((x) => x.labels === `{reason="${reason}"}`)?.value;
}

/**
 * What every fault of the recording must leave: the recording stopped with
 * the message (log, /metrics, the controller's panel), both pages decoding
 * on in the same session, the agent alive and its file playable up to where
 * it got. Returns the figures for the diagnostic.
 */
async function assertRecordingFailedAlone(agent, { controller, viewer, recorded, reason, message }) {
  const line = await h.waitForLog(agent.rec, message, 15000, `the recording failure (${message})`);
  const failedAt = Date.now();
  assert.ok(line.includes(recorded), `the failure names the file: ${line}`);
  assert.equal(agent.log.filter((l) => /recording stopped: /.test(l)).length, 1, 'logged once');
  assert.equal(await failures(agent, reason), 1, `oriel_recording_failures_total{reason="${reason}"}`);
  assert.equal(await metric(agent, 'oriel_recording_active'), 0);
  // The controller's panel says why (it polls every 2 s).
  const shown = await waitFor(async () => {
    const rec = (await status(controller)).control?.recording;
    return rec?.active === false && rec?.error ? rec : null;
  }, 10000, 'the controller panel to show the failure');
  assert.equal(shown.error.reason, reason);
  assert.match(shown.error.message, message);
  const panel = controller.locator('#control li[data-state="failed"]');
  assert.equal(await panel.count(), 1, 'a failed row in the panel');
  assert.match(await panel.innerText(), message);
  // Every page plays on, in the session it had, until 10 s after the
  // failure (at least 5 s from here): at a third of the frame rate or more,
  // so a busy 2-core machine passes and a frozen picture does not.
  const before = await Promise.all([status(controller), status(viewer)]);
  const windowStart = Date.now();
  await sleep(Math.max(5000, 10000 - (windowStart - failedAt)));
  const after = await Promise.all([status(controller), status(viewer)]);
  const windowS = (Date.now() - windowStart) / 1000;
  const least = Math.floor(windowS * 10);
  for (const [i, name] of ['controller', 'viewer'].entries()) {
    assert.equal(after[i].connects, before[i].connects, `${name} kept its session`);
    const decoded = after[i].framesDecoded - before[i].framesDecoded;
    assert.ok(decoded >= least,
      `${name} decoded ${decoded} frames in the ${windowS.toFixed(1)} s from ${((windowStart - failedAt) / 1000).toFixed(1)} s after the failure (at least ${least})`);
  }
  assert.ok(agent.alive, 'the agent lives');
  assert.equal((await agent.healthz()).pipeline, 'playing');
  const frames = shown.error.frames;
  const played = decode(recorded);
  assert.equal(played.code, 0, `the cut file does not play: ${played.stderr}`);
  assert.ok(played.frames >= frames * 0.95, `${played.frames} frames decode of ${frames} written`);
  return { frames, decoded: played.frames, viewerFrames: after[1].framesDecoded - before[1].framesDecoded };
}

/** An agent recording into `file`, a controller and a viewer decoding. */
async function recordingWithPages(file) {
  const { display } = await h.startDisplay({ size: '1280x720' });
  const agent = await h.startAgent({ display, args: ['--record', file] });
  await h.waitForLog(agent.rec, /recording started/, 20000, 'recording started');
  const browser = await h.launchBrowser();
  const controller = await h.openClient(browser, agent, agent.controllerUrl);
  const viewer = await h.openClient(browser, agent);
  await waitDecoding(controller, 20000, 5);
  await waitDecoding(viewer, 20000, 5);
  await waitFor(async () => (await metric(agent, 'oriel_recording_frames_total')) > 30, 20000, 'frames in the file');
  return { agent, controller, viewer };
}

h.test('the disk fills up during a recording: the recording stops with the message, every page plays on', async (t) => {
  const { dir, why } = smallFilesystem('8m');
  if (!dir) return t.skip(why);
  const recorded = path.join(dir, 'desk.mkv');
  const { agent, controller, viewer } = await recordingWithPages(recorded);
  // Something else fills the disk: the recording's next write gets ENOSPC.
  const filler = fillUp(path.join(dir, 'filler'));
  const got = await assertRecordingFailedAlone(agent, {
    controller, viewer, recorded, reason: 'disk_full', message: /recording stopped: the disk is full/,
  });
  t.diagnostic(`disk full after ${filler} filler bytes: ${got.decoded} of ${got.frames} written frames decode; the viewer decoded ${got.viewerFrames} frames in the 10 s after`);
  await h.kill(agent.rec);
});

h.test('a file size limit (LimitFSIZE=) reached during a recording: the agent ignores SIGXFSZ, the recording stops, every page plays on', async (t) => {
  const dir = tmpDir();
  const recorded = path.join(dir, 'desk.mkv');
  const { agent, controller, viewer } = await recordingWithPages(recorded);
  // Unprivileged: a limit a little above what the file holds now. Without
  // SIGXFSZ ignored the kernel would kill the agent at the next write.
  const limit = fs.statSync(recorded).size + 64 * 1024;
  const r = spawnSync('prlimit', ['--pid', String(agent.rec.child.pid), `--fsize=${limit}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, `prlimit: ${r.stderr}`);
  const got = await assertRecordingFailedAlone(agent, {
    controller, viewer, recorded, reason: 'write_error', message: /recording stopped: writing the file failed/,
  });
  assert.ok(fs.statSync(recorded).size <= limit, 'the file stayed within the limit');
  t.diagnostic(`RLIMIT_FSIZE ${limit} B: ${got.decoded} of ${got.frames} written frames decode; the viewer decoded ${got.viewerFrames} frames in the 10 s after`);
  await h.kill(agent.rec);
});
