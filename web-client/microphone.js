// The controller's microphone: off until its button is pressed (the
// browser then asks for permission), sent on the connection the agent
// already made (it offers to receive sound only from the controller; the
// button shows only then). Off again on a second press or a new session.

export class Microphone {
  constructor(button, { onError }) {
    this.button = button;
    this.onError = onError;
    this.peer = null;
    this.track = null;
    this.busy = false;
    this.button.addEventListener('click', () => this.toggle());
    this.render();
  }

  /** A new session's peer (or null): the microphone starts off. */
  attach(peer) {
    this.stopTrack();
    this.peer = peer;
    this.render();
  }

  /** The offer was applied: whether this client may send sound is known. */
  refresh() {
    this.render();
  }

  async toggle() {
    if (this.busy || !this.peer?.canSendAudio) return;
    this.busy = true;
    try {
      if (this.track) {
        await this.peer.setMicrophone(null);
        this.stopTrack();
      } else {
        const stream = await navigator.mediaDevices.getUserMedia({
          audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
        });
        this.track = stream.getAudioTracks()[0] ?? null;
        await this.peer.setMicrophone(this.track);
      }
    } catch (e) {
      this.stopTrack();
      this.onError(`microphone: ${e.message ?? e}`);
    } finally {
      this.busy = false;
      this.render();
    }
  }

  stopTrack() {
    if (this.track) this.track.stop();
    this.track = null;
  }

  render() {
    this.button.hidden = !this.peer?.canSendAudio;
    this.button.textContent = this.track ? 'Mic off' : 'Mic';
    this.button.title = this.track ? 'Stop sending your microphone' : 'Send your microphone to the desktop';
    this.button.setAttribute('aria-pressed', this.track ? 'true' : 'false');
  }

  status() {
    return { available: Boolean(this.peer?.canSendAudio), on: Boolean(this.track) };
  }
}
