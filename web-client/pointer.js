// The desktop's pointer, drawn by this page (docs/protocol.md, "Pointer").
// With the agent's `--pointer page` the stream carries no pointer; shapes
// arrive on the `cursor` channel (the image the first time, after that
// only its id) and, for viewers and players, places on `pointer`. The
// controller's page makes the shape the video's CSS cursor: the pointer is
// this browser's own and moves with the hand, with no delay. Other pages
// draw the image where the remote pointer is.

const MAX_CACHED = 256;
const MAX_SIDE = 256;
// Chromium and Firefox ignore CSS cursors larger than this.
const CSS_MAX = 128;

/** The video's picture inside its element (object-fit: contain). */
function pictureRect(video) {
  const r = video.getBoundingClientRect();
  const vw = video.videoWidth || r.width;
  const vh = video.videoHeight || r.height;
  const scale = Math.min(r.width / vw, r.height / vh) || 1;
  return {
    left: r.left + (r.width - vw * scale) / 2,
    top: r.top + (r.height - vh * scale) / 2,
    scale,
  };
}

function decode(b64) {
  const bin = atob(b64);
  const out = new Uint8ClampedArray(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export class Pointer {
  /**
   * @param {HTMLVideoElement} video
   * @param {HTMLImageElement} overlay the remote pointer, for pages that do not drive it
   * @param {HTMLElement} note where a hidden pointer is said
   */
  constructor(video, overlay, note) {
    this.video = video;
    this.overlay = overlay;
    this.note = note;
    this.controller = false;
    this.shapes = new Map(); // id -> {canvas, name, width, height, hotX, hotY, hidden}
    this.current = null;
    this.at = null;
    this.counts = { shapes: 0, places: 0, malformed: 0 };
    this.cssFor = null; // [id, scale] of the CSS cursor set now
    window.addEventListener('resize', () => this.render());
    video.addEventListener('resize', () => this.render());
  }

  /** A data channel the agent opened; ours are `cursor` and `pointer`. */
  onChannel(ch) {
    if (ch.label === 'cursor') ch.addEventListener('message', (e) => this.onShape(e.data));
    else if (ch.label === 'pointer') ch.addEventListener('message', (e) => this.onPlace(e.data));
  }

  /** A new session: the agent tells the shapes again. */
  reset() {
    this.shapes.clear();
    this.current = null;
    this.at = null;
    this.cssFor = null;
    this.video.style.cursor = '';
    this.render();
  }

  /** The role the agent granted: the controller's pointer is the browser's own. */
  told(role) {
    this.controller = role === 'controller';
    this.render();
  }

  onShape(data) {
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      m = null;
    }
    if (!m || m.type !== 'shape' || !Number.isInteger(m.id)) {
      this.counts.malformed++;
      return;
    }
    if (typeof m.rgba === 'string') {
      const shape = this.build(m);
      if (!shape) {
        this.counts.malformed++;
        return;
      }
      if (this.shapes.size >= MAX_CACHED) this.shapes.clear();
      this.shapes.set(m.id, shape);
    }
    const shape = this.shapes.get(m.id);
    if (!shape) {
      this.counts.malformed++;
      return;
    }
    this.counts.shapes++;
    this.current = { id: m.id, ...shape };
    this.render();
  }

  build(m) {
    const { width: w, height: h } = m;
    if (!Number.isInteger(w) || !Number.isInteger(h) || w < 0 || h < 0 || w > MAX_SIDE || h > MAX_SIDE) return null;
    let canvas = null;
    if (w > 0 && h > 0 && m.rgba) {
      let pixels;
      try {
        pixels = decode(m.rgba);
      } catch {
        return null;
      }
      if (pixels.length !== w * h * 4) return null;
      canvas = document.createElement('canvas');
      canvas.width = w;
      canvas.height = h;
      canvas.getContext('2d').putImageData(new ImageData(pixels, w, h), 0, 0);
    }
    return {
      canvas,
      name: typeof m.name === 'string' ? m.name.slice(0, 64) : '',
      width: w,
      height: h,
      hotX: Math.min(Number(m.hotX) || 0, Math.max(0, w - 1)),
      hotY: Math.min(Number(m.hotY) || 0, Math.max(0, h - 1)),
      hidden: m.hidden === true,
    };
  }

  onPlace(data) {
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      m = null;
    }
    if (!m || !Number.isFinite(m.x) || !Number.isFinite(m.y)) {
      this.counts.malformed++;
      return;
    }
    this.counts.places++;
    this.at = { x: m.x, y: m.y };
    this.place();
  }

  /** The image at `scale` as a data URL (the cursor follows the video's scale). */
  url(shape, scale) {
    const w = Math.max(1, Math.round(shape.width * scale));
    const h = Math.max(1, Math.round(shape.height * scale));
    if (scale === 1) return shape.canvas.toDataURL('image/png');
    const c = document.createElement('canvas');
    c.width = w;
    c.height = h;
    c.getContext('2d').drawImage(shape.canvas, 0, 0, w, h);
    return c.toDataURL('image/png');
  }

  render() {
    const s = this.current;
    const hidden = !!s?.hidden;
    this.note.hidden = !(this.controller && hidden);
    this.note.textContent = this.note.hidden ? '' : 'The desktop hides its pointer: Fullscreen locks yours to the video';
    if (this.controller) {
      this.overlay.hidden = true;
      if (!s) {
        this.video.style.cursor = '';
      } else if (hidden) {
        this.video.style.cursor = 'none';
      } else if (s.canvas) {
        // At most CSS_MAX on a side, the hotspot scaled with it.
        const { scale: picture } = pictureRect(this.video);
        const scale = Math.min(picture, CSS_MAX / Math.max(s.width, s.height));
        const key = `${s.id}@${scale.toFixed(2)}`;
        if (this.cssFor !== key) {
          this.cssFor = key;
          const hx = Math.round(s.hotX * scale);
          const hy = Math.round(s.hotY * scale);
          this.video.style.cursor = `url(${this.url(s, scale)}) ${hx} ${hy}, default`;
        }
      } else {
        this.video.style.cursor = 'default';
      }
      return;
    }
    if (s?.canvas && !hidden) {
      const url = s.canvas.toDataURL('image/png');
      if (this.overlay.dataset.shape !== String(s.id)) {
        this.overlay.src = url;
        this.overlay.dataset.shape = String(s.id);
      }
    }
    this.place();
  }

  /** Puts the remote pointer's image where the pointer is on the picture. */
  place() {
    const s = this.current;
    if (this.controller || !s?.canvas || s.hidden || !this.at) {
      this.overlay.hidden = true;
      return;
    }
    const { left, top, scale } = pictureRect(this.video);
    this.overlay.style.width = `${s.width * scale}px`;
    this.overlay.style.height = `${s.height * scale}px`;
    this.overlay.style.left = `${left + (this.at.x - s.hotX) * scale}px`;
    this.overlay.style.top = `${top + (this.at.y - s.hotY) * scale}px`;
    this.overlay.hidden = false;
  }

  /** For tests and the stats panel. */
  status() {
    const s = this.current;
    return {
      current: s ? { id: s.id, name: s.name, width: s.width, height: s.height, hotX: s.hotX, hotY: s.hotY, hidden: s.hidden } : null,
      at: this.at ? { ...this.at } : null,
      cached: this.shapes.size,
      counts: { ...this.counts },
      css: this.video.style.cursor.startsWith('url(') ? 'image' : this.video.style.cursor,
      overlay: this.overlay.hidden ? null : {
        left: parseFloat(this.overlay.style.left),
        top: parseFloat(this.overlay.style.top),
        width: parseFloat(this.overlay.style.width),
      },
      note: this.note.hidden ? '' : this.note.textContent,
    };
  }
}
