// A private Janus (Debian's package) for the SFU tests: its own config
// folder from tests/janus/*.in, the HTTP API on a free loopback port, one
// VideoRoom room. FIELD-NOTES: "Publishing into an SFU: Janus VideoRoom".

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, freePort, waitFor } from './harness.mjs';

export const JANUS_ROOM = 4321;
export const JANUS_SECRET = 'oriel-e2e-room-secret';

/** Why Janus cannot run here, or null. */
export function missingJanus() {
  const need = ['/usr/bin/janus', '/usr/lib/x86_64-linux-gnu/janus/plugins/libjanus_videoroom.so'];
  const missing = need.filter((f) => !fs.existsSync(f));
  return missing.length ? missing : null;
}

/** The first non-internal IPv4 interface (libnice uses no loopback). */
export function interfaceName() {
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    if ((addrs ?? []).some((a) => a.family === 'IPv4' && !a.internal)) return name;
  }
  throw new Error('no non-loopback IPv4 interface: ICE (libnice) needs one');
}

/** Janus's HTTP API answers `create`? */
export async function janusAnswers(url) {
  try {
    const r = await fetch(url, { method: 'POST', body: JSON.stringify({ janus: 'create', transaction: 'probe' }) });
    const v = await r.json();
    if (v.janus !== 'success') return false;
    await fetch(`${url}/${v.data.id}`, { method: 'POST', body: JSON.stringify({ janus: 'destroy', transaction: 'probe' }) });
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts Janus in the foreground under `h` (a Harness). Returns
 * {url, port, dir, rec, restart()}; `port` stays the same across restarts.
 */
export async function startJanus(h, { port = null } = {}) {
  port ??= await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-e2e-janus-'));
  h.tmpDirs.push(dir);
  const vars = { '@DIR@': dir, '@IFACE@': interfaceName(), '@PORT@': String(port), '@ROOM@': String(JANUS_ROOM), '@SECRET@': JANUS_SECRET };
  for (const name of ['janus.jcfg', 'janus.transport.http.jcfg', 'janus.plugin.videoroom.jcfg']) {
    let text = fs.readFileSync(path.join(REPO_ROOT, 'tests/janus', `${name}.in`), 'utf8');
    for (const [k, v] of Object.entries(vars)) text = text.split(k).join(v);
    fs.writeFileSync(path.join(dir, name), text);
  }
  const url = `http://127.0.0.1:${port}/janus`;
  const janus = { url, port, dir, rec: null };
  janus.start = async () => {
    janus.rec = h.spawn('janus', 'janus', ['-C', path.join(dir, 'janus.jcfg'), '-F', dir]);
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
