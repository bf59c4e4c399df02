// Links and roles as a user sees them: the page knows its role, a second
// controller is turned away, a page without a link does not get in, and a
// revoked link is cut off while others keep watching.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, status, waitFor, waitDecoding, waitFramesGrow, sleep } from './harness.mjs';

const h = new Harness('roles');
let agent;
let browser;

before(async () => {
  const { display } = await h.startDisplay();
  agent = await h.startAgent({ display, capture: 'x11' });
  browser = await h.launchBrowser();
});
after(() => h.cleanup());

h.test('roles come from the link; a second controller is refused; participants are listed', async () => {
  const controller = await h.openClient(browser, agent, agent.controllerUrl);
  await waitDecoding(controller, 20000);
  const viewer = await h.openClient(browser, agent);
  await waitDecoding(viewer, 20000);
  let s = await status(controller);
  assert.equal(s.role, 'controller');
  assert.equal(s.slot, 1);
  assert.equal((await status(viewer)).role, 'viewer');
  await waitFor(async () => (await status(controller)).participants.length === 2, 5000, 'two participants');
  s = await status(viewer);
  assert.deepEqual(s.participants.map((p) => p.role).sort(), ['controller', 'viewer']);

  const second = await h.openClient(browser, agent, agent.createLink({ role: 'controller' }).url);
  await waitFor(async () => (await status(second)).refused !== null, 5000, 'second controller refused');
  assert.match((await status(second)).refused, /controller is already connected/);
  await sleep(3000);
  assert.equal((await status(second)).connects, 1, 'a refused page does not retry');
  await second.close();

  await viewer.close();
  await waitFor(async () => (await status(controller)).participants.length === 1, 5000, 'viewer gone from the list');
  await controller.close();
});

h.test('no token or a forged one does not get in', async () => {
  const clientsBefore = (await agent.healthz()).clients;
  const bare = await h.openClient(browser, agent, agent.url);
  await waitFor(async () => (await status(bare)).refused !== null, 5000, 'bare page refused');
  assert.match((await status(bare)).refused, /needs a link/);
  assert.equal((await status(bare)).connects, 0, 'no socket opened');
  const forged = await h.openClient(browser, agent, `${agent.url}#token=abc.def`);
  await waitFor(async () => (await status(forged)).refused !== null, 5000, 'forged token refused');
  assert.match((await status(forged)).refused, /token/);
  assert.equal((await agent.healthz()).clients, clientsBefore);
  await bare.close();
  await forged.close();
});

h.test('revoking a link cuts off its viewers, others keep watching', async () => {
  const doomedLink = agent.createLink({ role: 'viewer' });
  const doomed = await h.openClient(browser, agent, doomedLink.url);
  const other = await h.openClient(browser, agent);
  await waitDecoding(doomed, 20000);
  const s0 = await waitDecoding(other, 20000);
  agent.revoke(doomedLink.id);
  await waitFor(async () => (await status(doomed)).refused !== null, 3000, 'revoked viewer cut off within 3 s');
  assert.match((await status(doomed)).refused, /revoked/);
  await waitFramesGrow(other, s0, 10, 10000);
  const again = await h.openClient(browser, agent, doomedLink.url);
  await waitFor(async () => (await status(again)).refused !== null, 5000, 'revoked link refused');
  await Promise.all([doomed.close(), other.close(), again.close()]);
});
