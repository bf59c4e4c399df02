// What the SFU tests (tests/e2e/janus.mjs) and the `sfu` benchmark
// (bench/lib/janus.mjs) share about a private Janus from Debian's package:
// its config from the templates next to this file, whether it can run and
// answers, and one VideoRoom request. Node built-ins only: each side starts
// the process with its own harness.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const JANUS_BIN = '/usr/bin/janus';
const VIDEOROOM = '/usr/lib/x86_64-linux-gnu/janus/plugins/libjanus_videoroom.so';
const FILES = ['janus.jcfg', 'janus.transport.http.jcfg', 'janus.plugin.videoroom.jcfg'];

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

/**
 * Writes Janus's config into `dir` (HTTP API on 127.0.0.1:`port`, one
 * VideoRoom `room` with `secret`); returns {url, args, config}: the API's
 * URL, Janus's command-line arguments, and each file's text with the
 * secret masked (for results).
 */
export function writeConfig(dir, { port, room, secret }) {
  const vars = { '@DIR@': dir, '@IFACE@': interfaceName(), '@PORT@': String(port), '@ROOM@': String(room), '@SECRET@': secret };
  const config = {};
  for (const name of FILES) {
    let text = fs.readFileSync(path.join(HERE, `${name}.in`), 'utf8');
    for (const [k, v] of Object.entries(vars)) text = text.split(k).join(v);
    fs.writeFileSync(path.join(dir, name), text);
    config[name] = text.split(secret).join('(secret)');
  }
  return {
    url: `http://127.0.0.1:${port}/janus`,
    // Plain log lines (no colours), so they can be grepped.
    args: ['-C', path.join(dir, 'janus.jcfg'), '-F', dir, '--disable-colors'],
    config,
  };
}

/** Janus's HTTP API answers `create` (and the probe session is destroyed)? */
export async function janusAnswers(url) {
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
  let n = 0;
  const post = async (u, b) => (await fetch(u, { method: 'POST', body: JSON.stringify({ ...b, transaction: `req-${++n}` }) })).json();
  const session = (await post(url, { janus: 'create' })).data.id;
  try {
    const handle = (await post(`${url}/${session}`, { janus: 'attach', plugin: 'janus.plugin.videoroom' })).data.id;
    const r = await post(`${url}/${session}/${handle}`, { janus: 'message', body });
    return r.plugindata?.data ?? r;
  } finally {
    await post(`${url}/${session}`, { janus: 'destroy' }).catch(() => {});
  }
}
