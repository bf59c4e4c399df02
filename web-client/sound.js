// The desktop's sound: it arrives as an audio track in the same stream as
// the video, so the <video> element plays both in sync. Browsers block
// sound until the user acts, so the video starts muted and the Unmute
// button (shown only when there is sound) lifts that; a volume slider
// shows while unmuted; "no sound" says when the desktop sends none.

const VOLUME_KEY = 'oriel.volume';

export class Sound {
  /** `video`: the element playing the stream; the toolbar's controls. */
  constructor(video, { button, volume, none }) {
    this.video = video;
    this.button = button;
    this.volume = volume;
    this.none = none;
    this.tracks = 0;
    this.known = false;
    let saved = null;
    try {
      saved = localStorage.getItem(VOLUME_KEY);
    } catch {
      /* storage may be disabled */
    }
    const v = Number(saved);
    this.video.volume = saved !== null && Number.isFinite(v) && v >= 0 && v <= 1 ? v : 1;
    this.volume.value = String(this.video.volume);
    this.button.addEventListener('click', () => this.toggle());
    this.volume.addEventListener('input', () => {
      this.video.volume = Number(this.volume.value);
      try {
        localStorage.setItem(VOLUME_KEY, String(this.video.volume));
      } catch {
        /* best effort */
      }
    });
    this.render();
  }

  /** A track arrived on `stream` (video or audio). */
  onTrack(stream) {
    this.tracks = stream.getAudioTracks().length;
    this.render();
  }

  /** The connection is up: every track it will have has arrived. */
  settled() {
    this.known = true;
    this.render();
  }

  /** A new session: nothing known until its tracks come. */
  reset() {
    this.tracks = 0;
    this.known = false;
    this.render();
  }

  toggle() {
    // Unmuting from a click satisfies the autoplay policy.
    this.video.muted = !this.video.muted;
    this.video.play().catch(() => {});
    this.render();
  }

  render() {
    const has = this.tracks > 0;
    this.button.hidden = !has;
    this.button.textContent = this.video.muted ? 'Unmute' : 'Mute';
    this.button.title = this.video.muted ? 'Hear the desktop' : 'Mute the desktop';
    this.volume.hidden = !has || this.video.muted;
    this.none.hidden = has || !this.known;
  }

  status() {
    return {
      tracks: this.tracks,
      muted: this.video.muted,
      volume: this.video.volume,
      none: !this.none.hidden,
    };
  }
}
