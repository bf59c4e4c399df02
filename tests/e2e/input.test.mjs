// Input through the agent's data channels, checked on the X server: the
// controller's pointer and keys land, a viewer's and a player's do not, and
// every refused message is counted. The page sends raw protocol bytes with
// window.oriel.sendInput, as any (even hostile) client could.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Harness, Agent, waitFor, waitDecoding, sleep, status } from './harness.mjs';

const h = new Harness('input');
let agent;
let browser;
let display;
let xev;

// docs/protocol.md, "Input": version 1, then type, then fixed fields (LE).
const pointerAbs = (x, y) => [1, 0x10, x & 255, x >> 8, y & 255, y >> 8];
const button = (down, b) => [1, down ? 0x12 : 0x13, b];
function key(down, code) {
  const field = new Array(32).fill(0);
  for (let i = 0; i < code.length; i++) field[i] = code.charCodeAt(i);
  return [1, down ? 0x01 : 0x02, ...field];
}

function pointer() {
  const r = spawnSync('xdotool', ['getmouselocation', '--shell'], { env: { ...process.env, DISPLAY: display }, encoding: 'utf8' });
  const m = /X=(\d+)\s+Y=(\d+)/.exec(r.stdout);
  return m ? { x: Number(m[1]), y: Number(m[2]) } : null;
}

const xevLines = () => xev.log.join('\n');

before(async () => {
  ({ display } = await h.startDisplay({ mover: false }));
  // A window that records key and button events; with no window manager,
  // keyboard focus follows the pointer, so keys reach it while the pointer
  // is inside it (the test puts it there).
  // stdbuf: xev's stdout is a pipe here and would otherwise be block-buffered.
  xev = h.spawn('xev', 'stdbuf', ['-oL', 'xev', '-display', display, '-geometry', '400x300+0+0', '-event', 'keyboard', '-event', 'button']);
  const xevWindow = () =>
    spawnSync('xdotool', ['search', '--name', 'Event Tester'], { env: { ...process.env, DISPLAY: display }, encoding: 'utf8' }).stdout.trim() !== '';
  await waitFor(xevWindow, 10000, 'xev window');
  agent = await h.startAgent({ display, capture: 'x11', args: ['--input', 'xtest'] });
  browser = await h.launchBrowser();
});
after(() => h.cleanup());

async function openReady(url) {
  const page = await h.openClient(browser, agent, url);
  await waitDecoding(page, 20000);
  await waitFor(() => page.evaluate(() => window.oriel.inputReady()), 10000, 'input channels open');
  return page;
}

const send = (page, label, bytes) => page.evaluate(([l, b]) => window.oriel.sendInput(l, b), [label, bytes]);

async function dropped(reason) {
  const samples = Agent.metricSamples(await agent.metrics(), 'oriel_input_dropped_total');
  return samples.filter((s) => s.labels.includes(`reason="${reason}"`)).reduce((a, s) => a + s.value, 0);
}

h.test('the controller moves the pointer, clicks and types on the X display', async () => {
  const page = await openReady(agent.controllerUrl);
  const s = await page.evaluate(() => window.oriel.status());
  assert.equal(s.role, 'controller');

  // A quarter across, half down: 16384/65535 of 1279 px, 32768/65535 of 719 px.
  assert.ok(await send(page, 'motion', pointerAbs(16384, 32768)));
  await waitFor(() => {
    const p = pointer();
    return p && p.x === 319 && p.y === 359;
  }, 5000, `pointer at 319,359 (now ${JSON.stringify(pointer())})`);

  // Into the xev window, then a click and the key A.
  await send(page, 'motion', pointerAbs(6000, 20000));
  await waitFor(() => pointer()?.x === 117, 5000, 'pointer over the xev window');
  await send(page, 'input', button(true, 0));
  await send(page, 'input', button(false, 0));
  await waitFor(() => /ButtonRelease event[\s\S]*button 1,/.test(xevLines()), 5000, 'xev saw button 1');
  await send(page, 'input', key(true, 'KeyA'));
  await send(page, 'input', key(false, 'KeyA'));
  await waitFor(() => /KeyRelease event[\s\S]*keycode 38 \(keysym 0x61, a\)/.test(xevLines()), 5000, 'xev saw the key a');
  await page.close();
});

h.test("a viewer has no channel to send on, and a player's keyboard and pointer messages change nothing", async () => {
  const before = pointer();
  const playerDrops = await dropped('player_not_gamepad');
  const viewer = await h.openClient(browser, agent, agent.viewerUrl());
  await waitDecoding(viewer, 20000);
  const player = await openReady(agent.createLink({ role: 'player', slot: 2 }).url);
  assert.equal((await viewer.evaluate(() => window.oriel.status())).role, 'viewer');
  assert.equal((await player.evaluate(() => window.oriel.status())).slot, 2);
  const typedBefore = (xevLines().match(/keysym 0x62, b/g) ?? []).length;
  // The viewer's offer carried no input channels (only the pointer's two,
  // the agent's to send on): nothing to send input on, and a channel of its
  // own gets it cut off.
  assert.equal(await viewer.evaluate(() => window.oriel.inputReady()), false, 'a viewer has no input channels');
  assert.equal(await send(viewer, 'input', key(true, 'KeyB')), false, "the viewer's key had no channel");
  const own = await viewer.evaluate(() => window.oriel.ownChannel('input', 2000));
  await waitFor(async () => /opened a data channel of its own \("input"\)/.test((await viewer.evaluate(() => window.oriel.status())).lastBye ?? ''),
    10000, `the viewer with a channel of its own cut off (${JSON.stringify(own)})`);
  for (const page of [player]) {
    await send(page, 'motion', pointerAbs(60000, 60000));
    await send(page, 'input', button(true, 2));
    await send(page, 'input', key(true, 'KeyB'));
    await send(page, 'input', key(false, 'KeyB'));
  }
  await waitFor(async () => (await dropped('player_not_gamepad')) >= playerDrops + 4, 5000, 'player drops counted');
  await sleep(300);
  assert.deepEqual(pointer(), before, 'the pointer did not move');
  assert.equal((xevLines().match(/keysym 0x62, b/g) ?? []).length, typedBefore, 'no b was typed');
  await viewer.close();
  await player.close();
});

h.test("the web client forwards the controller's real mouse and keyboard", async () => {
  const page = await openReady(agent.controllerUrl);
  // The viewport is 1280x720 like the desktop, and the video fills it.
  await page.mouse.move(320, 360);
  await waitFor(() => {
    const p = pointer();
    return p && Math.abs(p.x - 319) <= 1 && Math.abs(p.y - 359) <= 1;
  }, 5000, `pointer follows the page's mouse (now ${JSON.stringify(pointer())})`);
  // Over the xev window, then a real click and key press.
  await page.mouse.move(100, 100);
  await waitFor(() => Math.abs((pointer()?.x ?? 0) - 100) <= 1, 5000, 'pointer over xev');
  const clicksBefore = (xevLines().match(/ButtonRelease event/g) ?? []).length;
  await page.mouse.down();
  await page.mouse.up();
  await waitFor(() => (xevLines().match(/ButtonRelease event/g) ?? []).length > clicksBefore, 5000, 'xev saw the click');
  await page.keyboard.press('KeyC');
  await waitFor(() => /KeyRelease event[\s\S]*keysym 0x63, c\)/.test(xevLines()), 5000, 'xev saw the key c');
  await page.close();
});

h.test('the uinput stand-in stops taking input mid-session: XTest takes over, said once, counted, shown to the controller', async (t) => {
  // No uinput on this kernel: the recording input sink stands in for it
  // (auto would have picked uinput the same way). Its writes start failing
  // (a file size limit on the running agent: EFBIG; SIGXFSZ is ignored),
  // as a uinput fd answers ENODEV once the device is gone.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-e2e-input-'));
  h.tmpDirs.push(dir);
  const sink = path.join(dir, 'input.jsonl');
  const lost = await h.startAgent({ display, capture: 'x11', args: ['--input', `record:${sink}`] });
  const page = await h.openClient(browser, lost, lost.controllerUrl);
  await waitDecoding(page, 20000);
  await waitFor(() => page.evaluate(() => window.oriel.inputReady()), 10000, 'input channels open');
  assert.deepEqual((await status(page)).input, { backend: 'record', gamepads: true });
  const start = pointer();
  await send(page, 'motion', pointerAbs(16384, 32768));
  await waitFor(() => fs.readFileSync(sink, 'utf8').includes('"x":16384'), 5000, 'the sink got the motion');
  assert.deepEqual(pointer(), start, 'the sink, not XTest, had it');

  const size = fs.statSync(sink).size;
  const r = spawnSync('prlimit', ['--pid', String(lost.rec.child.pid), `--fsize=${size}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, `prlimit: ${r.stderr}`);
  // The event that fails on the sink lands through XTest: the centre.
  await send(page, 'motion', pointerAbs(32768, 32768));
  await waitFor(() => {
    const p = pointer();
    return p && p.x === 639 && p.y === 359;
  }, 5000, `pointer at 639,359 through XTest (now ${JSON.stringify(pointer())})`);
  // Then everything else goes there too, and the loss is logged once.
  for (let i = 0; i < 50; i++) await send(page, 'motion', pointerAbs(1000 + i * 100, 20000));
  await waitFor(() => pointer()?.x === Math.round((5900 / 65535) * 1279), 5000, `pointer follows through XTest (now ${JSON.stringify(pointer())})`);
  const said = lost.log.filter((l) => /input: record stopped taking input/.test(l));
  assert.equal(said.length, 1, `logged once: ${said.join('\n')}`);
  assert.match(said[0], new RegExp(`File too large.*keyboard and mouse go through XTest on ${display}, gamepads are unavailable`));
  const m = await lost.metrics();
  assert.equal(Agent.metricSamples(m, 'oriel_input_backend_failures_total')[0]?.value, 1);
  assert.equal(Agent.metricSamples(m, 'oriel_input_available')[0]?.value, 1);
  assert.match(Agent.metricSamples(m, 'oriel_info')[0]?.labels ?? '', /input="xtest"/);
  // The controller's panel says so.
  const shown = await waitFor(async () => (await status(page)).control?.input?.problem ? (await status(page)).control.input : null, 10000, 'the panel to show the input problem');
  assert.equal(shown.backend, 'xtest');
  assert.equal(shown.gamepads, false);
  assert.match(await page.locator('#control li[data-what="input"]').innerText(), /input: xtest[\s\S]*record stopped taking input/);
  // A client joining now is told what injects: XTest, no gamepads.
  const later = await h.openClient(browser, lost, lost.createLink({ role: 'player', slot: 2 }).url);
  await waitDecoding(later, 20000);
  assert.deepEqual((await status(later)).input, { backend: 'xtest', gamepads: false });
  assert.ok(lost.alive, 'the agent lives');
  t.diagnostic(said[0].replace(/\x1b\[[0-9;]*m/g, '').slice(0, 300));
  await later.close();
  await page.close();
  await h.kill(lost.rec);
});
