// Out of the box on a headless machine: with no DISPLAY the agent starts its
// own Xvfb, streams it, and takes it down again when it stops.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Harness, alive, descendants, pidsMatching, waitFor, waitDecoding, within, xServerAnswers,
} from './harness.mjs';

const h = new Harness('auto-capture');
after(() => h.cleanup());

h.test('--capture auto without DISPLAY starts a virtual display and cleans it up', async () => {
  const agent = await h.startAgent({
    display: null, // no DISPLAY, no WAYLAND_DISPLAY in its environment
    capture: 'auto',
    args: ['--virtual-display-size', '1280x720'],
  });
  const line = await h.waitForLog(agent.rec, /virtual display :\d+/, 15000, '"virtual display :N"');
  const display = `:${line.match(/virtual display :(\d+)/)[1]}`;
  assert.ok(xServerAnswers(display), `an X server answers on ${display}`);
  // The Xvfb may not name its display on its command line (-displayfd), so
  // also remember the X servers the agent started.
  const servers = descendants(agent.rec.child.pid).filter((p) => /(^|\/)(Xvfb|Xorg|X)\b/.test(p.cmd));
  assert.ok(servers.length > 0, `the agent runs an X server (children: ${JSON.stringify(descendants(agent.rec.child.pid))})`);
  const onDisplay = new RegExp(`(^|[\\s=])${display}(\\.\\d+)?(\\s|$)`);

  const browser = await h.launchBrowser();
  const page = await h.openClient(browser, agent);
  const s = await waitDecoding(page, 20000);
  assert.equal(s.width, 1280, 'video width');
  assert.equal(s.height, 720, 'video height');
  await page.close();

  agent.signal('SIGTERM');
  const exit = await within(agent.rec.exited, 15000, null);
  assert.ok(exit, 'agent exits within 15 s of SIGTERM');
  const leftovers = () => [
    ...servers.filter((p) => alive(p.pid)),
    ...pidsMatching(onDisplay).filter((p) => !servers.some((x) => x.pid === p.pid)),
  ];
  const left = await waitFor(() => (leftovers().length === 0 ? [] : null), 5000, `${display} gone`, 200)
    .catch(() => leftovers());
  assert.deepEqual(left, [], `processes still serving ${display} after the agent exited`);
  assert.ok(!xServerAnswers(display), `no X server answers on ${display} any more`);
});
