// The clipboard (issue 17): what a program copies on the desktop (xclip,
// a real X selection in Xvfb) appears in the controller's browser
// clipboard (Chromium's, with its clipboard permissions granted), and what
// the controller pastes (Ctrl+V in the page) is the desktop's selection
// before the keys arrive. 100 KiB of mixed scripts round-trips byte for
// byte. A viewer gets nothing; a player that forges a clipboard channel is
// cut off and the desktop's selection does not change.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Agent, Harness, keepPeerConnections, status, waitDecoding, waitFor } from './harness.mjs';

const h = new Harness('clipboard');
let display;
let browser;

before(async () => {
  ({ display } = await h.startDisplay());
  browser = await h.launchBrowser();
});
after(() => h.cleanup());

/** A program on the desktop copies `text` (xclip stays to serve it). */
function desktopCopies(text) {
  const r = spawnSync('xclip', ['-selection', 'clipboard', '-t', 'UTF8_STRING', '-i'], { env: { ...process.env, DISPLAY: display }, input: text, timeout: 10000 });
  assert.equal(r.status, 0, `xclip -i: ${r.stderr}`);
}

/** What a program on the desktop pastes now. */
function desktopPastes() {
  const r = spawnSync('xclip', ['-selection', 'clipboard', '-t', 'UTF8_STRING', '-o'], { env: { ...process.env, DISPLAY: display }, timeout: 10000, maxBuffer: 64 << 20 });
  return r.status === 0 ? r.stdout : null;
}

/** 100 KiB of Latin, Cyrillic, CJK, Arabic, emoji and control characters. */
function mixedText(bytes) {
  const parts = ['oriel ', 'Grüße ', 'мир ', '世界 ', 'مرحبا ', '🎮 ', '\t', '\r\n', 'a"b\\c ', '\u0000'.replace('\u0000', '\u00a0')];
  let s = '';
  for (let i = 0; Buffer.byteLength(s) < bytes; i++) s += parts[i % parts.length] + i;
  return s;
}

async function controllerPage(agent) {
  await browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: agent.url.replace(/\/$/, '') });
  const page = await h.openClient(browser, agent, agent.controllerUrl);
  await waitDecoding(page, 20000);
  await waitFor(async () => (await status(page)).clipboard.available, 10000, 'the controller\'s clipboard channel open');
  await page.bringToFront();
  assert.equal((await status(page)).clipboard.none, false);
  return page;
}

const browserClipboard = (page) => page.evaluate(() => navigator.clipboard.readText());

h.test('a copy on the desktop is in the controller\'s clipboard, a paste in the page is the desktop\'s; 100 KiB of mixed scripts both ways, byte for byte', async () => {
  const agent = await h.startAgent({ display, args: ['--input', 'xtest'] });
  const page = await controllerPage(agent);

  desktopCopies('hello from the desktop ✓');
  await waitFor(async () => (await browserClipboard(page)) === 'hello from the desktop ✓', 10000, 'the copy in the browser\'s clipboard');

  const big = mixedText(100 * 1024);
  desktopCopies(big);
  await waitFor(async () => (await browserClipboard(page)) === big, 10000, 'the 100 KiB copy in the browser\'s clipboard');

  const mine = `${mixedText(100 * 1024)} pasted from the browser`;
  await page.evaluate((t) => navigator.clipboard.writeText(t), mine);
  await page.click('video');
  await page.keyboard.press('Control+V');
  let pasted;
  await waitFor(() => (pasted = desktopPastes())?.equals(Buffer.from(mine)), 10000, 'the desktop pasting the browser\'s 100 KiB').catch((e) => {
    e.message += ` (desktop has ${pasted?.length} bytes, the page sent ${Buffer.byteLength(mine)})`;
    throw e;
  });
  const m = await agent.metrics();
  assert.ok(Agent.metricSamples(m, 'oriel_clipboard_transfers_total').find((x) => x.labels.includes('to_desktop'))?.value >= 1, 'counted');
  await page.close();
  await h.kill(agent.rec);
});

h.test('too large either way: the page says so, nothing half-copied', async () => {
  const agent = await h.startAgent({ display, args: ['--clipboard-max-text', '4096'] });
  const page = await controllerPage(agent);
  desktopCopies('small and fine');
  await waitFor(async () => (await browserClipboard(page)) === 'small and fine', 10000, 'the small copy');
  desktopCopies('x'.repeat(5000));
  await waitFor(async () => /too large to copy here/.test((await status(page)).clipboard.note ?? ''), 10000, 'the page saying the desktop\'s copy is too large');
  const now = await browserClipboard(page);
  assert.equal(now, 'small and fine', `the browser's clipboard is untouched (it holds ${now.length} characters; page ${JSON.stringify((await status(page)).clipboard)})`);

  await page.evaluate(() => navigator.clipboard.writeText('y'.repeat(5000)));
  await page.click('video');
  await page.keyboard.press('Control+V');
  await waitFor(async () => /Not pasted on the desktop/.test((await status(page)).clipboard.note ?? ''), 5000, 'the page saying its paste is too large');
  assert.equal(desktopPastes()?.toString(), 'x'.repeat(5000), 'the desktop\'s clipboard is untouched');
  const refused = Agent.metricSamples(await agent.metrics(), 'oriel_clipboard_refused_total').find((x) => x.labels.includes('too_large'))?.value;
  assert.ok(refused >= 1, `the desktop's copy counted as refused (${refused})`);
  await page.close();
  await h.kill(agent.rec);
});

h.test('a viewer gets no clipboard; a player forging a clipboard channel is cut off and changes nothing', async () => {
  const agent = await h.startAgent({ display });
  desktopCopies('secret on the desktop');
  const viewer = await h.openClient(browser, agent, agent.viewerUrl());
  await waitDecoding(viewer, 20000);
  const player = await browser.newPage();
  // Keeps the page's RTCPeerConnection within reach of the forgery below.
  await keepPeerConnections(player);
  await player.goto(agent.createLink({ role: 'player', slot: 2 }).url);
  await waitDecoding(player, 20000);
  for (const p of [viewer, player]) {
    const st = (await status(p)).clipboard;
    assert.equal(st.available, false, 'no clipboard channel');
    assert.equal(st.last, null, 'nothing of the desktop\'s clipboard arrived');
  }
  const forged = await player.evaluate(() => new Promise((resolve) => {
    const ch = window.__pcs[0].createDataChannel('clipboard');
    ch.onopen = () => {
      const text = new TextEncoder().encode('forged by a player');
      ch.send(JSON.stringify({ type: 'clipboard', mime: 'text/plain;charset=utf-8', size: text.length }));
      ch.send(text);
      resolve('sent');
    };
    setTimeout(() => resolve(ch.readyState), 5000);
  }));
  await waitFor(async () => /opened a data channel of its own \("clipboard"\)/.test((await status(player)).lastBye ?? ''), 10000,
    `the forging player cut off (${forged})`);
  assert.equal(desktopPastes()?.toString(), 'secret on the desktop', 'the desktop\'s clipboard is unchanged');
  const st = (await status(viewer)).clipboard;
  assert.equal(st.last, null, 'the viewer still got nothing');
  await viewer.close();
  await player.close();
  await h.kill(agent.rec);
});
