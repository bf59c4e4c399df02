// One signalling session: a single WebSocket speaking docs/protocol.md.
// It knows the wire format and the keepalive, nothing about WebRTC or the UI;
// a new Signalling object is made for every (re)connect so no state leaks
// from a dead session into the next one.

export const PROTOCOL_VERSION = 1;
const PING_INTERVAL_MS = 5000; // the agent drops clients silent for 30 s

export class Signalling {
  /**
   * @param {string} url ws:// or wss:// URL of the agent's /ws endpoint
   * @param {{token: string, name?: string|null}} hello the link's token
   *        (decides the role) and an optional display name
   * @param {{onOpen?: () => void, onMessage?: (msg: object) => void,
   *          onClose?: (ev: CloseEvent) => void}} handlers
   */
  constructor(url, hello, handlers) {
    this.handlers = handlers;
    this.state = 'connecting';
    this.pingTimer = null;
    this.ws = new WebSocket(url);
    this.ws.addEventListener('open', () => {
      this.state = 'open';
      const msg = { type: 'hello', protocol: PROTOCOL_VERSION, token: hello.token };
      if (hello.name) msg.name = hello.name;
      this.send(msg);
      this.pingTimer = setInterval(() => this.send({ type: 'ping' }), PING_INTERVAL_MS);
      this.handlers.onOpen?.();
    });
    this.ws.addEventListener('message', (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        console.warn('oriel: ignoring non-JSON signalling frame');
        return;
      }
      if (msg && typeof msg === 'object' && typeof msg.type === 'string') {
        this.handlers.onMessage?.(msg);
      }
    });
    this.ws.addEventListener('close', (ev) => {
      const wasClosed = this.state === 'closed';
      this.stopPing();
      this.state = 'closed';
      // close() already told the owner; only report closes we did not ask for.
      if (!wasClosed) this.handlers.onClose?.(ev);
    });
    // 'error' is always followed by 'close', which is where recovery happens.
  }

  /** Send one protocol message; silently dropped if the socket is not open. */
  send(msg) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /** Leave politely: `bye` then close. No onClose callback follows. */
  close(sayBye = true) {
    if (this.state === 'closed') return;
    if (sayBye) this.send({ type: 'bye' });
    this.stopPing();
    this.state = 'closed';
    try {
      this.ws.close(1000, 'bye');
    } catch {
      /* already closing */
    }
  }

  stopPing() {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }
}
