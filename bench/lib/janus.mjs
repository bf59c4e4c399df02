// A private Janus (Debian's package) for the `sfu` part, from the same
// config templates as the SFU tests (tests/janus/*.in): only the HTTP
// transport and the VideoRoom plugin, the HTTP API on a free loopback port,
// one room. tests/e2e/janus.mjs does the same for the e2e harness; its
// process handling is that harness's, so the bench has this small twin on
// top of its own `start()` (killed with every other child on any exit).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, childEnv, freePort, start, tmpDirs, waitFor } from './harness.mjs';

export const JANUS_ROOM = 4321;
export const JANUS_SECRET = 'oriel-bench-room-secret';
export const JANUS_BIN = '/usr/bin/janus';
const VIDEOROOM = '/usr/lib/x86_64-linux-gnu/janus/plugins/libjanus_videoroom.so';

/** Why Janus cannot run here (missing files), or null. */
export function missingJanus() {
  const missing = [JANUS_BIN, VIDEOROOM].filter((f) => !fs.existsSync(f));
  return missing.length ? missing : null;
}

/** The first non-internal IPv4 interface: libnice gathers no loopback candidates. */
export function interfaceName() {
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    if ((addrs ?? []).some((a) => a.family === 'IPv4' && !a.internal)) return name;
  }
  throw new Error('no non-loopback IPv4 interface: ICE (libnice) needs one');
}

/** Janus's HTTP API answers `create` (and the probe session is destroyed)? */
async function janusAnswers(url) {
  try {
    const r = await fetch(url, { method: 'POST', body: JSON.stringify({ janus: 'create', transaction: 'probe' }), signal: AbortSignal.timeout(3000) });
    const v = await r.json();
    if (v.janus !== 'success') return false;
    await fetch(`${url}/${v.data.id}`, { method: 'POST', body: JSON.stringify({ janus: 'destroy', transaction: 'probe' }) });
    return true;
  } catch {
    return false;
  }
}

/** One VideoRoom request on a throwaway session (e.g. listparticipants); the plugin's data. */
export async function videoroomRequest(url, body) {
  const post = async (u, b) => (await fetch(u, { method: 'POST', body: JSON.stringify({ ...b, transaction: `bench-${Date.now()}` }) })).json();
  const session = (await post(url, { janus: 'create' })).data.id;
  try {
    const handle = (await post(`${url}/${session}`, { janus: 'attach', plugin: 'janus.plugin.videoroom' })).data.id;
    const r = await post(`${url}/${session}/${handle}`, { janus: 'message', body });
    return r.plugindata?.data ?? r;
  } finally {
    await post(`${url}/${session}`, { janus: 'destroy' }).catch(() => {});
  }
}

/** Starts Janus; returns {url, port, iface, pid, rec, config}. */
export async function startJanus() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oriel-bench-janus-'));
  tmpDirs.push(dir);
  const iface = interfaceName();
  const vars = { '@DIR@': dir, '@IFACE@': iface, '@PORT@': String(port), '@ROOM@': String(JANUS_ROOM), '@SECRET@': JANUS_SECRET };
  const config = {};
  for (const name of ['janus.jcfg', 'janus.transport.http.jcfg', 'janus.plugin.videoroom.jcfg']) {
    let text = fs.readFileSync(path.join(REPO_ROOT, 'tests/janus', `${name}.in`), 'utf8');
    for (const [k, v] of Object.entries(vars)) text = text.split(k).join(v);
    fs.writeFileSync(path.join(dir, name), text);
    config[name] = text.replace(JANUS_SECRET, '(secret)');
  }
  const url = `http://127.0.0.1:${port}/janus`;
  // Plain log lines (no colours): the part greps them for errors.
  const rec = start('janus', JANUS_BIN, ['-C', path.join(dir, 'janus.jcfg'), '-F', dir, '--disable-colors'], childEnv());
  await waitFor(async () => {
    if (rec.exitCode !== undefined) throw new Error(`janus exited (code ${rec.exitCode}):\n${rec.log.slice(-20).join('\n')}`);
    return janusAnswers(url);
  }, 20000, 'the Janus HTTP API', 200);
  return { url, port, iface, pid: rec.child.pid, rec, config };
}

/** The installed package's version, for the results (`janus --version` exits 1 on 1.1). */
export function janusVersion(sh) {
  return sh('dpkg-query', ['-W', '-f=${Version}', 'janus']);
}
