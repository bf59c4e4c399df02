// Local input → the agent's input protocol (docs/protocol.md, "Input").
// Captures keyboard, mouse, wheel, touch and the Gamepad API on the video
// element and sends only what this page's role may send: the agent enforces
// the same rules, this just avoids sending what would be dropped.

const T = {
  KEY_DOWN: 0x01, KEY_UP: 0x02, TEXT: 0x03,
  POINTER_ABS: 0x10, POINTER_REL: 0x11, BUTTON_DOWN: 0x12, BUTTON_UP: 0x13, WHEEL: 0x14,
  PAD_CONNECT: 0x20, PAD_DISCONNECT: 0x21, PAD_BUTTON: 0x22, PAD_AXIS: 0x23,
  RELEASE_ALL: 0x30,
};

function msg(type, size) {
  const buf = new ArrayBuffer(2 + size);
  const v = new DataView(buf);
  v.setUint8(0, 1);
  v.setUint8(1, type);
  return { buf, v };
}

export function keyMsg(down, code) {
  const { buf, v } = msg(down ? T.KEY_DOWN : T.KEY_UP, 32);
  for (let i = 0; i < code.length && i < 32; i++) v.setUint8(2 + i, code.charCodeAt(i));
  return buf;
}
export function textMsg(text) {
  const bytes = new TextEncoder().encode(text).slice(0, 1024);
  const { buf, v } = msg(T.TEXT, 2 + bytes.length);
  v.setUint16(2, bytes.length, true);
  new Uint8Array(buf, 4).set(bytes);
  return buf;
}
function xyMsg(type, x, y, signed) {
  const { buf, v } = msg(type, 4);
  if (signed) {
    v.setInt16(2, x, true);
    v.setInt16(4, y, true);
  } else {
    v.setUint16(2, x, true);
    v.setUint16(4, y, true);
  }
  return buf;
}
const clamp16 = (n) => Math.max(-32768, Math.min(32767, Math.round(n)));

export class InputCapture {
  /**
   * @param {HTMLVideoElement} video where input is captured
   * @param {(label: string, buf: ArrayBuffer) => boolean} send
   * @param {() => string|null} role the page's current role
   * @param {() => Promise<void>} beforePaste runs before a paste's keys go
   *   (the page's clipboard to the desktop's)
   */
  constructor(video, send, role, beforePaste = async () => {}) {
    this.video = video;
    this.send = send;
    this.role = role;
    this.beforePaste = beforePaste;
    // Keys go in order, a paste's waiting for the clipboard first.
    this.keys = Promise.resolve();
    this.padIndex = null; // the local gamepad we forward
    this.padLast = null; // its last sent state
    this.wheelRest = { x: 0, y: 0 };
    this.attach();
    requestAnimationFrame(() => this.pollGamepad());
  }

  canDesk() {
    return this.role() === 'controller';
  }
  canPad() {
    const r = this.role();
    return r === 'controller' || r === 'player';
  }

  /** Position over the picture (object-fit: contain leaves bars), 0..65535. */
  normalised(clientX, clientY) {
    const r = this.video.getBoundingClientRect();
    const vw = this.video.videoWidth || r.width;
    const vh = this.video.videoHeight || r.height;
    const scale = Math.min(r.width / vw, r.height / vh);
    const w = vw * scale;
    const h = vh * scale;
    const left = r.left + (r.width - w) / 2;
    const top = r.top + (r.height - h) / 2;
    const nx = Math.max(0, Math.min(1, (clientX - left) / w));
    const ny = Math.max(0, Math.min(1, (clientY - top) / h));
    return [Math.round(nx * 65535), Math.round(ny * 65535)];
  }

  attach() {
    const v = this.video;
    v.addEventListener('mousemove', (e) => {
      if (!this.canDesk()) return;
      if (document.pointerLockElement === v) {
        this.send('motion', xyMsg(T.POINTER_REL, clamp16(e.movementX), clamp16(e.movementY), true));
      } else {
        const [x, y] = this.normalised(e.clientX, e.clientY);
        this.send('motion', xyMsg(T.POINTER_ABS, x, y, false));
      }
    });
    for (const [ev, type] of [['mousedown', T.BUTTON_DOWN], ['mouseup', T.BUTTON_UP]]) {
      v.addEventListener(ev, (e) => {
        if (!this.canDesk() || e.button > 4) return;
        e.preventDefault();
        const { buf, v: dv } = msg(type, 1);
        dv.setUint8(2, e.button);
        this.send('input', buf);
      });
    }
    v.addEventListener('contextmenu', (e) => this.canDesk() && e.preventDefault());
    v.addEventListener(
      'wheel',
      (e) => {
        if (!this.canDesk()) return;
        e.preventDefault();
        // To 1/120 notch: a pixel-mode notch is ~100 px in Chromium.
        const k = e.deltaMode === 1 ? 40 : e.deltaMode === 2 ? 120 * 3 : 1.2;
        this.send('input', xyMsg(T.WHEEL, clamp16(e.deltaX * k), clamp16(e.deltaY * k), true));
      },
      { passive: false },
    );
    // Touch acts as a pointer with the left button.
    const touch = (down) => (e) => {
      if (!this.canDesk()) return;
      e.preventDefault();
      const t = e.changedTouches[0];
      const [x, y] = this.normalised(t.clientX, t.clientY);
      this.send('motion', xyMsg(T.POINTER_ABS, x, y, false));
      if (down !== null) {
        const { buf, v: dv } = msg(down ? T.BUTTON_DOWN : T.BUTTON_UP, 1);
        dv.setUint8(2, 0);
        this.send('input', buf);
      }
    };
    v.addEventListener('touchstart', touch(true), { passive: false });
    v.addEventListener('touchmove', touch(null), { passive: false });
    v.addEventListener('touchend', touch(false), { passive: false });

    for (const [ev, down] of [['keydown', true], ['keyup', false]]) {
      window.addEventListener(ev, (e) => {
        if (!this.canDesk() || !e.code || e.code === 'Unidentified') return;
        if (e.ctrlKey && e.altKey && e.code === 'KeyS') return; // the stats toggle
        // The desktop repeats held keys itself.
        if (down && e.repeat) return e.preventDefault();
        e.preventDefault();
        const paste = down && (((e.ctrlKey || e.metaKey) && e.code === 'KeyV') || (e.shiftKey && e.code === 'Insert'));
        const key = keyMsg(down, e.code);
        this.keys = this.keys
          .then(() => (paste ? this.beforePaste() : null))
          .catch(() => {})
          .then(() => this.send('input', key));
      });
    }
    // Nothing stays stuck when the page loses focus mid-press.
    window.addEventListener('blur', () => this.releaseAll());
    document.addEventListener('visibilitychange', () => document.hidden && this.releaseAll());
  }

  /** Types `text` on the desktop as keystrokes (the explicit Type action). */
  typeText(text) {
    if (!this.canDesk()) return false;
    const bytes = new TextEncoder().encode(text);
    // textMsg carries at most 1024 bytes: split on characters, not bytes.
    let part = '';
    for (const ch of text) {
      if (new TextEncoder().encode(part + ch).length > 1024) {
        this.send('input', textMsg(part));
        part = '';
      }
      part += ch;
    }
    if (part) this.send('input', textMsg(part));
    return bytes.length > 0;
  }

  releaseAll() {
    if (this.canPad()) this.send('input', msg(T.RELEASE_ALL, 0).buf);
  }

  /** Fullscreen with pointer lock and keyboard lock, for desktop control. */
  async lock() {
    try {
      await this.video.requestPointerLock?.();
      await navigator.keyboard?.lock?.();
    } catch {
      /* not allowed here (no user gesture, not fullscreen): fine */
    }
  }

  /** Gamepad API: poll every frame, send what changed (mapped to our slot). */
  pollGamepad() {
    requestAnimationFrame(() => this.pollGamepad());
    if (!this.canPad() || !navigator.getGamepads) return;
    const pads = [...navigator.getGamepads()].filter((p) => p && p.connected);
    const pad = pads.find((p) => p.index === this.padIndex) ?? pads[0] ?? null;
    if (!pad) {
      if (this.padIndex !== null) {
        this.send('input', msg(T.PAD_DISCONNECT, 0).buf);
        this.padIndex = null;
        this.padLast = null;
      }
      return;
    }
    if (this.padIndex !== pad.index) {
      this.padIndex = pad.index;
      this.padLast = { buttons: [], axes: [] };
      this.send('input', msg(T.PAD_CONNECT, 0).buf);
    }
    pad.buttons.slice(0, 17).forEach((b, i) => {
      const value = Math.round(Math.max(0, Math.min(1, b.value || (b.pressed ? 1 : 0))) * 65535);
      if (this.padLast.buttons[i] !== value) {
        this.padLast.buttons[i] = value;
        const { buf, v } = msg(T.PAD_BUTTON, 3);
        v.setUint8(2, i);
        v.setUint16(3, value, true);
        this.send('input', buf);
      }
    });
    pad.axes.slice(0, 4).forEach((a, i) => {
      const value = clamp16(a * 32767);
      if (this.padLast.axes[i] !== value) {
        this.padLast.axes[i] = value;
        const { buf, v } = msg(T.PAD_AXIS, 3);
        v.setUint8(2, i);
        v.setInt16(3, value, true);
        this.send('motion', buf);
      }
    });
  }
}
