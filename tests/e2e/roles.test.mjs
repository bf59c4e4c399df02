// Links and roles as a user sees them: the page knows its role, a second
// controller is turned away, the same link reconnecting takes its seat back,
// everyone sees who is here, a page without a link does not get in, and a
// revoked link is cut off while others keep watching.

import { before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Harness, status, waitFor, waitDecoding, waitFramesGrow, sleep } from './harness.mjs';

const h = new Harness('roles');
let agent;
let browser;
let pages = [];

before(async () => {
  const { display } = await h.startDisplay();
  agent = await h.startAgent({ display, capture: 'x11' });
  browser = await h.launchBrowser();
});
after(() => h.cleanup());

/** Pages opened by a test are closed after it, and the agent must be empty again. */
afterEach(async () => {
  await Promise.all(pages.map((p) => p.close().catch(() => {})));
  pages = [];
  if (agent?.alive) {
    await waitFor(async () => (await agent.healthz()).clients === 0, 10000, '/healthz clients back to 0 after the test');
  }
});

async function open(url = null) {
  const page = await h.openClient(browser, agent, url);
  pages.push(page);
  return page;
}

const bannerText = (page) => page.locator('#banner-text').textContent();

h.test('the controller link gives role controller and slot 1, a viewer link role viewer', async () => {
  const controller = await open(agent.controllerUrl);
  const viewer = await open();
  await waitDecoding(controller, 20000);
  await waitDecoding(viewer, 20000);
  const c = await status(controller);
  assert.equal(c.role, 'controller');
  assert.equal(c.slot, 1);
  assert.equal(c.refused, null);
  const v = await status(viewer);
  assert.equal(v.role, 'viewer');
  assert.equal(v.slot, null);
  assert.equal(v.refused, null);
  assert.match(await controller.locator('#role').textContent(), /controller.*slot 1/);
  assert.match(await viewer.locator('#role').textContent(), /^viewer/);
});

h.test('a second controller link is refused with roleTaken and the page stops', async () => {
  const first = await open(agent.controllerUrl);
  const s0 = await waitDecoding(first, 20000);
  const second = await open(agent.createLink({ role: 'controller' }).url);
  await waitFor(async () => (await status(second)).refused !== null, 5000, 'second controller refused');
  const s = await status(second);
  assert.match(s.refused, /controller is already connected/);
  assert.ok(s.errors.some((e) => e.startsWith('roleTaken')), `a roleTaken error (errors: ${JSON.stringify(s.errors)})`);
  assert.equal(s.role, null);
  assert.match(await bannerText(second), /controller is already connected/);
  await sleep(3000);
  assert.equal((await status(second)).connects, 1, 'a refused page does not retry');
  // The seat holder is untouched.
  await waitFramesGrow(first, s0, 10, 10000);
  assert.equal((await status(first)).refused, null);
});

h.test('the same controller link reconnecting replaces its old session', async () => {
  const controller = await open(agent.controllerUrl);
  await waitDecoding(controller, 20000);
  const clients = (await agent.healthz()).clients;
  assert.equal(clients, 1);

  // Reload: the new page gets the seat back and plays.
  await controller.reload({ waitUntil: 'load' });
  const s = await waitDecoding(controller, 20000);
  assert.equal(s.role, 'controller');
  assert.equal(s.refused, null);
  await waitFor(async () => (await agent.healthz()).clients === clients, 5000, `/healthz clients back to ${clients}`);

  // The same link in a second tab while the first is still there: the new
  // tab wins, the old one is told why and does not fight back.
  const tab2 = await open(agent.controllerUrl);
  await waitDecoding(tab2, 20000);
  await waitFor(async () => (await status(controller)).refused !== null, 5000, 'old tab told it was replaced');
  assert.match((await status(controller)).refused, /replaced/);
  assert.match(await bannerText(controller), /replaced/);
  const t2 = await status(tab2);
  assert.equal(t2.role, 'controller');
  await sleep(2000);
  assert.equal((await status(controller)).connects, 1, 'the replaced tab does not reconnect');
  await waitFramesGrow(tab2, t2, 10, 10000);
  assert.equal((await agent.healthz()).clients, clients);
});

h.test('every page lists the participants and sees leaves', async () => {
  const controller = await open(agent.controllerUrl);
  const v1 = await open();
  const v2 = await open();
  const all = [controller, v1, v2];
  for (const p of all) await waitDecoding(p, 20000);
  for (const p of all) {
    await waitFor(async () => (await status(p)).participants.length === 3, 5000, 'three participants');
    const s = await status(p);
    assert.deepEqual(s.participants.map((x) => x.role).sort(), ['controller', 'viewer', 'viewer']);
    const c = s.participants.find((x) => x.role === 'controller');
    assert.equal(c.slot, 1);
    for (const x of s.participants) {
      assert.equal(typeof x.peerId, 'number');
      assert.equal(typeof x.name, 'string');
      if (x.role === 'viewer') assert.equal(x.slot, undefined, 'viewers have no slot');
    }
    assert.ok(s.participants.some((x) => x.peerId === s.peerId), 'the page itself is listed');
    // The panel marks this page as "you", once.
    const items = await p.locator('#who li').allTextContents();
    assert.equal(items.length, 3, `panel: ${JSON.stringify(items)}`);
    assert.equal(items.filter((t) => t.endsWith('(you)')).length, 1, `panel: ${JSON.stringify(items)}`);
  }
  await v2.close();
  for (const p of [controller, v1]) {
    await waitFor(async () => (await status(p)).participants.length === 2, 5000, 'the closed viewer gone from the list');
    assert.deepEqual((await status(p)).participants.map((x) => x.role).sort(), ['controller', 'viewer']);
  }
});

h.test('a page without a token does not connect; a forged token is refused', async () => {
  const before = (await agent.healthz()).clients;
  const bare = await open(agent.url);
  const s = await status(bare);
  assert.match(s.refused ?? '', /needs a link/);
  assert.match(await bannerText(bare), /This page needs a link from the agent's owner \(oriel link create\)/);
  await sleep(1000);
  assert.equal((await status(bare)).connects, 0, 'no socket opened');
  assert.equal((await agent.healthz()).clients, before, 'no client on the agent');

  const forged = await open(`${agent.url}#token=abc.def`);
  await waitFor(async () => (await status(forged)).refused !== null, 5000, 'forged token refused');
  const f = await status(forged);
  assert.match(f.refused, /token/);
  assert.ok(f.errors.some((e) => e.startsWith('unauthorized')), `an unauthorized error (errors: ${JSON.stringify(f.errors)})`);
  assert.match(await bannerText(forged), /token/);
  await sleep(2000);
  assert.equal((await status(forged)).connects, 1, 'a refused page does not retry');
  assert.equal((await agent.healthz()).clients, before, 'the refused socket is gone');
});

h.test('revoking a link cuts off its viewers within 3 s; others keep watching', async () => {
  const doomedLink = agent.createLink({ role: 'viewer' });
  const doomed = await open(doomedLink.url);
  const other = await open();
  await waitDecoding(doomed, 20000);
  const s0 = await waitDecoding(other, 20000);
  const t0 = Date.now();
  agent.revoke(doomedLink.id);
  await waitFor(async () => (await status(doomed)).refused !== null, 3000, 'revoked viewer cut off within 3 s');
  const elapsed = Date.now() - t0;
  const d = await status(doomed);
  assert.match(d.refused, /revoked/);
  assert.notEqual(d.ws, 'open', `socket closed (after ${elapsed} ms)`);
  assert.match(await bannerText(doomed), /revoked/);
  await waitFramesGrow(other, s0, 10, 10000);
  assert.equal((await status(other)).refused, null);

  const again = await open(doomedLink.url);
  await waitFor(async () => (await status(again)).refused !== null, 5000, 'revoked link refused');
  assert.match((await status(again)).refused, /revoked/);
  await sleep(1000);
  assert.equal((await status(doomed)).connects, 1, 'the revoked page does not reconnect');
  assert.equal((await agent.healthz()).clients, 1, 'only the other viewer remains');
});
