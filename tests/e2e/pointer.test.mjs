// The pointer drawn by the browser (issue 17): with `--pointer page` (the
// default on X11) the stream carries no pointer; the controller's page
// takes each shape of the desktop's pointer as the video's own CSS cursor
// (so it moves with the hand), an xterm's I-beam included, and a viewer's
// page draws the remote pointer where it is. What a page sends on the
// pointer's channels is refused and counted. With `--pointer video` the
// pointer is in the picture again, which shows the probe below finds one.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Agent, Harness, status, waitDecoding, waitFor, sleep } from './harness.mjs';

const h = new Harness('pointer');
let display;
let browser;

// A flat root window, so that anything drawn on it (a pointer) stands out.
const ROOT = { r: 0x30, g: 0x60, b: 0xc0 };

before(async () => {
  ({ display } = await h.startDisplay({ mover: false }));
  const r = spawnSync('xsetroot', ['-solid', '#3060c0'], { env: { ...process.env, DISPLAY: display } });
  assert.equal(r.status, 0, `xsetroot: ${r.stderr}`);
  browser = await h.launchBrowser();
});
after(() => h.cleanup());

const xdotool = (...args) => {
  const r = spawnSync('xdotool', args, { env: { ...process.env, DISPLAY: display }, encoding: 'utf8' });
  assert.equal(r.status, 0, `xdotool ${args.join(' ')}: ${r.stderr}`);
};

/**
 * Pixels of the decoded picture within `r` of (x, y) (desktop pixels)
 * that are not the root's colour: a pointer drawn there makes dozens.
 */
function strayPixels(page, x, y, r = 12) {
  return page.evaluate(({ x, y, r, c }) => {
    const v = document.getElementById('video');
    const canvas = document.createElement('canvas');
    canvas.width = v.videoWidth;
    canvas.height = v.videoHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(v, 0, 0);
    const d = ctx.getImageData(x - r, y - r, 2 * r, 2 * r).data;
    let stray = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (Math.abs(d[i] - c.r) + Math.abs(d[i + 1] - c.g) + Math.abs(d[i + 2] - c.b) > 90) stray++;
    }
    return stray;
  }, { x, y, r, c: ROOT });
}

/** Waits until the picture shows the root's colour at (x, y)'s surroundings, bar the pointer. */
async function settledPicture(page, x, y) {
  // Far from the pointer: only the root, once the new root is in a frame.
  await waitFor(async () => (await strayPixels(page, 1100, 650)) === 0, 15000, 'the flat root in the picture');
  // The capture repeats a still frame once a second: two of them.
  await sleep(2200);
  return strayPixels(page, x, y);
}

const pointerStatus = async (page) => (await status(page)).pointer;

h.test("the controller's pointer is the page's own CSS cursor, an xterm's I-beam included; the video carries no pointer", async () => {
  const agent = await h.startAgent({ display, args: ['--input', 'xtest'] });
  const page = await h.openClient(browser, agent, agent.controllerUrl);
  await waitDecoding(page, 20000);
  xdotool('mousemove', '640', '360');
  const root = await waitFor(async () => {
    const p = await pointerStatus(page);
    return p.css === 'image' && p.current;
  }, 10000, "the desktop's pointer as the page's cursor");
  assert.equal((await pointerStatus(page)).overlay, null, 'the controller draws no second pointer');
  assert.equal(await settledPicture(page, 640, 360), 0, 'no pointer drawn into the picture');

  const xterm = h.spawn('xterm', 'xterm', ['-geometry', '40x10+100+100', '-bg', 'white'], { env: { ...process.env, DISPLAY: display } });
  try {
    // Inside the xterm (its window appears after a moment): its I-beam,
    // tall and narrow (cursor-font cursors have no name to tell it by).
    const ibeam = await waitFor(async () => {
      xdotool('mousemove', '200', '150');
      const p = await pointerStatus(page);
      return p.current && p.current.id !== root.id && p.css === 'image' && p.current;
    }, 15000, "the page's cursor changed in the xterm");
    assert.ok(ibeam.width * 1.5 < ibeam.height, `an I-beam: ${ibeam.width}x${ibeam.height}`);
    assert.ok(await page.evaluate(() => getComputedStyle(document.getElementById('video')).cursor.startsWith('url(')),
      "the video's computed cursor is the image");
    // Back on the root: the first shape again, told by id (the page has it).
    const cachedBefore = (await pointerStatus(page)).cached;
    xdotool('mousemove', '900', '600');
    await waitFor(async () => (await pointerStatus(page)).current?.id === root.id, 10000, 'the root pointer again');
    assert.equal((await pointerStatus(page)).cached, cachedBefore, 'a shape seen before came by id, not again as an image');
  } finally {
    await h.kill(xterm);
  }
  const text = await agent.metrics();
  assert.ok(Agent.metricSamples(text, 'oriel_pointer_shapes_total')[0]?.value >= 3, 'the shapes counted');
  await page.close();
  await h.kill(agent.rec);
});

h.test("a viewer's page draws the remote pointer where it is; what it sends on the pointer's channels is refused and counted", async () => {
  const agent = await h.startAgent({ display });
  xdotool('mousemove', '640', '360');
  const viewer = await h.openClient(browser, agent, agent.viewerUrl());
  await waitDecoding(viewer, 20000);
  // Where the page should draw the pointer's hotspot, in page pixels.
  const expected = (x, y) => viewer.evaluate(({ x, y }) => {
    const v = document.getElementById('video');
    const r = v.getBoundingClientRect();
    const s = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
    return { x: r.left + (r.width - v.videoWidth * s) / 2 + x * s, y: r.top + (r.height - v.videoHeight * s) / 2 + y * s, s };
  }, { x, y });
  const drawnAt = async () => {
    const p = await pointerStatus(viewer);
    if (!p.overlay || !p.current) return null;
    const s = p.overlay.width / p.current.width;
    return { x: p.overlay.left + p.current.hotX * s, y: p.overlay.top + p.current.hotY * s };
  };
  const near = (a, b) => a && Math.abs(a.x - b.x) <= 1.5 && Math.abs(a.y - b.y) <= 1.5;
  // A still pointer is drawn too: the place is told on joining.
  const first = await expected(640, 360);
  await waitFor(async () => near(await drawnAt(), first), 10000, 'the remote pointer drawn at 640,360');
  assert.equal((await pointerStatus(viewer)).css, '', "the viewer's own cursor is left alone");
  xdotool('mousemove', '100', '200');
  const moved = await expected(100, 200);
  await waitFor(async () => near(await drawnAt(), moved), 2000, 'the remote pointer followed to 100,200 within 2 s');

  const before = Agent.metricSamples(await agent.metrics(), 'oriel_pointer_refused_total')[0]?.value ?? 0;
  const sent = await viewer.evaluate(() => {
    let n = 0;
    for (const label of ['cursor', 'pointer']) {
      for (let i = 0; i < 3; i++) if (window.oriel.sendInput(label, [1, 2, 3])) n++;
    }
    return n;
  });
  assert.equal(sent, 6, 'the page could send on both channels');
  await waitFor(async () => (Agent.metricSamples(await agent.metrics(), 'oriel_pointer_refused_total')[0]?.value ?? 0) >= before + 6,
    10000, 'the six refused and counted');
  await waitFramesGrowOk(viewer);
  await viewer.close();
  await h.kill(agent.rec);
});

/** The page still decodes (what it sent did not cut it off). */
async function waitFramesGrowOk(page) {
  const a = (await status(page)).framesDecoded;
  await waitFor(async () => (await status(page)).framesDecoded > a, 10000, 'the page still decodes');
}

h.test('with --pointer video the pointer is in the picture, and the pages get no pointer channels', async () => {
  const agent = await h.startAgent({ display, args: ['--pointer', 'video'] });
  xdotool('mousemove', '640', '360');
  const page = await h.openClient(browser, agent, agent.viewerUrl());
  await waitDecoding(page, 20000);
  const stray = await settledPicture(page, 640, 360);
  assert.ok(stray >= 20, `the pointer drawn into the picture (${stray} pixels not the root's)`);
  const p = await pointerStatus(page);
  assert.equal(p.current, null, 'no shapes told');
  assert.equal(p.overlay, null, 'nothing drawn by the page');
  await page.close();
  await h.kill(agent.rec);
});
