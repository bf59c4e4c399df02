// Uploads to the desktop, for the controller (docs/protocol.md, "Files").
// Files dropped on the page or picked with Upload go one at a time on the
// agent's `files` channel: an offer, the agent's accept (or why not), then
// the bytes. Two brakes keep both sides small: this page sends only while
// the channel's own buffer is under HIGH (waiting for `bufferedamountlow`),
// and never more than the agent's window past what it acknowledged.

const CHUNK = 64 * 1024;
const READ = 1024 * 1024;
const HIGH = 1024 * 1024;
const LOW = 256 * 1024;
const MAX_LISTED = 20;

const size = (n) => (n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB`
  : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`);

export class Files {
  /**
   * @param {HTMLButtonElement} button Upload
   * @param {HTMLInputElement} picker the hidden file input
   * @param {HTMLUListElement} list where transfers are shown
   */
  constructor(button, picker, list) {
    this.button = button;
    this.picker = picker;
    this.list = list;
    this.channel = null;
    this.transfers = [];
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
    let m;
    try {
      m = JSON.parse(data);
    } catch {
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
        ch.send(piece);
        at += piece.length;
        t.sent += piece.length;
        if (performance.now() - lastRender > 250) {
          lastRender = performance.now();
          this.render();
        }
      }
    }
    // The agent's last word: done, or why not.
    while (t.state === 'sending') {
      if (!(await this.next(t))) break;
    }
  }

  render() {
    this.button.hidden = !this.channel;
    this.list.hidden = this.transfers.length === 0;
    this.list.replaceChildren(...this.transfers.map((t) => {
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
      li.textContent = `${t.name}: ${what}`;
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
      transfers: this.transfers.map((t) => ({
        id: t.id, name: t.name, size: t.size, sent: t.sent, acked: t.acked, state: t.state, savedAs: t.savedAs, reason: t.reason,
        ms: t.doneAt ? t.doneAt - t.startedAt : null,
      })),
    };
  }
}
