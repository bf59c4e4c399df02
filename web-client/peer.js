// The WebRTC side of one session: answer the agent's offer, trickle ICE both
// ways, hand the received video track to the page. One Peer per session.

export class Peer {
  /**
   * @param {{send: (msg: object) => void,
   *          onTrack: (stream: MediaStream) => void,
   *          onStateChange: (state: string) => void,
   *          onError: (message: string) => void,
   *          onIceProblem?: (message: string) => void,
   *          iceServers?: RTCIceServer[],
   *          iceTransportPolicy?: RTCIceTransportPolicy}} opts
   */
  constructor(opts) {
    this.opts = opts;
    // ICE servers come from the agent's `welcome` (TURN credentials minted
    // for this session); none means the agent is reached directly (LAN,
    // tunnel). 'relay' (page URL ?ice=relay) forces TURN. max-bundle: one
    // transport.
    this.pc = new RTCPeerConnection({
      iceServers: opts.iceServers ?? [],
      iceTransportPolicy: opts.iceTransportPolicy ?? 'all',
      bundlePolicy: 'max-bundle',
    });
    this.localCandidates = 0;
    this.serverErrorSeen = false;
    // A STUN/TURN server that refuses us or cannot be reached: say which
    // and why, or the user only ever sees "Connecting…".
    this.pc.addEventListener('icecandidateerror', (ev) => {
      if (this.closed || !/^turns?:|^stun:/.test(ev.url ?? '')) return;
      this.serverErrorSeen = true;
      this.opts.onIceProblem?.(describeIceError(ev));
    });
    this.pc.addEventListener('icegatheringstatechange', () => {
      if (this.closed || this.pc.iceGatheringState !== 'complete' || this.localCandidates > 0) return;
      // A server's own error (401, unreachable) says more; keep it.
      if (this.serverErrorSeen) return;
      const relay = this.pc.getConfiguration().iceTransportPolicy === 'relay';
      this.opts.onIceProblem?.(
        relay
          ? 'no relay candidate: no TURN server gave this browser an allocation'
          : 'this browser found no network candidates',
      );
    });
    // Remote candidates and the offer are applied strictly in arrival order:
    // a candidate must not reach the pc before the offer it belongs to.
    this.queue = Promise.resolve();
    this.closed = false;
    // Candidates that arrive before the offer wait here (the protocol says
    // they follow it, but a reordering agent must not cost the session).
    this.haveOffer = false;
    this.early = [];

    this.pc.addEventListener('icecandidate', (ev) => {
      const c = ev.candidate;
      // null = end of gathering; the agent needs no notice of it.
      if (!c || !c.candidate) return;
      this.localCandidates += 1;
      const msg = { type: 'ice', candidate: c.candidate, sdpMLineIndex: c.sdpMLineIndex ?? 0 };
      if (c.sdpMid != null) msg.sdpMid = c.sdpMid;
      this.opts.send(msg);
    });
    this.pc.addEventListener('track', (ev) => {
      // Low latency: ask the jitter buffer to hold as little as possible
      // (the agent also sends playout-delay 0/0 on every packet).
      try {
        if ('jitterBufferTarget' in ev.receiver) ev.receiver.jitterBufferTarget = 0;
        if ('playoutDelayHint' in ev.receiver) ev.receiver.playoutDelayHint = 0;
      } catch {
        /* older browsers: best effort */
      }
      // Video and sound are two tracks of one stream (the agent gives both
      // the same msid, so the browser keeps them in sync): one MediaStream
      // for the element, whichever track comes first.
      if (!this.stream) this.stream = ev.streams[0] ?? new MediaStream();
      if (!this.stream.getTracks().includes(ev.track)) this.stream.addTrack(ev.track);
      this.opts.onTrack(this.stream);
    });
    this.pc.addEventListener('connectionstatechange', () => {
      if (!this.closed) this.opts.onStateChange(this.pc.connectionState);
    });
    // The agent opens the input channels: `input` (reliable, ordered) for
    // keys and buttons, `motion` (unordered, no retransmits) for pointer
    // motion and gamepad axes; and for the controller `clipboard`.
    this.channels = new Map();
    this.pc.addEventListener('datachannel', (ev) => {
      ev.channel.binaryType = 'arraybuffer';
      this.channels.set(ev.channel.label, ev.channel);
      this.opts.onChannel?.(ev.channel);
    });
  }

  /** Send one binary input message; false when the channel is not open. */
  sendInput(label, bytes) {
    const ch = this.channels.get(label);
    if (!ch || ch.readyState !== 'open') return false;
    ch.send(bytes);
    return true;
  }

  get state() {
    return this.closed ? 'closed' : this.pc.connectionState;
  }

  /** Apply the agent's offer and send back our answer. */
  handleOffer(sdp) {
    this.haveOffer = true;
    this.enqueue(async () => {
      await this.pc.setRemoteDescription({ type: 'offer', sdp });
      // The agent offers to receive sound only from the controller (its
      // microphone): answer that transceiver as sending, with no track
      // until the microphone is switched on (replaceTrack needs no new
      // negotiation).
      if (offersToReceiveAudio(sdp)) {
        const t = this.pc.getTransceivers().find((x) => x.receiver.track?.kind === 'audio');
        if (t) {
          t.direction = 'sendrecv';
          this.micSender = t.sender;
        }
      }
      const answer = await this.pc.createAnswer();
      await this.pc.setLocalDescription(answer);
      this.opts.send({ type: 'answer', sdp: this.pc.localDescription.sdp });
    }, 'could not apply the offer');
    for (const init of this.early.splice(0)) this.addCandidate(init);
  }

  /** Whether the agent takes this client's microphone. */
  get canSendAudio() {
    return Boolean(this.micSender);
  }

  /** Sends `track` (a microphone's) as this client's sound, or stops with null. */
  async setMicrophone(track) {
    if (!this.micSender) throw new Error('the agent takes no microphone from this client');
    await this.micSender.replaceTrack(track);
  }

  /** Add one of the agent's trickled candidates. */
  addRemoteCandidate(msg) {
    if (typeof msg.candidate !== 'string' || msg.candidate === '') return;
    const init = { candidate: msg.candidate, sdpMLineIndex: msg.sdpMLineIndex ?? 0 };
    if (typeof msg.sdpMid === 'string') init.sdpMid = msg.sdpMid;
    if (this.haveOffer) this.addCandidate(init);
    else this.early.push(init);
  }

  addCandidate(init) {
    this.enqueue(() => this.pc.addIceCandidate(init), 'could not add an ICE candidate');
  }

  enqueue(step, what) {
    this.queue = this.queue.then(async () => {
      if (this.closed) return;
      try {
        await step();
      } catch (e) {
        if (!this.closed) this.opts.onError(`${what}: ${e?.message ?? e}`);
      }
    });
  }

  getStats() {
    return this.pc.getStats();
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.pc.close();
  }
}

/** A user-facing sentence for an RTCPeerConnectionIceErrorEvent. */
export function describeIceError(ev) {
  const kind = /^turns?:/.test(ev.url) ? 'TURN' : 'STUN';
  const code = ev.errorCode;
  if (code === 401) return `${kind} server ${ev.url} refused the credentials (401)`;
  if (code === 403) return `${kind} server ${ev.url} refused the request (403 ${ev.errorText || 'Forbidden'})`;
  if (code === 701) return `${kind} server ${ev.url} could not be reached (701)`;
  return `${kind} server ${ev.url} failed (${code}${ev.errorText ? ` ${ev.errorText}` : ''})`;
}

/** True when the offer's audio section has the agent receiving too (sendrecv). */
export function offersToReceiveAudio(sdp) {
  return sdp.split(/\r?\nm=/).some((section) => section.startsWith('audio') && /\r?\na=sendrecv\b/.test(section));
}
