// The desktop made the size of this window (docs/protocol.md, `resize`),
// when the agent's `welcome` says this page may (the controller's, with
// the agent's --resize). In device pixels, so that text on a HiDPI screen
// is as sharp as the desktop draws it; while the window is dragged only
// the last size of a burst is sent (the agent coalesces too).

const DEBOUNCE_MS = 250;

export class Resizer {
  /** @param {(msg: object) => void} send a signalling message */
  constructor(send) {
    this.send = send;
    this.enabled = false;
    this.last = null;
    this.sent = 0;
    this.timer = null;
    window.addEventListener('resize', () => this.schedule());
  }

  /** What the agent said on joining; a new session sends its size again. */
  told(enabled) {
    this.enabled = enabled;
    this.last = null;
    clearTimeout(this.timer);
    if (enabled) this.now();
  }

  schedule() {
    if (!this.enabled) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.now(), DEBOUNCE_MS);
  }

  wanted() {
    const dpr = window.devicePixelRatio || 1;
    return { width: Math.round(window.innerWidth * dpr), height: Math.round(window.innerHeight * dpr) };
  }

  now() {
    if (!this.enabled) return;
    const w = this.wanted();
    if (this.last && this.last.width === w.width && this.last.height === w.height) return;
    this.last = w;
    this.sent++;
    this.send({ type: 'resize', ...w });
  }

  status() {
    return { enabled: this.enabled, last: this.last ? { ...this.last } : null, sent: this.sent };
  }
}
