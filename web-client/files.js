// Uploads to the desktop, for the controller (docs/protocol.md, "Files").
// Files dropped on the page or picked with Upload go one at a time on the
// agent's `files` channel: an offer, the agent's accept (or why not), then
// the bytes. Two brakes keep both sides small: this page sends only while
// the channel's own buffer is under HIGH (waiting for `bufferedamountlow`),
// and never more than the agent's window past what it acknowledged.
// The picture comes first: while the desktop is moving, an upload yields
// when the video's frame rate drops under 90 % of the best it had just
// before or during the upload (both ends spend CPU on it), and speeds up
// again when it recovers.
// The other way, `oriel send FILE` on the desktop: the agent sends a
// header, the bytes, then `sent`; the page saves the file as a download
// and lists it under Downloads.

const CHUNK = 64 * 1024;
const READ = 1024 * 1024;
const HIGH = 1024 * 1024;
const LOW = 256 * 1024;
const MAX_LISTED = 20;
// The upload's pace: from unlimited down to this at the slowest.
const RATE_MAX = 256 * 1024 * 1024;
const RATE_MIN = 256 * 1024;
// The frame rate is looked at this often; below this, the picture is
// still (damage-driven) and nothing is yielded to it.
const FPS_EVERY_MS = 500;
const FPS_MOVING = 10;

const size = (n) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB`
  : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`);

export class Files {
  /**
   * @param {HTMLButtonElement} button Upload
   * @param {HTMLInputElement} picker the hidden file input
   * @param {HTMLUListElement} list where transfers are shown
   * @param {HTMLVideoElement} video whose frame rate an upload yields to
   */
  constructor(button, picker, list, video) {
    this.video = video;
    this.pace = { rate: RATE_MAX, tokens: 0, at: 0, baseline: 0, lastFrames: 0, lastAt: 0, fps: 0, timer: null };
    this.button = button;
    this.picker = picker;
    this.list = list;
    this.channel = null;
    this.transfers = [];
    this.downloads = [];
    this.incoming = null; // the download being received
    this.nextId = 1;
    this.busy = false;
    this.waiters = new Map(); // id -> resolve, for the agent's next word on it
    button.addEventListener('click', () => picker.click());
    picker.addEventListener('change', () => {
      this.add(picker.files);
      picker.value = '';
    });
    document.addEventListener('dragover', (e) => {
      if (this.channel && e.dataTransfer?.types?.includes('Files')) e.preventDefault();
    });
    document.addEventListener('drop', (e) => {
      if (!this.channel || !e.dataTransfer?.files?.length) return;
      e.preventDefault();
      this.add(e.dataTransfer.files);
    });
  }

  /** A data channel the agent opened; ours is `files`. */
  onChannel(ch) {
    if (ch.label !== 'files') return;
    ch.binaryType = 'arraybuffer';
    ch.bufferedAmountLowThreshold = LOW;
    ch.addEventListener('message', (e) => this.onMessage(e.data));
    const open = () => {
      this.channel = ch;
      this.render();
      this.pump();
    };
    ch.addEventListener('open', open);
    ch.addEventListener('close', () => {
      if (this.channel !== ch) return;
      this.channel = null;
      this.failAll('the connection closed');
    });
    if (ch.readyState === 'open') open();
  }

  /** A new session: what was under way is lost (the agent removed it). */
  reset() {
    this.channel = null;
    this.failAll('the connection closed');
  }

  failAll(why) {
    if (this.incoming) {
      this.incoming.state = 'failed';
      this.incoming.reason = why;
      this.incoming.parts = [];
      this.incoming = null;
    }
    for (const t of this.transfers) {
      if (t.state === 'sending' || t.state === 'offered' || t.state === 'queued') {
        t.state = 'failed';
        t.reason = why;
      }
    }
    for (const resolve of this.waiters.values()) resolve(null);
    this.waiters.clear();
    this.busy = false;
    this.render();
  }

  add(fileList) {
    for (const file of fileList) {
      this.transfers.push({ id: this.nextId++, file, name: file.name, size: file.size, sent: 0, acked: 0, window: 0, state: 'queued', savedAs: null, reason: null, startedAt: 0, doneAt: 0 });
    }
    while (this.transfers.length > MAX_LISTED && this.transfers[0].state !== 'queued' && this.transfers[0].state !== 'sending') this.transfers.shift();
    this.render();
    this.pump();
  }

  cancel(id) {
    const t = this.transfers.find((x) => x.id === id);
    if (!t || (t.state !== 'sending' && t.state !== 'queued' && t.state !== 'offered')) return false;
    if (t.state !== 'queued') this.channel?.send(JSON.stringify({ type: 'cancel', id }));
    t.state = 'cancelled';
    this.waiters.get(id)?.(null);
    this.render();
    return true;
  }

  onMessage(data) {
    if (data instanceof ArrayBuffer) {
      this.onDownloadData(data);
      return;
    }
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    if (m?.type === 'send' || m?.type === 'sent' || m?.type === 'unsent') {
      this.onDownload(m);
      return;
    }
    const t = this.transfers.find((x) => x.id === m?.id);
    if (!t) return;
    switch (m.type) {
      case 'accept':
        t.window = Number(m.window) || 0;
        t.savedAs = typeof m.name === 'string' ? m.name : null;
        break;
      case 'ack':
        t.acked = Math.max(t.acked, Number(m.received) || 0);
        break;
      case 'done':
        t.state = 'done';
        t.acked = t.size;
        t.savedAs = typeof m.path === 'string' ? m.path : t.savedAs;
        t.doneAt = performance.now();
        break;
      case 'refused':
        if (t.state !== 'cancelled') {
          t.state = 'failed';
          t.reason = typeof m.message === 'string' ? m.message : String(m.reason);
        }
        break;
      case 'cancelled':
        break;
      default:
        return;
    }
    const w = this.waiters.get(t.id);
    if (w) {
      this.waiters.delete(t.id);
      w(m);
    }
    this.render();
  }

  onDownload(m) {
    if (m.type === 'send') {
      const d = { id: m.id, name: typeof m.name === 'string' ? m.name : 'download', size: Number(m.size) || 0, got: 0, parts: [], state: 'receiving', reason: null, startedAt: performance.now(), doneAt: 0 };
      this.downloads.push(d);
      while (this.downloads.length > MAX_LISTED) this.downloads.shift();
      this.incoming = d;
    } else {
      const d = this.downloads.find((x) => x.id === m.id);
      if (!d) return;
      if (m.type === 'sent' && d.got === d.size) {
        this.save(d);
      } else {
        d.state = 'failed';
        d.reason = m.type === 'sent' ? `${d.got} of ${d.size} bytes arrived` : String(m.reason);
        d.parts = [];
      }
      if (this.incoming === d) this.incoming = null;
    }
    this.render();
  }

  onDownloadData(buf) {
    const d = this.incoming;
    if (!d) return;
    d.parts.push(buf);
    d.got += buf.byteLength;
    if (d.got > d.size) {
      d.state = 'failed';
      d.reason = 'more bytes than announced';
      d.parts = [];
      this.incoming = null;
    }
    if (performance.now() - (d.rendered ?? 0) > 250) {
      d.rendered = performance.now();
      this.render();
    }
  }

  /** No more of download `id`: the agent stops sending it. */
  stopDownload(id) {
    const d = this.downloads.find((x) => x.id === id);
    if (!d || d.state !== 'receiving') return false;
    this.channel?.send(JSON.stringify({ type: 'stop', id }));
    d.state = 'failed';
    d.reason = 'stopped';
    d.parts = [];
    if (this.incoming === d) this.incoming = null;
    this.render();
    return true;
  }

  /** Hands the file to the browser's downloads (it asks, or saves it). */
  save(d) {
    const url = URL.createObjectURL(new Blob(d.parts));
    d.parts = [];
    const a = document.createElement('a');
    a.href = url;
    a.download = d.name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    d.state = 'saved';
    d.doneAt = performance.now();
  }

  /** The agent's next message about `t` (null if the upload ended meanwhile). */
  next(t) {
    return new Promise((resolve) => this.waiters.set(t.id, resolve));
  }

  drained(ch) {
    return new Promise((resolve) => {
      const done = () => {
        ch.removeEventListener('bufferedamountlow', done);
        ch.removeEventListener('close', done);
        resolve();
      };
      ch.addEventListener('bufferedamountlow', done);
      ch.addEventListener('close', done);
    });
  }

  async pump() {
    if (this.busy || !this.channel) return;
    const t = this.transfers.find((x) => x.state === 'queued');
    if (!t) return;
    this.busy = true;
    try {
      await this.upload(t);
    } catch (e) {
      if (t.state === 'sending' || t.state === 'offered') {
        t.state = 'failed';
        t.reason = e.message;
      }
    }
    this.busy = false;
    this.render();
    this.pump();
  }

  frames() {
    return this.video?.getVideoPlaybackQuality?.().totalVideoFrames ?? 0;
  }

  /** Starts watching the frame rate; the last second before is the baseline. */
  startPacing() {
    const p = this.pace;
    p.rate = RATE_MAX;
    p.tokens = 0;
    p.at = performance.now();
    p.lastFrames = this.frames();
    p.lastAt = p.at;
    p.baseline = this.recentFps ?? 0;
    clearInterval(p.timer);
    p.timer = setInterval(() => {
      const now = performance.now();
      const f = this.frames();
      p.fps = ((f - p.lastFrames) * 1000) / Math.max(1, now - p.lastAt);
      p.lastFrames = f;
      p.lastAt = now;
      // The best rate seen is what the picture can do (a desktop that
      // starts moving mid-upload raises it).
      const best = p.baseline;
      p.baseline = Math.max(p.baseline, p.fps);
      if (best < FPS_MOVING) return;
      if (p.fps < 0.9 * best) p.rate = Math.max(RATE_MIN, p.rate === RATE_MAX ? 32 << 20 : p.rate * 0.7);
      else p.rate = Math.min(RATE_MAX, p.rate * 1.25);
    }, FPS_EVERY_MS);
  }

  stopPacing() {
    clearInterval(this.pace.timer);
    this.pace.timer = null;
  }

  /** Waits until `bytes` fit the pace. */
  async paced(bytes) {
    const p = this.pace;
    for (;;) {
      const now = performance.now();
      p.tokens = Math.min(p.rate / 4, p.tokens + ((now - p.at) / 1000) * p.rate);
      p.at = now;
      if (p.rate >= RATE_MAX || p.tokens >= bytes) {
        p.tokens -= bytes;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.max(1, ((bytes - p.tokens) / p.rate) * 1000)));
    }
  }

  /** The frame rate over the last second, watched between uploads. */
  watchIdleFps() {
    let frames = this.frames();
    let at = performance.now();
    setInterval(() => {
      if (this.pace.timer) return;
      const f = this.frames();
      const now = performance.now();
      this.recentFps = ((f - frames) * 1000) / Math.max(1, now - at);
      frames = f;
      at = now;
    }, 1000);
  }

  async upload(t) {
    const ch = this.channel;
    t.state = 'offered';
    t.startedAt = performance.now();
    this.render();
    const answer = this.next(t);
    ch.send(JSON.stringify({ type: 'offer', id: t.id, name: t.name, size: t.size }));
    const first = await answer;
    if (!first || first.type !== 'accept' || t.state !== 'offered') return;
    t.state = 'sending';
    this.startPacing();
    try {
      await this.sendBytes(t, ch);
    } finally {
      this.stopPacing();
    }
    // The agent's last word: done, or why not.
    while (t.state === 'sending') {
      if (!(await this.next(t))) break;
    }
  }

  async sendBytes(t, ch) {
    let lastRender = 0;
    while (t.sent < t.size && t.state === 'sending') {
      const block = new Uint8Array(await t.file.slice(t.sent, Math.min(t.size, t.sent + READ)).arrayBuffer());
      for (let at = 0; at < block.length && t.state === 'sending';) {
        if (ch.readyState !== 'open') throw new Error('the connection closed');
        if (ch.bufferedAmount > HIGH) {
          await this.drained(ch);
          continue;
        }
        if (t.window && t.sent - t.acked >= t.window) {
          await this.next(t);
          continue;
        }
        const piece = block.subarray(at, Math.min(block.length, at + CHUNK));
        await this.paced(piece.length);
        if (t.state !== 'sending') break;
        ch.send(piece);
        at += piece.length;
        t.sent += piece.length;
        if (performance.now() - lastRender > 250) {
          lastRender = performance.now();
          this.render();
        }
      }
    }
  }

  render() {
    this.button.hidden = !this.channel;
    this.list.hidden = this.transfers.length === 0 && this.downloads.length === 0;
    const downloads = this.downloads.map((d) => {
      const li = document.createElement('li');
      const what = {
        receiving: `${d.size ? Math.floor((100 * d.got) / d.size) : 100} % of ${size(d.size)}`,
        saved: 'saved in your downloads',
        failed: `not received: ${d.reason}`,
      }[d.state];
      li.textContent = `\u2193 ${d.name}: ${what}`;
      if (d.state === 'receiving') {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = 'Stop';
        b.addEventListener('click', () => this.stopDownload(d.id));
        li.append(' ', b);
      }
      return li;
    });
    this.list.replaceChildren(...downloads, ...this.transfers.map((t) => {
      const li = document.createElement('li');
      const pct = t.size ? Math.floor((100 * t.acked) / t.size) : 100;
      const what = {
        queued: 'waiting',
        offered: 'asking the desktop',
        sending: `${pct} % of ${size(t.size)}`,
        done: `saved as ${t.savedAs ?? t.name}`,
        failed: `not saved: ${t.reason}`,
        cancelled: 'cancelled',
      }[t.state];
      li.textContent = `\u2191 ${t.name}: ${what}`;
      if (t.state === 'sending' || t.state === 'queued' || t.state === 'offered') {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = 'Cancel';
        b.addEventListener('click', () => this.cancel(t.id));
        li.append(' ', b);
      }
      return li;
    }));
  }

  status() {
    return {
      available: !!this.channel,
      pace: { rate: this.pace.rate, baseline: this.pace.baseline, fps: this.pace.fps },
      transfers: this.transfers.map((t) => ({
        id: t.id, name: t.name, size: t.size, sent: t.sent, acked: t.acked, state: t.state, savedAs: t.savedAs, reason: t.reason,
        ms: t.doneAt ? t.doneAt - t.startedAt : null,
      })),
      downloads: this.downloads.map((d) => ({
        id: d.id, name: d.name, size: d.size, got: d.got, state: d.state, reason: d.reason,
        ms: d.doneAt ? d.doneAt - d.startedAt : null,
      })),
    };
  }
}
