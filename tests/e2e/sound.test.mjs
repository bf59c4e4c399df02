// The desktop's sound (issue 16): a tone played on the desktop's sound
// server is heard in the page at its frequency, then at the next one; with
// --audio off there is no audio track and the page says so; with no client
// the agent records nothing; a sound server that dies takes the sound, not
// the picture. Real PulseAudio, real Chromium, WebAudio's AnalyserNode.

import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Agent, Harness, alive, descendants, keepPeerConnections, sleep, status, waitDecoding, waitFor, waitFramesGrow, within } from './harness.mjs';
import { ImpairedLink } from './impair.mjs';
import { hears, orielRecordings, playTone, recordDefaultSource, startSoundServer, toneFile } from './sound.mjs';

const h = new Harness('sound');
let display;
let browser;
let sound;

before(async () => {
  ({ display } = await h.startDisplay());
  sound = await startSoundServer(h);
  browser = await h.launchBrowser();
});
after(() => h.cleanup());

h.test('a tone on the desktop is heard in the page at 880 Hz, then at 440 Hz', async () => {
  const agent = await h.startAgent({ display, env: { PULSE_SERVER: sound.address } });
  const health = await agent.healthz();
  assert.match(health.audio, /desk\.monitor/, `the agent records the default output's monitor: ${health.audio}`);
  const page = await h.openClient(browser, agent);
  await waitDecoding(page, 20000);
  const st = await status(page);
  assert.equal(st.sound.tracks, 1, 'one audio track beside the video');
  assert.equal(await page.isVisible('#btn-unmute'), true, 'the Unmute button shows when there is sound');
  assert.equal(st.sound.none, false);
  const high = playTone(h, sound.address, 880);
  const a = await hears(page, 880, 'first tone');
  await h.kill(high);
  const low = playTone(h, sound.address, 440);
  const b = await hears(page, 440, 'second tone');
  await h.kill(low);
  assert.ok(Math.abs(a.freq - b.freq) > 300, `two tones told apart: ${a.freq} and ${b.freq} Hz`);
  // Unmuting is the page's own control.
  await page.click('#btn-unmute');
  const after = await status(page);
  assert.equal(after.sound.muted, false);
  assert.equal(await page.isVisible('#volume'), true, 'volume shows once unmuted');
  await page.close();
  await h.kill(agent.rec);
});

h.test('with no client the agent records nothing; a client starts the recording and its leaving ends it', async () => {
  const agent = await h.startAgent({ display, env: { PULSE_SERVER: sound.address }, args: ['--idle-stop-ms', '500'] });
  // The startup check recorded a moment and stopped.
  await waitFor(() => orielRecordings(sound.pactl) === 0, 5000, 'no recording without a client');
  const page = await h.openClient(browser, agent);
  await waitDecoding(page, 20000);
  assert.equal(orielRecordings(sound.pactl), 1, 'one recording for the shared stream');
  const second = await h.openClient(browser, agent, agent.viewerUrl());
  await waitDecoding(second, 20000);
  assert.equal(orielRecordings(sound.pactl), 1, 'a second client shares it (one capture, one encode)');
  await second.close();
  await page.close();
  await waitFor(async () => (await agent.healthz()).pipeline === 'stopped', 15000, 'idle stop');
  await waitFor(() => orielRecordings(sound.pactl) === 0, 5000, 'the recording ends with the idle stop');
  await h.kill(agent.rec);
});

h.test('--audio off: no audio track, and the page says the desktop has no sound', async () => {
  const agent = await h.startAgent({ display, env: { PULSE_SERVER: sound.address }, args: ['--audio', 'off'] });
  const page = await h.openClient(browser, agent);
  await waitDecoding(page, 20000);
  const kinds = await page.evaluate(() => document.querySelector('video').srcObject.getTracks().map((t) => t.kind));
  assert.deepEqual(kinds, ['video']);
  await waitFor(async () => (await status(page)).sound.none, 5000, 'the page saying "no sound"');
  assert.equal(await page.isVisible('#btn-unmute'), false, 'no Unmute without sound');
  assert.equal(await page.isVisible('#no-sound'), true);
  assert.equal(orielRecordings(sound.pactl), 0);
  await page.close();
  await h.kill(agent.rec);
});

h.test('a named device that does not exist is a clear error at startup', async () => {
  await assert.rejects(
    h.startAgent({ display, env: { PULSE_SERVER: sound.address }, args: ['--audio', 'no_such_source'] }),
    /agent exited/,
  );
  const rec = h.procs.filter((p) => p.name === 'oriel').at(-1);
  assert.ok(rec.log.some((l) => /--audio no_such_source: recording it on unix:.* failed/.test(l)), rec.log.slice(-5).join('\n'));
});

h.test('the sound server dying ends the sound only: the picture goes on, the failure is counted', async () => {
  const own = await startSoundServer(h);
  const agent = await h.startAgent({ display, env: { PULSE_SERVER: own.address } });
  const page = await h.openClient(browser, agent);
  await waitDecoding(page, 20000);
  assert.equal((await status(page)).sound.tracks, 1);
  await h.kill(own.rec);
  await waitFor(async () => Agent.metricSamples(await agent.metrics(), 'oriel_audio_failures_total')[0]?.value === 1,
    10000, 'the sound failure counted');
  await waitFramesGrow(page, await status(page), 30, 10000);
  assert.equal((await status(page)).pcState, 'connected', 'the client keeps its connection');
  assert.ok(agent.alive);
  await page.close();
  await h.kill(agent.rec);
});

h.test('its own virtual display gets its own sound server: the session plays, the page hears; SIGTERM leaves nothing behind', async () => {
  const agent = await h.startAgent({
    display: null,
    capture: 'auto',
    args: ['--session-cmd', 'gst-launch-1.0 -q audiotestsrc is-live=true freq=660 volume=0.5 ! audioconvert ! pulsesink'],
  });
  const health = await agent.healthz();
  assert.match(health.audio, /oriel_speakers\.monitor on unix:.*oriel-sound-\d+\/native/, health.audio);
  const page = await h.openClient(browser, agent);
  await waitDecoding(page, 20000);
  await hears(page, 660, 'the session command\'s tone');
  const children = descendants(agent.rec.child.pid);
  const server = children.find((p) => /(^|\/)pulseaudio\b/.test(p.cmd));
  assert.ok(server, `pulseaudio among ${JSON.stringify(children)}`);
  const dir = health.audio.match(/unix:(\S+)\/native/)[1];
  assert.ok(fs.existsSync(dir));
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700, 'its socket directory is private');
  agent.signal('SIGTERM');
  assert.ok(await within(agent.rec.exited, 15000, null), 'the agent exits within 15 s of SIGTERM');
  await waitFor(() => !children.some((p) => alive(p.pid)), 5000, 'every child gone (the sound server too)', 100);
  assert.equal(fs.existsSync(dir), false, 'its directory removed');
  await page.close();
});

h.test('the controller\'s microphone comes out of "oriel microphone" on the desktop; a viewer\'s forged answer sends nothing', async () => {
  const mic = await startSoundServer(h);
  const wav = toneFile(mic.dir, 1000);
  const agent = await h.startAgent({ display, env: { PULSE_SERVER: mic.address } });
  const sources = mic.pactl('list', 'short', 'sources').stdout;
  assert.match(sources, /oriel_microphone/, `the virtual source exists: ${sources}`);
  const before = mic.pactl('get-default-source').stdout.trim();
  assert.notEqual(before, 'oriel_microphone', 'not the default while the microphone is off');
  const micBrowser = await h.launchBrowser({
    args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${wav}`],
  });
  // A viewer on the same agent whose page rewrites its answer to send audio.
  const viewer = await micBrowser.newPage();
  await viewer.addInitScript(() => {
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
      if (typeof data === 'string' && data.includes('"answer"')) {
        const msg = JSON.parse(data);
        msg.sdp = msg.sdp.replace(/(m=audio[\s\S]*?)a=recvonly/, '$1a=sendrecv');
        data = JSON.stringify(msg);
      }
      return send.call(this, data);
    };
  });
  await viewer.goto(agent.viewerUrl());
  await waitDecoding(viewer, 20000);
  assert.equal((await status(viewer)).microphone.available, false, 'no microphone for a viewer');
  assert.equal(await viewer.isVisible('#btn-mic'), false);
  await waitFor(async () => Agent.metricSamples(await agent.metrics(), 'oriel_audio_refused_total')[0]?.value >= 1,
    5000, 'the forged answer refused and counted');

  const page = await h.openClient(micBrowser, agent, agent.controllerUrl);
  await waitDecoding(page, 20000);
  await waitFor(async () => (await status(page)).microphone.available, 5000, 'the controller offered a microphone');
  const silent = recordDefaultSource(mic.address);
  assert.ok(silent.ratio(1000) < 10, `nothing from the microphone before it is on (ratio ${silent.ratio(1000)})`);
  await page.click('#btn-mic');
  await waitFor(async () => (await status(page)).microphone.on, 5000, 'the microphone on');
  await waitFor(() => mic.pactl('get-default-source').stdout.trim() === 'oriel_microphone', 5000, '"oriel microphone" the default source');
  let heard;
  await waitFor(() => {
    heard = recordDefaultSource(mic.address);
    return heard.rms > 200 && heard.ratio(1000) > 100;
  }, 15000, 'the desktop recording the 1000 Hz tone', 0).catch((e) => {
    e.message += ` (rms ${heard?.rms}, ratio ${heard?.ratio(1000)})`;
    throw e;
  });
  await page.click('#btn-mic');
  await waitFor(async () => !(await status(page)).microphone.on, 5000, 'the microphone off');
  await waitFor(() => mic.pactl('get-default-source').stdout.trim() === before, 5000, 'the default source given back when the page switches the microphone off');
  await page.click('#btn-mic');
  await waitFor(() => mic.pactl('get-default-source').stdout.trim() === 'oriel_microphone', 5000, '"oriel microphone" the default again when it is switched on again');
  await page.close();
  await waitFor(() => mic.pactl('get-default-source').stdout.trim() === before, 5000, 'the default source given back when the controller leaves');
  await viewer.close();
  await h.kill(agent.rec);
  await waitFor(() => !/oriel_microphone/.test(mic.pactl('list', 'short', 'sources').stdout), 5000, 'the virtual source removed with oriel');
});

h.test('a player sends no microphone unless the agent runs with --player-microphones; with it, the player\'s reaches "oriel microphone"', async () => {
  const mic = await startSoundServer(h);
  const wav = toneFile(mic.dir, 1000);
  const micBrowser = await h.launchBrowser({
    args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-audio-capture=${wav}`],
  });
  const plain = await h.startAgent({ display, env: { PULSE_SERVER: mic.address } });
  const refused = await h.openClient(micBrowser, plain, plain.createLink({ role: 'player', slot: 2 }).url);
  await waitDecoding(refused, 20000);
  assert.equal((await status(refused)).microphone.available, false, 'no microphone for a player by default');
  assert.equal(await refused.isVisible('#btn-mic'), false);
  await refused.close();
  await h.kill(plain.rec);

  const agent = await h.startAgent({ display, env: { PULSE_SERVER: mic.address }, args: ['--player-microphones'] });
  const page = await h.openClient(micBrowser, agent, agent.createLink({ role: 'player', slot: 2 }).url);
  await waitDecoding(page, 20000);
  await waitFor(async () => (await status(page)).microphone.available, 5000, 'the player offered a microphone');
  const before = mic.pactl('get-default-source').stdout.trim();
  await page.click('#btn-mic');
  await waitFor(() => mic.pactl('get-default-source').stdout.trim() === 'oriel_microphone', 5000, '"oriel microphone" the default source');
  let heard;
  await waitFor(() => {
    heard = recordDefaultSource(mic.address);
    return heard.rms > 200 && heard.ratio(1000) > 100;
  }, 15000, 'the desktop recording the player\'s 1000 Hz tone', 0).catch((e) => {
    e.message += ` (rms ${heard?.rms}, ratio ${heard?.ratio(1000)})`;
    throw e;
  });
  await page.close();
  await waitFor(() => mic.pactl('get-default-source').stdout.trim() === before, 5000, 'the default source given back when the player leaves');
  await h.kill(agent.rec);
});

h.test('through a link losing 5 % of the packets the tone is still heard at its frequency (Opus in-band FEC, Chromium\'s concealment)', async () => {
  const agent = await h.startAgent({ display, env: { PULSE_SERVER: sound.address } });
  const link = new ImpairedLink({ loss: 0.05, delayMs: 20 });
  const page = await browser.newPage();
  // Keeps the page's RTCPeerConnection within reach for its audio stats.
  await keepPeerConnections(page);
  await link.attach(page);
  const tone = playTone(h, sound.address, 880);
  try {
    await page.goto(agent.viewerUrl(), { waitUntil: 'load', timeout: 20000 });
    await waitDecoding(page, 20000);
    const audioStats = () => page.evaluate(async () => {
      const pc = window.__pcs[window.__pcs.length - 1];
      for (const s of (await pc.getStats()).values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') {
          return { received: s.packetsReceived, lost: s.packetsLost, concealed: s.concealedSamples, samples: s.totalSamplesReceived };
        }
      }
      return null;
    });
    // The audio's inbound stats may come a moment after the first video frame.
    const before = await waitFor(audioStats, 10000, 'the page\'s audio stats');
    const heard = await hears(page, 880, 'the tone through the lossy link');
    await sleep(3000);
    const after = await audioStats();
    const lost = after.lost - before.lost;
    assert.ok(lost > 0, `the page's sound lost packets on the way (${JSON.stringify({ before, after })})`);
    assert.ok(heard.db > -70, `heard loud enough (${heard.db} dB)`);
    const concealed = (after.concealed - before.concealed) / Math.max(1, after.samples - before.samples);
    console.log(`5 % loss: audio packets lost ${lost} of ${after.received - before.received + lost}, samples concealed ${(100 * concealed).toFixed(1)} %, relay dropped ${link.stats.lost}`);
  } finally {
    await h.kill(tone);
    await page.close().catch(() => {});
    link.close();
    await h.kill(agent.rec);
  }
});
