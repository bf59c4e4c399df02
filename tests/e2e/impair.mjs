// A bad network between one Chromium page and the agent, for tests and
// benchmarks: this kernel has no netem, and Chromium's fake-network field
// trial dropped nothing here (FIELD-NOTES). The page's signalling goes
// through playwright's WebSocket routing, which points every ICE candidate
// of the agent at a UDP relay here and keeps the page's own candidates from
// the agent; so the only path between them is the relay, which forwards
// datagrams both ways and, from the agent to the page, drops (random loss),
// delays and shapes them (a link of `kbps` with a `queueMs` tail-drop
// queue, as a home router's uplink behaves).

import dgram from 'node:dgram';


/** A seeded PRNG (xorshift32): the same seed loses the same packets. */
function prng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

export class ImpairedLink {
  /**
   * `loss` 0..1 and `kbps`/`queueMs` apply from the agent to the page;
   * `delayMs` is added each way (RTT grows by twice that). All can be
   * changed while running (`set`).
   */
  constructor({ loss = 0, delayMs = 0, kbps = 0, queueMs = 200, seed = 7 } = {}) {
    this.settings = { loss, delayMs, kbps, queueMs };
    this.random = prng(seed);
    this.relays = new Map(); // "ip port" of the agent -> relay
    this.stats = { toPage: 0, toPageBytes: 0, lost: 0, queueDrops: 0, toAgent: 0 };
    this.busyUntil = 0; // when the shaped link has sent all it holds (ms)
    this.closed = false;
  }

  set(changes) {
    Object.assign(this.settings, changes);
  }

  /** Route `page`'s signalling to `agent` through this link (before goto). */
  async attach(page) {
    await page.routeWebSocket(/\/ws$/, (ws) => {
      const server = ws.connectToServer();
      server.onMessage(async (text) => ws.send(await this.fromAgent(text)));
      ws.onMessage((text) => {
        const out = this.fromPage(text);
        if (out !== null) server.send(out);
      });
    });
  }

  /** The agent's candidates (in `ice` and any SDP) point at relays. */
  async fromAgent(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return text;
    }
    if (msg.type === 'ice' && typeof msg.candidate === 'string') {
      msg.candidate = await this.rewrite(msg.candidate);
    } else if (msg.type === 'offer' && typeof msg.sdp === 'string') {
      const lines = [];
      for (const l of msg.sdp.split('\r\n')) lines.push(l.startsWith('a=candidate:') ? `a=${await this.rewrite(l.slice(2))}` : l);
      msg.sdp = lines.join('\r\n');
    } else {
      return text;
    }
    return JSON.stringify(msg);
  }

  /** The page's candidates never reach the agent: no path around the relay. */
  fromPage(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return text;
    }
    if (msg.type === 'ice') return null;
    if (msg.type === 'answer' && typeof msg.sdp === 'string') {
      msg.sdp = msg.sdp
        .split('\r\n')
        .filter((l) => !l.startsWith('a=candidate:'))
        .join('\r\n');
      return JSON.stringify(msg);
    }
    return text;
  }

  /** `candidate:... IP PORT typ ...` with IP PORT of a relay instead. */
  async rewrite(candidate) {
    const f = candidate.split(' ');
    // foundation component transport priority ip port "typ" type ...
    if (f.length < 8 || !/^udp$/i.test(f[2])) return candidate;
    const relay = await this.relayFor(f[4], Number(f[5]));
    f[4] = relay.address;
    f[5] = String(relay.port);
    return f.join(' ');
  }

  async relayFor(ip, port) {
    const key = `${ip} ${port}`;
    if (!this.relays.has(key)) {
      const sock = dgram.createSocket(ip.includes(':') ? 'udp6' : 'udp4');
      const relay = { sock, agent: { ip, port }, page: null, address: ip, port: 0 };
      sock.on('message', (buf, from) => {
        if (this.closed) return;
        if (from.address === ip && from.port === port) this.toPage(relay, buf);
        else {
          relay.page = { ip: from.address, port: from.port };
          this.stats.toAgent++;
          this.later(this.settings.delayMs, () => sock.send(buf, port, ip));
        }
      });
      sock.on('error', () => {});
      await new Promise((resolve) => sock.bind(0, ip, resolve));
      relay.port = sock.address().port;
      this.relays.set(key, relay);
    }
    return this.relays.get(key);
  }

  toPage(relay, buf) {
    if (!relay.page) return;
    const { loss, delayMs, kbps, queueMs } = this.settings;
    if (loss > 0 && this.random() < loss) {
      this.stats.lost++;
      return;
    }
    let wait = delayMs;
    if (kbps > 0) {
      const now = performance.now();
      const start = Math.max(now, this.busyUntil);
      if (start - now > queueMs) {
        this.stats.queueDrops++;
        return;
      }
      this.busyUntil = start + (buf.length * 8) / kbps; // kbit/s = bit/ms
      wait += this.busyUntil - now;
    }
    this.stats.toPage++;
    this.stats.toPageBytes += buf.length;
    const { ip, port } = relay.page;
    this.later(wait, () => relay.sock.send(buf, port, ip));
  }

  later(ms, fn) {
    if (ms <= 0.5) fn();
    else setTimeout(() => !this.closed && fn(), ms);
  }

  close() {
    this.closed = true;
    for (const r of this.relays.values()) r.sock.close();
    this.relays.clear();
  }
}
