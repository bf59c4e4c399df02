// A private Janus (Debian's package) for the `sfu` part: the config and
// checks shared with the SFU tests (tests/janus/janus.mjs), started with
// this harness's `start()` (killed with every other child on any exit).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { childEnv, freePort, start, tmpDirs, waitFor } from './harness.mjs';
import { JANUS_BIN, interfaceName, janusAnswers, missingJanus, videoroomRequest, writeConfig } from '../../tests/janus/janus.mjs';

export { missingJanus, videoroomRequest };
export const JANUS_ROOM = 4321;
export const JANUS_SECRET = 'oriel-bench-room-secret';

/** Starts Janus; returns {url, port, iface, pid, rec, config}. */
export async function startJanus() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-bench-janus-'));
  tmpDirs.push(dir);
  const { url, args, config } = writeConfig(dir, { port, room: JANUS_ROOM, secret: JANUS_SECRET });
  const rec = start('janus', JANUS_BIN, args, childEnv());
  await waitFor(async () => {
    if (rec.exitCode !== undefined) throw new Error(`janus exited (code ${rec.exitCode}):\n${rec.log.slice(-20).join('\n')}`);
    return janusAnswers(url);
  }, 20000, 'the Janus HTTP API', 200);
  return { url, port, iface: interfaceName(), pid: rec.child.pid, rec, config };
}

/** The installed package's version, for the results (`janus --version` exits 1 on 1.1). */
export function janusVersion(sh) {
  return sh('dpkg-query', ['-W', '-f=${Version}', 'janus']);
}
