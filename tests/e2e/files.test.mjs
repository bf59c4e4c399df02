// Files in (issue 17): the controller's page uploads a file (picked, as a
// drop would add it) into the agent's --upload-dir, through the `files`
// data channel with backpressure both ways. 200 MiB arrive with the same
// SHA-256 while the page keeps decoding at 25 fps or more and the agent's
// resident memory grows less than 16 MiB; a cancelled upload and one cut
// off by a closed page leave no file; a file over the limit is refused in
// words; a viewer has no way to upload. Out: `oriel send FILE` on the
// desktop, saved by the controller's page as a download, byte for byte.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { Harness, ORIEL_BIN, status, waitDecoding, waitFor, sleep } from './harness.mjs';

const h = new Harness('files');
let display;
let browser;
let scratch;

before(async () => {
  ({ display } = await h.startDisplay());
  browser = await h.launchBrowser();
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-e2e-files-'));
});
after(async () => {
  await h.cleanup();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** A file of `mib` MiB of random bytes; its SHA-256. */
function randomFile(name, mib) {
  const file = path.join(scratch, name);
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

const sha256Of = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const rssKiB = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);

async function uploadDirAgent(extra = []) {
  const dir = fs.mkdtempSync(path.join(scratch, 'Downloads-'));
  const agent = await h.startAgent({ display, args: ['--upload-dir', dir, ...extra] });
  return { agent, dir };
}

async function controllerPage(agent) {
  const page = await h.openClient(browser, agent, agent.controllerUrl);
  await waitDecoding(page, 20000);
  await waitFor(async () => (await status(page)).files.available, 10000, "the controller's files channel open");
  return page;
}

const transfer = async (page, name) => (await status(page)).files.transfers.find((t) => t.name === name);

h.test('200 MiB arrive with the same SHA-256 while the page decodes at 25 fps or more and the agent grows less than 16 MiB', async () => {
  const { file, sha256 } = randomFile('big.bin', 200);
  const { agent, dir } = await uploadDirAgent();
  const page = await controllerPage(agent);
  // Watched for a moment first, as a user would before dropping a file.
  await sleep(2000);
  const pid = agent.rec.child.pid;
  const rss0 = rssKiB(pid);
  let rssMax = rss0;
  const sampler = setInterval(() => { rssMax = Math.max(rssMax, rssKiB(pid)); }, 250);
  const s0 = await status(page);
  const t0 = Date.now();
  await page.setInputFiles('#file-pick', file);
  let t;
  try {
    t = await waitFor(async () => {
      const x = await transfer(page, 'big.bin');
      if (x?.state === 'failed') throw new Error(`upload failed: ${x.reason}`);
      return x?.state === 'done' && x;
    }, 240000, 'the upload done', 500);
  } finally {
    clearInterval(sampler);
  }
  const secs = (Date.now() - t0) / 1000;
  const s1 = await status(page);
  const fps = (s1.framesDecoded - s0.framesDecoded) / secs;
  const grewMiB = (rssMax - rss0) / 1024;
  const pace = s1.files.pace;
  console.log(`files: 200 MiB in ${secs.toFixed(1)} s (${(200 / secs).toFixed(1)} MiB/s), ${fps.toFixed(1)} fps decoded meanwhile (${pace.baseline.toFixed(1)} before; the page's pace ended at ${(pace.rate / (1 << 20)).toFixed(1)} MiB/s), agent RSS +${grewMiB.toFixed(1)} MiB at most`);
  const saved = path.join(dir, 'big.bin');
  assert.equal(t.savedAs, saved, 'the page says where it went');
  assert.equal(sha256Of(saved), sha256, 'the same bytes');
  assert.deepEqual(fs.readdirSync(dir), ['big.bin'], 'no part file left');
  assert.ok(fps >= 25, `the page decoded ${fps.toFixed(1)} fps during the upload`);
  assert.ok(grewMiB < 16, `the agent grew ${grewMiB.toFixed(1)} MiB`);
  // The same name again: never over the first.
  await page.setInputFiles('#file-pick', file);
  await waitFor(async () => (await status(page)).files.transfers.filter((x) => x.state === 'done').length === 2, 240000, 'the second upload done', 500);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['big (2).bin', 'big.bin']);
  const text = await agent.metrics();
  assert.match(text, /oriel_uploads_total\{result="saved"\} 2/);
  await page.close();
  await h.kill(agent.rec);
});

h.test('a cancelled upload and one cut off by a closed page leave no file; over the limit is refused in words; a viewer cannot upload', async () => {
  const { file } = randomFile('mid.bin', 64);
  const { agent, dir } = await uploadDirAgent(['--upload-max-bytes', String(80 << 20)]);
  const page = await controllerPage(agent);
  await page.setInputFiles('#file-pick', file);
  const t = await waitFor(async () => {
    const x = await transfer(page, 'mid.bin');
    return x?.state === 'sending' && x.acked > (4 << 20) && x;
  }, 60000, 'the upload under way', 50);
  assert.equal(fs.readdirSync(dir).length, 1, 'a part file while it runs');
  assert.equal(await page.evaluate((id) => window.oriel.cancelUpload(id), t.id), true);
  await waitFor(() => fs.readdirSync(dir).length === 0, 5000, 'the part file removed after the cancel');
  assert.equal((await transfer(page, 'mid.bin')).state, 'cancelled');

  // Closed mid-upload.
  await page.setInputFiles('#file-pick', file);
  await waitFor(async () => {
    const x = (await status(page)).files.transfers.at(-1);
    return x.state === 'sending' && x.acked > (4 << 20);
  }, 60000, 'the second upload under way', 50);
  await page.close();
  await waitFor(() => fs.readdirSync(dir).length === 0, 10000, 'the part file removed after the page closed');

  // Over the limit: refused before any byte, said in words.
  const big = randomFile('too-big.bin', 81);
  const again = await controllerPage(agent);
  await again.setInputFiles('#file-pick', big.file);
  const refused = await waitFor(async () => {
    const x = await transfer(again, 'too-big.bin');
    return x?.state === 'failed' && x;
  }, 10000, 'the large upload refused');
  assert.match(refused.reason, /larger than this desktop takes/);
  assert.equal(refused.sent, 0, 'not a byte sent');
  assert.equal(fs.readdirSync(dir).length, 0);

  const viewer = await h.openClient(browser, agent);
  await waitDecoding(viewer, 20000);
  await sleep(500);
  assert.equal((await status(viewer)).files.available, false, 'a viewer has no files channel');
  const text = await agent.metrics();
  assert.match(text, /oriel_uploads_total\{result="cancelled"\} 2/);
  assert.match(text, /oriel_uploads_refused_total\{reason="too_large"\} 1/);
  await viewer.close();
  await again.close();
  await h.kill(agent.rec);
});

h.test('`oriel send` on the desktop: the controller\'s page saves the file intact, or stops it midway; without a controller it says so', async () => {
  const { file, sha256 } = randomFile('report.bin', 24);
  const { agent } = await uploadDirAgent();
  const send = (...files) => spawnSync(ORIEL_BIN, ['send', '--state-dir', agent.stateDir, ...files], { encoding: 'utf8', timeout: 120000 });

  const alone = send(file);
  assert.notEqual(alone.status, 0, 'fails with nobody to send to');
  assert.match(alone.stderr, /no controller is connected/);

  const page = await controllerPage(agent);
  const download = page.waitForEvent('download', { timeout: 120000 });
  const t0 = Date.now();
  const sent = send(file);
  assert.equal(sent.status, 0, `oriel send: ${sent.stderr}`);
  assert.match(sent.stdout, /oriel: sent .*report\.bin \(25165824 bytes\)/);
  const d = await download;
  assert.equal(d.suggestedFilename(), 'report.bin');
  const saved = path.join(scratch, 'downloaded.bin');
  await d.saveAs(saved);
  const secs = (Date.now() - t0) / 1000;
  console.log(`files: oriel send 24 MiB reached the page's downloads in ${secs.toFixed(1)} s`);
  assert.equal(sha256Of(saved), sha256, 'the same bytes');
  const st = (await status(page)).files.downloads;
  assert.equal(st.at(-1).state, 'saved');
  assert.equal(st.at(-1).got, 24 << 20);

  // Stopped by the page midway: the agent sends no more, oriel send says so.
  const child = spawn(ORIEL_BIN, ['send', '--state-dir', agent.stateDir, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b) => { err += b; });
  const exited = new Promise((r) => child.on('exit', r));
  const d2 = await waitFor(async () => {
    const x = (await status(page)).files.downloads.at(-1);
    return x && x.id !== st.at(-1).id && x.got > (1 << 20) && x;
  }, 30000, 'the second download under way', 20);
  assert.equal(await page.evaluate((id) => window.oriel.stopDownload(id), d2.id), true);
  assert.notEqual(await exited, 0, 'oriel send fails when the page stops it');
  assert.match(err, /the page stopped it/);

  // Not a file, and a missing one: said, nothing sent.
  const bad = send(scratch);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /not a regular file/);
  await page.close();
  await h.kill(agent.rec);
});
