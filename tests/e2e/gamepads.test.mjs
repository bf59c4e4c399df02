// Players each drive their own gamepad slot, checked with the recording
// input sink (it stands in for /dev/uinput, which this kernel lacks): every
// injected event is a JSON line naming its device.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Harness, Agent, waitFor, waitDecoding, sleep } from './harness.mjs';

const h = new Harness('gamepads');
let agent;
let browser;
let recordFile;

const padConnect = () => [1, 0x20];
const padButton = (i, v) => [1, 0x22, i, v & 255, v >> 8];
const padAxis = (i, v) => [1, 0x23, i, v & 255, (v >> 8) & 255];
function key(down, code) {
  const field = new Array(32).fill(0);
  for (let i = 0; i < code.length; i++) field[i] = code.charCodeAt(i);
  return [1, down ? 0x01 : 0x02, ...field];
}

before(async () => {
  const { display } = await h.startDisplay();
  recordFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-rec-')), 'input.jsonl');
  h.tmpDirs.push(path.dirname(recordFile));
  agent = await h.startAgent({ display, capture: 'x11', args: ['--input', `record:${recordFile}`] });
  browser = await h.launchBrowser();
});
after(() => h.cleanup());

const recorded = () =>
  fs.existsSync(recordFile)
    ? fs.readFileSync(recordFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l))
    : [];

async function openPlayer(slot) {
  const page = await h.openClient(browser, agent, agent.createLink({ role: 'player', slot }).url);
  await waitDecoding(page, 20000);
  await waitFor(() => page.evaluate(() => window.oriel.inputReady()), 10000, 'input channels open');
  return page;
}
const send = (page, label, bytes) => page.evaluate(([l, b]) => window.oriel.sendInput(l, b), [label, bytes]);

h.test("each player's gamepad events land on its own slot only; forged keys are dropped", async () => {
  const p2 = await openPlayer(2);
  const p3 = await openPlayer(3);
  assert.equal((await p2.evaluate(() => window.oriel.status())).slot, 2);
  await send(p2, 'input', padConnect());
  await send(p3, 'input', padConnect());
  await send(p2, 'input', padButton(0, 65535)); // A on pad 2
  await send(p2, 'input', key(true, 'KeyQ')); // players may not type
  await send(p3, 'input', key(true, 'KeyW'));
  // Left stick fully up on pad 3 (-32768), on the unreliable channel: a
  // loaded machine may drop a datagram, and clients resend axes anyway
  // (the latest value wins), so send until it lands.
  await waitFor(
    async () => {
      await send(p3, 'motion', padAxis(1, 0x8000));
      return recorded().some((e) => e.device === 'gamepad3' && e.abs === 1);
    },
    10000,
    'pad 3 axis recorded',
    200,
  );
  await waitFor(() => recorded().length >= 4, 10000, 'four events recorded').catch((e) => {
    throw new Error(`${e.message}; recorded: ${JSON.stringify(recorded())}`);
  });
  await sleep(300);
  const ev = recorded();
  assert.deepEqual(
    ev.filter((e) => e.device === 'gamepad2'),
    [{ device: 'gamepad2', added: true }, { device: 'gamepad2', key: 0x130, down: true }],
  );
  const pad3 = ev.filter((e) => e.device === 'gamepad3');
  assert.deepEqual(pad3[0], { device: 'gamepad3', added: true });
  assert.ok(pad3.length >= 2, JSON.stringify(pad3));
  for (const e of pad3.slice(1)) assert.deepEqual(e, { device: 'gamepad3', abs: 1, value: -32768 });
  assert.equal(ev.filter((e) => e.device === 'keyboard').length, 0, 'no key reached the keyboard');
  const drops = Agent.metricSamples(await agent.metrics(), 'oriel_input_dropped_total');
  assert.ok(drops.some((s) => /player_not_gamepad/.test(s.labels) && s.value >= 2), JSON.stringify(drops));

  // Player 2 leaves holding A: the button is released and the pad removed.
  await p2.close();
  await waitFor(() => recorded().some((e) => e.device === 'gamepad2' && e.removed), 5000, 'pad 2 removed');
  const after2 = recorded().filter((e) => e.device === 'gamepad2');
  assert.ok(after2.some((e) => e.key === 0x130 && e.down === false), 'A released on leave');
  assert.ok(!recorded().some((e) => e.device === 'gamepad3' && e.removed), 'pad 3 untouched');
  await p3.close();
});
