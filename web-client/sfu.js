// The view-only page for audiences beyond the desktop's own uplink: it asks
// oriel (with the link's viewer token) where the stream is published, then
// subscribes to it in the Janus VideoRoom through Janus's HTTP API, as a
// small client of that API (create session, attach, join as subscriber,
// answer Janus's offer, trickle, keepalive, long-poll events). When the
// publisher goes away (oriel restarting, Janus restarting) it subscribes
// again.

const video = document.getElementById('video');
const bannerText = document.getElementById('banner-text');
const bannerDetail = document.getElementById('banner-detail');
const banner = document.getElementById('banner');
const token = new URLSearchParams(location.hash.slice(1)).get('token');

const state = { phase: 'starting', error: null, subscriptions: 0, framesDecoded: 0, width: 0, height: 0 };

function show(text, detail = '') {
  bannerText.textContent = text;
  bannerDetail.textContent = detail;
  banner.hidden = !text;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let tx = 0;
const transaction = () => `sfu-${Date.now()}-${++tx}`;

async function janus(url, body) {
  const r = await fetch(url, { method: 'POST', body: JSON.stringify({ ...body, transaction: transaction() }) });
  const v = await r.json();
  if (v.janus === 'error') throw new Error(`Janus error ${v.error?.code}: ${v.error?.reason}`);
  return v;
}

/** One subscription; resolves when it ends (hangup, feed gone, Janus gone). */
async function subscribe(sfu) {
  const base = sfu.url.replace(/\/$/, '');
  const session = (await janus(base, { janus: 'create' })).data.id;
  const sessionUrl = `${base}/${session}`;
  const handle = (await janus(sessionUrl, { janus: 'attach', plugin: 'janus.plugin.videoroom' })).data.id;
  const handleUrl = `${sessionUrl}/${handle}`;
  const pc = new RTCPeerConnection();
  let ended = null;
  const done = new Promise((resolve) => { ended = resolve; });
  pc.ontrack = (e) => {
    video.srcObject = e.streams[0] ?? new MediaStream([e.track]);
  };
  pc.onicecandidate = (e) => {
    const candidate = e.candidate ? { candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid, sdpMLineIndex: e.candidate.sdpMLineIndex } : { completed: true };
    janus(handleUrl, { janus: 'trickle', candidate }).catch(() => {});
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'failed') ended('the connection to the SFU failed');
  };
  const keepalive = setInterval(() => janus(sessionUrl, { janus: 'keepalive' }).catch((e) => ended(e.message)), 25000);
  const join = { request: 'join', ptype: 'subscriber', room: sfu.room, streams: [{ feed: sfu.feed }] };
  if (sfu.pin) join.pin = sfu.pin;
  await janus(handleUrl, { janus: 'message', body: join });

  // Events: the offer for our subscription, then anything that ends it.
  (async () => {
    let rid = 0;
    while (!pc.signalingState.startsWith('closed')) {
      let events;
      try {
        const r = await fetch(`${sessionUrl}?maxev=10&rid=${++rid}`);
        events = [].concat(await r.json());
      } catch (e) {
        return ended('the SFU stopped answering');
      }
      for (const ev of events) {
        if (ev.janus === 'error') return ended(`Janus error ${ev.error?.code}: ${ev.error?.reason}`);
        const data = ev.plugindata?.data ?? {};
        if (data.error_code) return ended(`${data.error} (error ${data.error_code})`);
        if (ev.jsep?.type === 'offer') {
          await pc.setRemoteDescription(ev.jsep);
          const answer = await pc.createAnswer();
          await pc.setLocalDescription(answer);
          await janus(handleUrl, { janus: 'message', body: { request: 'start', room: sfu.room }, jsep: { type: 'answer', sdp: answer.sdp } });
          state.phase = 'connecting';
        }
        if (ev.janus === 'webrtcup') {
          state.phase = 'playing';
          state.subscriptions += 1;
          show('');
        }
        if (ev.janus === 'hangup' || ev.janus === 'detached') return ended(`the SFU hung up (${ev.reason ?? ev.janus})`);
        if (data.videoroom === 'event' && (data.left || data.unpublished)) return ended('the publisher left');
        if (data.videoroom === 'updated' && Array.isArray(data.streams) && data.streams.every((s) => !s.active)) return ended('the publisher left');
      }
    }
  })();

  const why = await done;
  clearInterval(keepalive);
  pc.close();
  janus(sessionUrl, { janus: 'destroy' }).catch(() => {});
  return why;
}

async function run() {
  if (!token) {
    state.phase = 'refused';
    return show('This page needs a link', 'Ask for a viewer link (oriel link create --role viewer --via-sfu).');
  }
  const r = await fetch('/api/sfu', { headers: { Authorization: `Bearer ${token}` } });
  const info = await r.json().catch(() => ({}));
  if (!r.ok) {
    state.phase = 'refused';
    state.error = info.error ?? `HTTP ${r.status}`;
    return show('This link does not work', state.error);
  }
  for (;;) {
    state.phase = 'subscribing';
    show('Waiting for the stream…');
    let why;
    try {
      why = await subscribe(info);
    } catch (e) {
      why = e.message;
    }
    state.error = why;
    state.phase = 'waiting';
    show('Waiting for the stream…', why);
    await sleep(2000);
  }
}

// Decoded frames, for the page's own banner and for tests.
setInterval(() => {
  const q = video.getVideoPlaybackQuality?.();
  if (q) state.framesDecoded = q.totalVideoFrames;
  state.width = video.videoWidth;
  state.height = video.videoHeight;
}, 250);

/** What the page sees: phase (subscribing, connecting, playing, waiting, refused), error, frames. */
window.orielSfu = { status: () => ({ ...state }) };

run();
