// The right size (issue 17): the controller's page makes oriel's own
// virtual display the size of its window, in device pixels (through
// RandR), and the stream follows the new size under the running pages:
// neither the controller nor a viewer reconnects, both keep decoding at
// the new size. A viewer's resize is refused. On a display oriel did not
// start, the page is not offered it unless --resize on.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Harness, status, waitDecoding, waitFor } from './harness.mjs';

const h = new Harness('resize');
let browser;

before(async () => {
  browser = await h.launchBrowser();
});
after(() => h.cleanup());

/** The X screen's size, as a program on it sees it. */
function screenSize(display) {
  const r = spawnSync('xdpyinfo', [], { env: { ...process.env, DISPLAY: display }, encoding: 'utf8', timeout: 5000 });
  const m = /dimensions:\s+(\d+)x(\d+) pixels/.exec(r.stdout ?? '');
  return m ? { width: Number(m[1]), height: Number(m[2]) } : null;
}

/** The page's window as `width`x`height` CSS pixels at `scale` device pixels each. */
async function windowOf(page, width, height, scale) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: scale, mobile: false });
  return cdp;
}

const same = (a, b) => a && b && a.width === b.width && a.height === b.height;

h.test("the controller's window sets the virtual display's size in device pixels; the stream follows, nobody reconnects", async () => {
  const agent = await h.startAgent({ display: null, capture: 'auto', args: ['--virtual-display-size', '1280x720'] });
  const line = await h.waitForLog(agent.rec, /virtual display :\d+/, 15000, '"virtual display :N"');
  const display = `:${line.match(/virtual display :(\d+)/)[1]}`;
  assert.deepEqual(screenSize(display), { width: 1280, height: 720 }, 'it starts at --virtual-display-size');

  const viewer = await h.openClient(browser, agent);
  const v0 = await waitDecoding(viewer, 20000);
  assert.equal(v0.width, 1280);
  assert.equal((await status(viewer)).resize.enabled, false, 'a viewer is not offered the resize');

  // 800x500 CSS pixels at 1.5 device pixels each: 1200x750.
  const controller = await h.openClient(browser, agent, agent.controllerUrl);
  await windowOf(controller, 800, 500, 1.5);
  const c0 = await waitDecoding(controller, 20000);
  await waitFor(() => same(screenSize(display), { width: 1200, height: 750 }), 5000, 'the display at 1200x750');
  for (const [page, first] of [[viewer, v0], [controller, c0]]) {
    await waitFor(async () => {
      const s = await status(page);
      return s.width === 1200 && s.height === 750 && s.framesDecoded > first.framesDecoded + 10 && s;
    }, 15000, 'the page decoding at 1200x750');
    assert.equal((await status(page)).peerId, first.peerId, 'the same session: no reconnect');
  }

  // Dragged: a burst of sizes, only the last one is taken, within 1 s of
  // the window's last change (the page waits 250 ms for the burst to end,
  // the agent 150 ms more).
  const cdp = await windowOf(controller, 700, 400, 1);
  for (const [w, hgt] of [[710, 410], [720, 420], [900, 520]]) {
    await cdp.send('Emulation.setDeviceMetricsOverride', { width: w, height: hgt, deviceScaleFactor: 1, mobile: false });
  }
  const dragged = Date.now();
  await waitFor(() => same(screenSize(display), { width: 900, height: 520 }), 5000, 'the display at the last size, 900x520', 20);
  const displayMs = Date.now() - dragged;
  assert.ok(displayMs <= 1000, `the display took the window's size ${displayMs} ms after its last change`);
  const before = await status(viewer);
  await waitFor(async () => (await status(viewer)).width === 900, 15000, 'the viewer\'s video at 900x520', 20);
  const videoMs = Date.now() - dragged;
  console.log(`resize: the display followed the window in ${displayMs} ms, the viewer's video in ${videoMs} ms`);
  await waitFor(async () => (await status(viewer)).framesDecoded > before.framesDecoded + 10, 15000, 'the viewer decoding at 900x520');
  const hz = await agent.healthz();
  assert.equal(hz.peers, 2, 'both still connected');

  // A viewer asks: refused, counted, nothing changes.
  await viewer.evaluate(() => window.oriel.signal({ type: 'resize', width: 640, height: 480 }));
  await waitFor(async () => (await status(viewer)).errors.some((e) => /only the controller resizes/.test(e)), 5000,
    'the viewer told it may not resize');
  assert.deepEqual(screenSize(display), { width: 900, height: 520 }, "the viewer's resize changed nothing");
  await viewer.close();
  await controller.close();
  await h.kill(agent.rec);
});

h.test('on a display oriel did not start, the page is not offered the resize unless --resize on', async () => {
  const { display } = await h.startDisplay({ mover: false });
  const agent = await h.startAgent({ display });
  const page = await h.openClient(browser, agent, agent.controllerUrl);
  await waitDecoding(page, 20000);
  assert.equal((await status(page)).resize.enabled, false, 'not offered on the user\'s display');
  await page.evaluate(() => window.oriel.signal({ type: 'resize', width: 640, height: 480 }));
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(screenSize(display), { width: 1280, height: 720 }, 'a forced request changes nothing');
  assert.ok((await status(page)).errors.some((e) => /not resized from the page/.test(e)), 'and the page is told why');
  await page.close();
  await h.kill(agent.rec);

  // Opted in: the user's display follows (this Xvfb can only shrink).
  const opted = await h.startAgent({ display, args: ['--resize', 'on'] });
  const p2 = await h.openClient(browser, opted, opted.controllerUrl);
  await windowOf(p2, 1000, 600, 1);
  await waitDecoding(p2, 20000);
  assert.equal((await status(p2)).resize.enabled, true, 'offered with --resize on');
  await waitFor(() => same(screenSize(display), { width: 1000, height: 600 }), 5000, 'the display at 1000x600');
  await waitFor(async () => (await status(p2)).width === 1000, 15000, 'the page decoding at 1000x600');
  await p2.close();
  await h.kill(opted.rec);
});
