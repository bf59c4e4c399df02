// The desktop's clipboard, for the controller (docs/protocol.md,
// "Clipboard"). The agent opens a `clipboard` data channel in the
// controller's connection only. What is copied on the desktop arrives
// there and is written to this machine's clipboard while the page has
// focus (navigator.clipboard needs a secure context and focus); otherwise
// the Copy button shows and one click copies it. A paste in the page
// (Ctrl+V, Shift+Insert) first sets the desktop's clipboard, then lets the
// keys go on, so the desktop's program pastes what this machine had.

const CHUNK = 16 * 1024;
const TEXT = 'text/plain;charset=utf-8';
const PNG = 'image/png';

const kib = (n) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`);

export class Clipboard {
  /**
   * @param {HTMLButtonElement} button the Copy fallback
   * @param {HTMLElement} note where a clipboard problem is said
   */
  constructor(button, note) {
    this.button = button;
    this.note = note;
    this.channel = null;
    this.limits = { text: 1 << 20, image: 8 << 20 };
    this.incoming = null; // {mime, size, parts, got}
    this.pending = null; // the desktop's last clipboard, not yet copied here
    this.lastSent = null; // the text last sent to the desktop
    this.lastPng = null; // and the image
    this.counts = { fromDesktop: 0, toDesktop: 0, refused: 0 };
    this.last = null; // the desktop's last clipboard as received (tests)
    this.button.addEventListener('click', () => this.copyPending(true));
    // A paste the page gets by other means than the keys (a menu).
    window.addEventListener('paste', (e) => {
      if (!this.channel) return;
      const text = e.clipboardData?.getData('text/plain');
      if (text) this.sendText(text);
    });
  }

  /** A data channel the agent opened; ours is `clipboard`. */
  onChannel(ch) {
    if (ch.label !== 'clipboard') return;
    ch.binaryType = 'arraybuffer';
    ch.addEventListener('message', (e) => this.onMessage(e.data));
    ch.addEventListener('open', () => { this.channel = ch; });
    ch.addEventListener('close', () => { if (this.channel === ch) this.channel = null; });
    if (ch.readyState === 'open') this.channel = ch;
  }

  /** A new session: nothing carried over. */
  reset() {
    this.channel = null;
    this.incoming = null;
    this.pending = null;
    this.render();
  }

  /** What the agent said on joining: a controller on a desktop without a clipboard hears so. */
  told(controller, has) {
    this.none = controller && !has;
    if (this.none) this.say('This desktop has no clipboard to share (oriel shares it on X11 only)');
  }

  get available() {
    return this.channel?.readyState === 'open';
  }

  onMessage(data) {
    if (typeof data === 'string') {
      let msg;
      try {
        msg = JSON.parse(data);
      } catch {
        return;
      }
      if (msg.type === 'limits') this.limits = msg.limits;
      if (msg.type === 'refused') this.say(`The desktop's clipboard is too large to copy here (text up to ${kib(msg.limits.text)}, images ${kib(msg.limits.image)})`);
      if (msg.type === 'clipboard') {
        this.incoming = { mime: msg.mime, size: msg.size, parts: [], got: 0 };
        if (msg.size === 0) this.received();
      }
      return;
    }
    const inc = this.incoming;
    if (!inc) return;
    inc.parts.push(new Uint8Array(data));
    inc.got += data.byteLength;
    if (inc.got >= inc.size) this.received();
  }

  received() {
    const { mime, parts } = this.incoming;
    this.incoming = null;
    const blob = new Blob(parts, { type: mime === TEXT ? 'text/plain' : mime });
    this.counts.fromDesktop += 1;
    this.pending = { mime, blob };
    this.copyPending(false);
  }

  /** Writes the desktop's clipboard here; `clicked`: from the Copy button. */
  async copyPending(clicked) {
    const p = this.pending;
    if (!p) return this.render();
    const text = p.mime === TEXT ? await p.blob.text() : null;
    this.last = { mime: p.mime, size: p.blob.size, text };
    if (!clicked && !document.hasFocus()) return this.render();
    try {
      if (text !== null) {
        if (navigator.clipboard?.writeText) await navigator.clipboard.writeText(text);
        else if (!clicked || !legacyCopy(text)) throw new Error('no clipboard access here (not a secure context)');
      } else {
        await navigator.clipboard.write([new ClipboardItem({ [p.mime]: p.blob })]);
      }
      if (text !== null) this.lastSent = text; // already the desktop's
      if (this.pending === p) this.pending = null;
      this.say('');
    } catch (e) {
      if (clicked) this.say(`Copy failed: ${e.message}`);
    }
    this.render();
  }

  /**
   * Before a paste's keys go to the desktop: sends this machine's clipboard
   * if it changed. Resolves when it is sent (or there was nothing to send).
   */
  async beforePaste() {
    if (!this.available || !navigator.clipboard?.readText) return;
    try {
      // An image copied here (and no text) goes as a PNG.
      const items = navigator.clipboard.read ? await navigator.clipboard.read() : [];
      const image = items.find((i) => i.types.includes(PNG) && !i.types.includes('text/plain'));
      if (image) {
        const png = new Uint8Array(await (await image.getType(PNG)).arrayBuffer());
        if (!this.lastPng || !sameBytes(png, this.lastPng)) this.send(PNG, png);
        this.lastPng = png;
        return;
      }
      const text = await navigator.clipboard.readText();
      if (text && text !== this.lastSent) this.sendText(text);
    } catch {
      // No permission: the keys go on with the desktop's own clipboard.
    }
  }

  /** Sets the desktop's clipboard to `text`; false when it cannot. */
  sendText(text) {
    if (!this.send(TEXT, new TextEncoder().encode(text))) return false;
    this.lastSent = text;
    return true;
  }

  send(mime, bytes) {
    if (!this.available) return false;
    const limit = mime === TEXT ? this.limits.text : this.limits.image;
    if (bytes.length > limit) {
      this.counts.refused += 1;
      this.say(`Not pasted on the desktop: ${kib(bytes.length)} of ${mime === TEXT ? 'text' : 'image'}, the limit is ${kib(limit)}`);
      return false;
    }
    const ch = this.channel;
    ch.send(JSON.stringify({ type: 'clipboard', mime, size: bytes.length }));
    for (let i = 0; i < bytes.length; i += CHUNK) ch.send(bytes.subarray(i, i + CHUNK));
    this.counts.toDesktop += 1;
    this.say('');
    return true;
  }

  say(text) {
    this.note.textContent = text;
    this.note.hidden = !text;
  }

  render() {
    this.button.hidden = !this.pending;
    if (this.pending) this.button.title = `Copy what was copied on the desktop (${kib(this.pending.blob.size)}) to this computer`;
  }

  status() {
    return { available: this.available, none: Boolean(this.none), pending: Boolean(this.pending), note: this.note.hidden ? null : this.note.textContent, last: this.last, ...this.counts };
  }
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Copy without the async API (plain HTTP beyond loopback): only in a click. */
function legacyCopy(text) {
  const area = document.createElement('textarea');
  area.value = text;
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.append(area);
  area.select();
  const ok = document.execCommand('copy');
  area.remove();
  return ok;
}
