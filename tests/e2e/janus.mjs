// A private Janus (Debian's package) for the SFU tests, under the e2e
// harness: config and checks shared with the benchmark
// (tests/janus/janus.mjs), the HTTP API on a free loopback port, one
// VideoRoom room. FIELD-NOTES: "Publishing into an SFU: Janus VideoRoom".

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from './harness.mjs';
import { JANUS_BIN, janusAnswers, missingJanus, videoroomRequest, writeConfig } from '../janus/janus.mjs';

export { missingJanus, videoroomRequest };
export const JANUS_ROOM = 4321;
export const JANUS_SECRET = 'oriel-e2e-room-secret';

/**
 * Starts Janus in the foreground under `h` (a Harness). Returns
 * {url, port, dir, rec, start()}; `start()` starts it again on the same port.
 */
export async function startJanus(h) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-e2e-janus-'));
  h.tmpDirs.push(dir);
  const { url, args } = writeConfig(dir, { port, room: JANUS_ROOM, secret: JANUS_SECRET });
  const janus = { url, port, dir, rec: null };
  janus.start = async () => {
    janus.rec = h.spawn('janus', JANUS_BIN, args);
    await waitFor(async () => {
      if (janus.rec.exitCode !== undefined) throw new Error(`janus exited (code ${janus.rec.exitCode})`);
      return janusAnswers(url);
    }, 20000, 'Janus HTTP API', 200);
    return janus;
  };
  return janus.start();
}

/** A subscriber page's status (web-client/sfu.js). */
export function sfuStatus(page) {
  return page.evaluate(() => window.orielSfu.status());
}
