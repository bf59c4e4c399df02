// A minimal WHIP endpoint (RFC 9725) for the tests, in front of the test
// Janus: POST takes the offer and publishes it into the VideoRoom as a
// publisher of its own, answering with Janus's answer and a resource URL;
// PATCH trickles candidates to Janus; DELETE leaves. It records what it
// saw, including Janus's own report that media arrives.

import http from 'node:http';

/** One Janus session with the VideoRoom attached, and its events. */
class JanusPublisher {
  constructor(url) {
    this.url = url;
    this.events = [];
    this.waiters = [];
    this.tx = 0;
  }

  async post(url, body) {
    const r = await fetch(url, { method: 'POST', body: JSON.stringify({ ...body, transaction: `w${++this.tx}` }) });
    const v = await r.json();
    if (v.janus === 'error') throw new Error(`Janus ${v.error.code}: ${v.error.reason}`);
    return { ...v, sent: `w${this.tx}` };
  }

  async open() {
    const s = await this.post(this.url, { janus: 'create' });
    this.sessionUrl = `${this.url}/${s.data.id}`;
    const a = await this.post(this.sessionUrl, { janus: 'attach', plugin: 'janus.plugin.videoroom' });
    this.handleUrl = `${this.sessionUrl}/${a.data.id}`;
    this.polling = this.poll();
  }

  async poll() {
    while (!this.closed) {
      let list;
      try {
        list = [].concat(await (await fetch(`${this.sessionUrl}?maxev=10`)).json());
      } catch {
        return;
      }
      for (const ev of list) {
        this.events.push(ev);
        for (const w of [...this.waiters]) if (w.match(ev)) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(ev); }
      }
    }
  }

  waitEvent(match, ms = 10000) {
    const hit = this.events.find(match);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      this.waiters.push({ match, resolve });
      setTimeout(() => reject(new Error('Janus did not answer')), ms).unref();
    });
  }

  async message(body, jsep) {
    const sent = await this.post(this.handleUrl, { janus: 'message', body, ...(jsep ? { jsep } : {}) });
    return this.waitEvent((e) => e.transaction === sent.sent && e.janus === 'event');
  }

  async close() {
    this.closed = true;
    await this.post(this.sessionUrl, { janus: 'destroy' }).catch(() => {});
  }
}

/**
 * Starts the endpoint on a free loopback port. `token`: the bearer token
 * it requires. Returns {url, posts, resources, close()}.
 */
export async function startWhipEndpoint({ janusUrl, room, feed, token }) {
  const state = { posts: [], patches: 0, deletes: 0, resources: new Map() };
  let next = 0;
  const server = http.createServer(async (req, res) => {
    const body = await new Promise((resolve) => {
      let b = '';
      req.setEncoding('utf8');
      req.on('data', (d) => { b += d; });
      req.on('end', () => resolve(b));
    });
    const reply = (code, text = '', headers = {}) => {
      res.writeHead(code, { 'Content-Type': 'text/plain', ...headers });
      res.end(text);
    };
    try {
      if (req.headers.authorization !== `Bearer ${token}`) {
        state.posts.push({ status: 401 });
        return reply(401, 'invalid token');
      }
      if (req.method === 'POST' && req.url === '/whip/endpoint') {
        if (req.headers['content-type'] !== 'application/sdp') return reply(415, 'offer must be application/sdp');
        const janus = new JanusPublisher(janusUrl);
        await janus.open();
        const joined = await janus.message({ request: 'join', ptype: 'publisher', room, id: feed, display: 'whip' });
        if (joined.plugindata.data.error) throw new Error(joined.plugindata.data.error);
        const published = await janus.message({ request: 'publish' }, { type: 'offer', sdp: body });
        if (!published.jsep) throw new Error(`no answer: ${JSON.stringify(published.plugindata.data)}`);
        const id = String(++next);
        state.resources.set(id, { janus, offer: body, candidates: body.split('\n').filter((l) => l.startsWith('a=candidate:')).length });
        state.posts.push({ status: 201 });
        return reply(201, published.jsep.sdp, { 'Content-Type': 'application/sdp', Location: `/whip/resource/${id}` });
      }
      const m = req.url.match(/^\/whip\/resource\/(\d+)$/);
      const resource = m && state.resources.get(m[1]);
      if (!resource) return reply(404, 'no such resource');
      if (req.method === 'PATCH') {
        state.patches += 1;
        for (const line of body.split(/\r?\n/)) {
          if (line.startsWith('a=candidate:')) {
            await resource.janus.post(resource.janus.handleUrl, { janus: 'trickle', candidate: { candidate: line.slice(2), sdpMLineIndex: 0 } });
          }
        }
        return reply(204);
      }
      if (req.method === 'DELETE') {
        state.deletes += 1;
        await resource.janus.close();
        state.resources.delete(m[1]);
        return reply(200);
      }
      return reply(405, 'method not allowed');
    } catch (e) {
      return reply(500, e.message);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/whip/endpoint`,
    state,
    /** Resources created so far (ids count up from 1). */
    created: () => next,
    /** Did Janus report receiving media on a live resource created after the `after`th? */
    mediaReceived(after = 0) {
      return [...state.resources.entries()].some(([id, r]) => Number(id) > after &&
        r.janus.events.some((e) => e.janus === 'media' && e.receiving === true));
    },
    async close() {
      for (const r of state.resources.values()) await r.janus.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
