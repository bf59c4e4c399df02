// Viewers come and go the way real ones do: polite leaves, closed tabs,
// reloads, at every stage of the handshake. The agent must survive 50 such
// cycles, forget every one of them, and still serve a fresh viewer.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, status, waitFor, waitDecoding, waitFramesGrow, sleep } from './harness.mjs';

const CYCLES = 50;
const h = new Harness('churn');
let agent;
let browser;

before(async () => {
  const { display } = await h.startDisplay();
  agent = await h.startAgent({ display, capture: 'x11' });
  browser = await h.launchBrowser();
});
after(() => h.cleanup());

// Deterministic "random" delays so a failure can be replayed.
let seed = 0x0e1e1;
function rand() {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
}

h.test(`${CYCLES} connect/disconnect cycles leave the agent clean and serving`, async () => {
  let reloadPage = null; // one long-lived page that gets reloaded
  const counts = { disconnect: 0, close: 0, reload: 0, waitedForVideo: 0 };
  for (let i = 0; i < CYCLES; i++) {
    assert.ok(agent.alive, `agent died during cycle ${i}`);
    const mode = ['disconnect', 'close', 'reload'][i % 3];
    // Every 8th cycle plays video before leaving; the rest leave at a random
    // point of the handshake (0-400 ms after load).
    const waitVideo = i % 8 === 7;
    counts[mode] += 1;
    if (waitVideo) counts.waitedForVideo += 1;

    if (mode === 'reload') {
      if (!reloadPage) reloadPage = await h.openClient(browser, agent);
      else await reloadPage.reload({ waitUntil: 'load', timeout: 20000 });
      if (waitVideo) await waitDecoding(reloadPage, 20000);
      else await sleep(rand() * 400);
      continue;
    }
    const page = await h.openClient(browser, agent);
    if (waitVideo) await waitDecoding(page, 20000);
    else await sleep(rand() * 400);
    if (mode === 'disconnect') {
      await page.evaluate(() => window.oriel.disconnect());
      const s = await status(page);
      assert.equal(s.ws, 'closed', 'disconnect() closes the socket');
    }
    await page.close();
  }
  // The reload page ends the run with a real, playing session...
  const s = await waitDecoding(reloadPage, 20000);
  assert.equal(s.width, 1280);
  await reloadPage.close();

  // ...and once every page is gone the agent forgets them all.
  assert.ok(agent.alive, 'agent still running after the cycles');
  const hz = await waitFor(
    async () => {
      const v = await agent.healthz();
      return v.clients === 0 && v.peers === 0 ? v : null;
    },
    10000,
    '/healthz clients and peers back to 0 after the cycles',
    250,
  );
  assert.equal(hz.status, 'ok');

  // A fresh viewer still gets video.
  const fresh = await h.openClient(browser, agent);
  const f = await waitDecoding(fresh, 20000);
  assert.equal(f.width, 1280);
  assert.equal(f.height, 720);
  await waitFramesGrow(fresh, f, 30, 15000);
  await fresh.close();
  assert.ok(counts.disconnect > 10 && counts.close > 10 && counts.reload > 10, JSON.stringify(counts));
});
