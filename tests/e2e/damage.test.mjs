// X11 capture by damage (issue 15): a still desktop is not grabbed again,
// only its last frame repeated once a second; something drawn reaches the
// page at once; the pointer moving is a change too. A bare Xvfb (nothing
// moving on it), the agent with `--x11-capture damage`, one Chromium viewer.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Agent, Harness, status, waitFor, waitDecoding, sleep } from './harness.mjs';

const h = new Harness('damage');
let agent;
let browser;
let display;
let page;

before(async () => {
  ({ display } = await h.startDisplay({ mover: false }));
  agent = await h.startAgent({ display, capture: 'x11', args: ['--x11-capture', 'damage'] });
  browser = await h.launchBrowser();
  page = await h.openClient(browser, agent);
  await waitDecoding(page, 20000);
});
after(() => h.cleanup());

async function frames(of = agent, on = page) {
  const text = await of.metrics();
  const one = (how) => Agent.metricSamples(text, 'oriel_capture_frames_total').find((s) => s.labels === `{how="${how}"}`)?.value;
  const st = await status(on);
  return { grabbed: one('grabbed'), repeated: one('repeated'), decoded: st.framesDecoded, lost: st.packetsLost, keyframes: st.keyFramesDecoded };
}

/** The mean brightness of a square of the page's video around (x, y). */
function brightness(x, y) {
  return page.evaluate(([x, y]) => {
    const v = document.querySelector('video');
    const c = document.createElement('canvas');
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(v, 0, 0);
    const d = ctx.getImageData(x - 5, y - 5, 10, 10).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += (d[i] + d[i + 1] + d[i + 2]) / 3;
    return sum / (d.length / 4);
  }, [x, y]);
}

const xdotool = (...args) => spawnSync('xdotool', args, { env: { ...process.env, DISPLAY: display }, encoding: 'utf8' });

h.test('a still desktop is grabbed no more: its last frame is repeated once a second', async () => {
  // Park the pointer, let the join settle.
  xdotool('mousemove', '1200', '700');
  await sleep(2000);
  const a = await frames();
  await sleep(5000);
  const b = await frames();
  assert.equal(typeof a.grabbed, 'number', 'the damage capture reports its frames in /metrics');
  assert.ok(b.grabbed - a.grabbed <= 1, `grabbed ${b.grabbed - a.grabbed} frames of a still screen in 5 s`);
  const repeats = b.repeated - a.repeated;
  assert.ok(repeats >= 3 && repeats <= 7, `repeated the last frame ${repeats} times in 5 s (once a second)`);
  const decoded = b.decoded - a.decoded;
  assert.ok(decoded >= 3 && decoded <= 10, `the page decoded ${decoded} frames in 5 s, not 150`);
  // Frames a second apart go through whole: the client queue once took the
  // gap for a backlog and dropped each repeat's first packets.
  assert.equal(b.lost - a.lost, 0, 'no packet lost between the repeats');
  assert.ok(b.keyframes - a.keyframes <= 1, `repeats decode as they are, not by keyframes (${b.keyframes - a.keyframes})`);
});

h.test('a window drawn on the desktop reaches the page at once', async () => {
  const dark = await brightness(200, 150);
  assert.ok(dark < 40, `the bare root window is dark in the page (${dark.toFixed(0)})`);
  const a = await frames();
  // xev's window: white, at the top left.
  const xev = h.spawn('xev', 'xev', ['-display', display, '-geometry', '400x300+0+0']);
  let seen = 0;
  await waitFor(async () => (seen = await brightness(200, 150)) > 200, 5000, 'the white window in the page', 20)
    .catch((e) => { e.message += ` (brightness ${seen.toFixed(0)})`; throw e; });
  const b = await frames();
  assert.ok(b.grabbed > a.grabbed, 'it was grabbed');
  await h.kill(xev);
  await waitFor(async () => (await brightness(200, 150)) < 40, 5000, 'the window gone from the page', 20);
});

async function tenMoves() {
  for (let i = 0; i < 10; i++) {
    xdotool('mousemove', String(300 + i * 40), '400');
    await sleep(100);
  }
  await sleep(300);
}

h.test('the pointer moving is no change while the pages draw it; with --pointer video it is grabbed and drawn', async () => {
  const a = await frames();
  await tenMoves();
  const b = await frames();
  assert.ok(b.grabbed - a.grabbed <= 1, `grabbed ${b.grabbed - a.grabbed} frames for 10 pointer moves the pages draw`);

  const video = await h.startAgent({ display, capture: 'x11', args: ['--x11-capture', 'damage', '--pointer', 'video'] });
  const p2 = await h.openClient(browser, video);
  await waitDecoding(p2, 20000);
  await sleep(500);
  const c = await frames(video, p2);
  await tenMoves();
  const d = await frames(video, p2);
  assert.ok(d.grabbed - c.grabbed >= 5, `grabbed ${d.grabbed - c.grabbed} frames for 10 pointer moves in the picture`);
  await p2.close();
  await h.kill(video.rec);
});
