#!/usr/bin/env node
// oriel benchmark part `viewers`: what each added viewer costs the agent, up
// to 32 viewers, and whether every viewer still gets every frame.
//
//   cd bench && node viewers.mjs      (or `make bench-viewers`)
//
// What it does, unattended (about 4 minutes on a 2-core machine):
//   1. Xvfb with full-screen moving content (scrolling SMPTE bars + clock,
//      BENCH_SCENE=bars), the agent on it at 720p30, default bitrate.
//   2. Viewers: for n >= 1, one is a real Chromium page (the web client) and
//      n-1 are lightweight receivers (examples/bench_receiver: webrtcbin into
//      fakesink, no decoding, all in one process), all on one viewer link.
//   3. For n = 0, 1, 2, 4, 8, 16, 32: after settling, over a window: agent CPU
//      (utime+stime from /proc/PID/stat, % of one core), RSS and threads
//      (sampled every second, medians), open fds; frames each viewer received
//      (receivers: whole frames, by RTP marker bit and sequence numbers; Chromium: framesReceived
//      from getStats, framesDecoded too) against the frames the agent encoded over the same
//      window (oriel_frames_encoded_total); packets dropped by the agent's
//      per-client queues (oriel_client_dropped_packets_total).
//   4. Marginal cost per added viewer: least-squares slope of CPU, RSS and
//      threads against n over n >= 1, and step by step.
//   5. The receiver process's own CPU and the Chromium CPU are recorded for
//      context only (they are not the agent's cost).
//
// Knobs (environment): ORIEL_BIN, BENCH_RECEIVER (bench_receiver binary;
// default target/release/examples/bench_receiver), CHROMIUM,
// BENCH_VIEWERS ("0,1,2,4,8,16,32"), BENCH_VIEWER_ROUNDS (2: up, then down;
// medians per count; 1 = up only), BENCH_WINDOW_MS (10000), BENCH_SETTLE_MS (3000),
// BENCH_FRAME_SLACK (2: frames a viewer may miss over a window and still
// count as "got every frame", on top of the frames encoded while the
// counters are read, since the snapshots are not exactly simultaneous),
// BENCH_SCENE (bars|ball), BENCH_NO_MARKDOWN=1 (results to the temp dir,
// BENCHMARKS.md untouched), BENCH_TIMEOUT_MS (540000), BENCH_AGENT_ARGS.

import fs from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import {
  CFG, agentInfo, children, chromiumPids, closeClient, envNum, fmt, launchBrowser, log, machineInfo, median, openClient,
  pidsCpuSec, procCpuSec, procStatus, round1, rtcStats, sleep, startAgent, startDisplay, status, sysCpu, waitClients,
  waitFor, waitPresented,
} from './lib/harness.mjs';
import { isMain, noteAgentWarnings, readingAndOddities, runPart, saveAgentLog } from './lib/run.mjs';
import { Receivers, receiverErrorsNote } from './lib/receiver.mjs';
import { breakdownTable, memoryBreakdown } from './lib/memory.mjs';

const VIEWERS = (process.env.BENCH_VIEWERS || '0,1,2,4,8,16,32').split(',').map(Number);
const ROUNDS = envNum('BENCH_VIEWER_ROUNDS', 2);
const FRAME_SLACK = envNum('BENCH_FRAME_SLACK', 2);

// ------------------------------------------------------------ helpers

export function fdCount(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Least-squares slope and intercept of ys against xs. */
export function linearFit(xs, ys) {
  const pts = xs.map((x, i) => [x, ys[i]]).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (pts.length < 2) return null;
  const n = pts.length;
  const mx = pts.reduce((a, [x]) => a + x, 0) / n;
  const my = pts.reduce((a, [, y]) => a + y, 0) / n;
  const sxx = pts.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  if (!sxx) return null;
  const slope = pts.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx;
  const intercept = my - slope * mx;
  const ssTot = pts.reduce((a, [, y]) => a + (y - my) ** 2, 0);
  const ssRes = pts.reduce((a, [x, y]) => a + (y - (intercept + slope * x)) ** 2, 0);
  return { slope, intercept, r2: ssTot ? 1 - ssRes / ssTot : null, n };
}

/** Sum of a labelled metric family, per label set, from Agent.metrics() output. */
function family(m, name) {
  const out = {};
  for (const [k, v] of Object.entries(m)) {
    if (k === name || k.startsWith(`${name}{`)) out[k] = v;
  }
  return out;
}
const peerOf = (key) => Number((key.match(/peer="(\d+)"/) || [])[1]);

// -------------------------------------------------------- measurement

/** One window with `n` viewers: `page` (Chromium, or null) + rx.alive receivers. */
async function measure(agent, rx, page, n, label) {
  if (n === 0) {
    await waitFor(async () => (await agent.healthz()).pipeline === 'stopped', 20000, 'idle stop (pipeline stopped)', 200);
  } else {
    await waitClients(agent, n, 30000);
  }
  await sleep(CFG.settleMs);
  if (!agent.alive) throw new Error('the agent died');
  const chrPids = chromiumPids();
  const helperPids = children.filter((r) => !['oriel', 'bench_receiver'].includes(r.name) && r.exitCode === undefined).map((r) => r.child.pid);

  // The agent's counters and the viewers' asked for at the same moment; how
  // long the snapshot took bounds how far apart they can be.
  const snap = async () => {
    const t = performance.now();
    const [m, s, rtc] = await Promise.all([agent.metrics(), rx.stats(), page ? rtcStats(page) : null]);
    return { m, s, rtc, t, ms: performance.now() - t };
  };
  const a = await snap();
  const t0 = performance.now();
  const cpu0 = procCpuSec(agent.pid);
  const rx0 = rx.cpuSec();
  const sys0 = sysCpu();
  const chr0 = pidsCpuSec(chrPids);
  const hlp0 = pidsCpuSec(helperPids);
  const samples = [];
  const end = t0 + CFG.windowMs;
  while (performance.now() < end - 5) {
    await sleep(Math.min(1000, Math.max(0, end - performance.now())));
    samples.push({ ...procStatus(agent.pid), fds: fdCount(agent.pid), rx: rx.status() });
  }
  const cpu1 = procCpuSec(agent.pid);
  // Read after the CPU window closes: walking smaps costs the agent kernel time.
  const memory = memoryBreakdown(agent.pid);
  const rx1 = rx.cpuSec();
  const sys1 = sysCpu();
  const chr1 = pidsCpuSec(chrPids);
  const hlp1 = pidsCpuSec(helperPids);
  const t1 = performance.now();
  const b = await snap();
  const h1 = await agent.healthz();
  const md = (k) => (b.m[k] ?? 0) - (a.m[k] ?? 0);
  const dt = (t1 - t0) / 1000;

  const encoded = md('oriel_frames_encoded_total');
  // Frames that may fall on the wrong side of a snapshot: the fixed slack
  // plus the frames the encoder makes while the two snapshots are taken.
  const slack = FRAME_SLACK + Math.ceil(((a.ms + b.ms) / 1000) * CFG.framerate);
  const viewers = [];
  if (page) {
    const pageStatus = await status(page);
    const both = a.rtc && b.rtc;
    // Received (assembled by the jitter buffer) is what the agent delivered;
    // decoded also depends on the browser getting CPU time.
    const received = both && b.rtc.framesReceived !== null && a.rtc.framesReceived !== null ? b.rtc.framesReceived - a.rtc.framesReceived : null;
    const decoded = both ? b.rtc.framesDecoded - a.rtc.framesDecoded : null;
    viewers.push({
      kind: 'chromium', id: 'page', peerId: pageStatus.peerId, frames: received ?? decoded, framesDecoded: decoded,
      framesCountedAs: received !== null ? 'framesReceived' : 'framesDecoded',
      bytes: a.rtc && b.rtc ? b.rtc.bytesReceived - a.rtc.bytesReceived : null,
      packets: a.rtc && b.rtc ? b.rtc.packetsReceived - a.rtc.packetsReceived : null,
      packetsLost: a.rtc && b.rtc ? b.rtc.packetsLost - a.rtc.packetsLost : null,
      state: pageStatus.pcState,
    });
  }
  for (const id of rx.alive) {
    const x = a.s.viewers.get(id);
    const y = b.s.viewers.get(id);
    viewers.push({
      kind: 'receiver', id, peerId: rx.viewers.get(id)?.peerId ?? null,
      frames: x && y ? y.frames - x.frames : null,
      incompleteFrames: x && y ? (y.incomplete ?? 0) - (x.incomplete ?? 0) : null,
      packetsLost: x && y ? (y.lost ?? 0) - (x.lost ?? 0) : null,
      bytes: x && y ? y.bytes - x.bytes : null,
      packets: x && y ? y.packets - x.packets : null,
      state: y?.state ?? 'missing',
    });
  }
  // The agent's own per-client counters: what it handed each client, and
  // what each client's queue had to drop.
  const sent0 = family(a.m, 'oriel_client_sent_packets_total');
  const sent1 = family(b.m, 'oriel_client_sent_packets_total');
  const drop0 = family(a.m, 'oriel_client_dropped_packets_total');
  const drop1 = family(b.m, 'oriel_client_dropped_packets_total');
  const byPeer = {};
  for (const [k, v] of Object.entries(sent1)) byPeer[peerOf(k)] = { sentPackets: v - (sent0[k] ?? 0) };
  for (const [k, v] of Object.entries(drop1)) (byPeer[peerOf(k)] ??= {}).droppedPackets = v - (drop0[k] ?? 0);
  for (const v of viewers) {
    const p = byPeer[v.peerId];
    v.agentSentPackets = p?.sentPackets ?? null;
    v.agentDroppedPackets = p?.droppedPackets ?? null;
    v.deficit = v.frames === null ? null : encoded - v.frames;
    // Packets the agent handed this viewer's webrtcbin but the viewer did not
    // count: loss on the way (UDP, the receiver's jitterbuffer), +- skew.
    v.packetDeficit = v.agentSentPackets !== null && v.packets !== null ? v.agentSentPackets - v.packets : null;
    v.gotEveryFrame = v.frames !== null && v.deficit <= slack;
  }
  const frames = viewers.map((v) => v.frames).filter((x) => x !== null);
  const r = {
    label,
    viewers: n,
    receivers: rx.alive.length,
    chromium: page ? 1 : 0,
    windowSec: round1(dt),
    cpuPct: Math.round(((cpu1 - cpu0) / dt) * 1000) / 10,
    rssMiB: round1(median(samples.map((s) => s.rssKb)) / 1024),
    memory,
    threads: median(samples.map((s) => s.threads)),
    fds: median(samples.map((s) => s.fds)),
    framesEncoded: encoded,
    frameSlack: slack,
    snapshotMs: [Math.round(a.ms), Math.round(b.ms)],
    framesCaptured: md('oriel_frames_captured_total'),
    encodedFps: round1(encoded / ((b.t - a.t) / 1000)),
    minFrames: frames.length ? Math.min(...frames) : null,
    medianFrames: median(frames),
    maxDeficit: viewers.length ? Math.max(...viewers.map((v) => v.deficit ?? Infinity)) : null,
    everyoneGotEveryFrame: viewers.every((v) => v.gotEveryFrame),
    maxPacketDeficit: viewers.some((v) => v.packetDeficit !== null) ? Math.max(...viewers.map((v) => v.packetDeficit ?? -Infinity)) : null,
    agentSentPacketsMedian: median(viewers.map((v) => v.agentSentPackets)),
    viewersMissingFrames: viewers.filter((v) => !v.gotEveryFrame).length,
    agentDroppedPackets: Object.values(byPeer).reduce((s, p) => s + (p.droppedPackets ?? 0), 0),
    keyframesForced: md('oriel_keyframes_forced_total'),
    receiverCpuPct: round1(((rx1 - rx0) / dt) * 100),
    receiverRssMiB: round1(median(samples.map((s) => s.rx.rssKb)) / 1024),
    receiverThreads: median(samples.map((s) => s.rx.threads)),
    chromiumCpuPct: round1(((chr1 - chr0) / dt) * 100),
    xvfbAndMoverCpuPct: round1(((hlp1 - hlp0) / dt) * 100),
    machineBusyPct: round1(((sys1.busy - sys0.busy) / (sys1.total - sys0.total)) * os.cpus().length * 100),
    pipelineAfter: h1.pipeline,
    healthz: h1,
    perViewer: viewers,
  };
  r.otherLoadPct = round1(Math.max(0, r.machineBusyPct - r.cpuPct - r.receiverCpuPct - r.chromiumCpuPct - r.xvfbAndMoverCpuPct));
  log(`${label}: ${n} viewer(s) cpu ${fmt(r.cpuPct)}% rss ${fmt(r.rssMiB)} MiB threads ${r.threads} fds ${r.fds} ` +
    `encoded ${encoded} frames min/median ${r.minFrames}/${r.medianFrames} every frame: ${r.everyoneGotEveryFrame} ` +
    `dropped pkts ${r.agentDroppedPackets} receiver ${fmt(r.receiverCpuPct)}% chromium ${fmt(r.chromiumCpuPct)}% ` +
    `machine ${fmt(r.machineBusyPct)}% other ${fmt(r.otherLoadPct)}% pipeline ${h1.pipeline}`);
  return r;
}

const joinProblems = [];

async function costByViewers(ctx, agent, rx) {
  let page = null;
  const setCount = async (n) => {
    const wantPage = n >= 1;
    const wantRx = Math.max(0, n - 1);
    if (wantPage && !page) {
      page = await openClient(ctx, agent);
      await waitPresented(page);
    }
    if (rx.alive.length < wantRx) {
      const ids = rx.add(wantRx - rx.alive.length);
      try {
        await rx.waitFirstFrames(ids, 30000);
      } catch (e) {
        // Measured anyway: a viewer without frames shows as missing them.
        log(`going to ${n} viewers: ${e.message}`);
        joinProblems.push(`going to ${n} viewers: ${e.message.slice(0, 300)}`);
      }
    } else if (rx.alive.length > wantRx) {
      await rx.remove(rx.alive.length - wantRx);
    }
    if (!wantPage && page) {
      await closeClient(page);
      page = null;
    }
  };
  // Warm-up: Chromium and one receiver play briefly and leave, so first-run
  // costs are paid and the 0-viewer window is "after idle stop".
  await setCount(2);
  await sleep(1000);
  await setCount(0);
  const runs = [];
  for (let r = 0; r < ROUNDS; r++) {
    const seq = r % 2 === 0 ? VIEWERS : [...VIEWERS].reverse();
    for (const n of seq) {
      await setCount(n);
      runs.push({ round: r + 1, ...(await measure(agent, rx, page, n, `round ${r + 1}`)) });
    }
  }
  await setCount(0);
  const summary = VIEWERS.map((n) => {
    const rs = runs.filter((x) => x.viewers === n);
    const m = (k) => round1(median(rs.map((x) => x[k])));
    return {
      viewers: n,
      runs: rs.length,
      cpuPct: m('cpuPct'),
      cpuPctRuns: rs.map((x) => x.cpuPct),
      rssMiB: m('rssMiB'),
      // The last window's breakdown (the rounds alternate, so it is the settled one).
      memory: rs.length ? rs[rs.length - 1].memory : null,
      threads: median(rs.map((x) => x.threads)),
      fds: median(rs.map((x) => x.fds)),
      framesEncoded: median(rs.map((x) => x.framesEncoded)),
      minFrames: rs.length && n ? Math.min(...rs.map((x) => x.minFrames)) : null,
      medianFrames: n ? median(rs.map((x) => x.medianFrames)) : null,
      chromiumFrames: n ? median(rs.map((x) => x.perViewer.find((v) => v.kind === 'chromium')?.frames)) : null,
      chromiumFramesDecoded: n ? median(rs.map((x) => x.perViewer.find((v) => v.kind === 'chromium')?.framesDecoded)) : null,
      everyoneGotEveryFrame: n ? rs.every((x) => x.everyoneGotEveryFrame) : null,
      maxDeficit: n ? Math.max(...rs.map((x) => x.maxDeficit)) : null,
      agentDroppedPackets: rs.reduce((s, x) => s + x.agentDroppedPackets, 0),
      maxPacketDeficit: n ? Math.max(...rs.map((x) => x.maxPacketDeficit ?? -Infinity)) : null,
      agentSentPacketsMedian: n ? median(rs.map((x) => x.agentSentPacketsMedian)) : null,
      receiverCpuPct: m('receiverCpuPct'),
      receiverRssMiB: m('receiverRssMiB'),
      chromiumCpuPct: m('chromiumCpuPct'),
      machineBusyPct: m('machineBusyPct'),
      otherLoadPct: m('otherLoadPct'),
      pipeline: [...new Set(rs.map((x) => x.pipelineAfter))].join('/'),
    };
  });
  return { runs, summary };
}

// -------------------------------------------------------------- report

export function derive(res) {
  const s = res.cost.summary.filter((x) => x.viewers >= 1);
  const xs = s.map((x) => x.viewers);
  const fit = (k) => {
    const f = linearFit(xs, s.map((x) => x[k]));
    return f ? { slope: Math.round(f.slope * 100) / 100, intercept: round1(f.intercept), r2: f.r2 === null ? null : Math.round(f.r2 * 1000) / 1000 } : null;
  };
  const steps = [];
  const all = res.cost.summary;
  for (let i = 1; i < all.length; i++) {
    const p = all[i - 1];
    const c = all[i];
    const dn = c.viewers - p.viewers;
    if (dn <= 0) continue;
    steps.push({
      from: p.viewers, to: c.viewers,
      cpuPctPerViewer: Math.round(((c.cpuPct - p.cpuPct) / dn) * 100) / 100,
      rssMiBPerViewer: Math.round(((c.rssMiB - p.rssMiB) / dn) * 100) / 100,
      threadsPerViewer: Math.round(((c.threads - p.threads) / dn) * 100) / 100,
    });
  }
  const withViewers = res.cost.runs.filter((r) => r.viewers > 0);
  // Windows where the shared encoder fell clearly below the frame rate: the
  // machine could not keep up, so the agent's CPU there is capped, not its cost.
  const starved = withViewers.filter((r) => r.encodedFps < 0.9 * res.config.framerate);
  const ok = s.filter((x) => !starved.some((r) => r.viewers === x.viewers));
  const fitOk = ok.length >= 2 && ok.length < s.length ? linearFit(ok.map((x) => x.viewers), ok.map((x) => x.cpuPct)) : null;
  return {
    starvedWindows: starved.map((r) => ({ viewers: r.viewers, encodedFps: r.encodedFps, machineBusyPct: r.machineBusyPct, otherLoadPct: r.otherLoadPct })),
    cpuFitUnstarved: fitOk ? { slope: Math.round(fitOk.slope * 100) / 100, r2: fitOk.r2 === null ? null : Math.round(fitOk.r2 * 1000) / 1000, upTo: Math.max(...ok.map((x) => x.viewers)) } : null,
    cpuFit: fit('cpuPct'),
    rssFit: fit('rssMiB'),
    threadsFit: fit('threads'),
    fdsFit: fit('fds'),
    steps,
    everyoneGotEveryFrame: withViewers.length ? withViewers.every((r) => r.everyoneGotEveryFrame) : null,
    windowsMissingFrames: withViewers.filter((r) => !r.everyoneGotEveryFrame).length,
    maxDeficit: withViewers.length ? Math.max(...withViewers.map((r) => r.maxDeficit)) : null,
    maxMachineBusyPct: Math.max(...res.cost.runs.map((r) => r.machineBusyPct)),
    maxOtherLoadPct: Math.max(...res.cost.runs.map((r) => r.otherLoadPct)),
  };
}

/** The smaps breakdowns at 0, 1 and the most viewers, by column label. */
function memoryColumns(res) {
  const s = res.cost.summary.filter((x) => x.memory);
  if (!s.length) return null;
  const pick = [...new Set([s.find((x) => x.viewers === 0), s.find((x) => x.viewers === 1), s[s.length - 1]])].filter(Boolean);
  return Object.fromEntries(pick.map((x) => [`${x.viewers} viewer${x.viewers === 1 ? '' : 's'}`, x.memory]));
}

function whatTheNumbersSay(res) {
  const d = res.derived;
  const by = Object.fromEntries(res.cost.summary.map((s) => [s.viewers, s]));
  const top = res.cost.summary[res.cost.summary.length - 1];
  const cores = res.machine.cores;
  const out = [];
  if (by[0] && by[1]) {
    out.push(`With nobody watching the agent uses ${fmt(by[0].cpuPct)} % of a core (pipeline ${by[0].pipeline}), ${fmt(by[0].rssMiB)} MiB, ${by[0].threads} threads. ` +
      `The first viewer costs ${fmt(by[1].cpuPct - by[0].cpuPct)} points (${fmt(by[1].cpuPct)} % in total): capture, colour conversion and the one x264 encode every viewer shares, plus one branch.`);
  }
  if (d.cpuFit) {
    const perViewer = d.cpuFit.slope;
    const share = by[1] && top && top.cpuPct ? ((top.cpuPct - by[1].cpuPct) / top.cpuPct) * 100 : null;
    out.push(`Each added viewer costs about ${fmt(perViewer, 2)} % of a core (least-squares slope over 1-${top.viewers} viewers, R² ${fmt(d.cpuFit.r2, 2)}), ` +
      `${fmt(d.rssFit?.slope, 2)} MiB and ${fmt(d.threadsFit?.slope, 1)} threads` + (d.fdsFit ? ` and ${fmt(d.fdsFit.slope, 1)} open fds` : '') + '. ' +
      `At ${top.viewers} viewers the agent uses ${fmt(top.cpuPct)} % of a core and ${fmt(top.rssMiB)} MiB; ` +
      (share !== null ? `${fmt(share, 0)} % of that CPU is what the viewers beyond the first added (each its own webrtcbin: SRTP, ICE/DTLS, RTCP, per-client queue); the rest is the shared capture and encode plus one branch.` : ''));
  }
  const steps = d.steps.filter((s) => s.from >= 1);
  if (steps.length) {
    const hi = steps.reduce((a, s) => (s.cpuPctPerViewer > a.cpuPctPerViewer ? s : a));
    const lo = steps.reduce((a, s) => (s.cpuPctPerViewer < a.cpuPctPerViewer ? s : a));
    out.push(`Step by step (from 1 viewer up) the CPU per added viewer ranges from ${fmt(lo.cpuPctPerViewer, 2)} % (${lo.from} → ${lo.to}) to ${fmt(hi.cpuPctPerViewer, 2)} % (${hi.from} → ${hi.to}); ` +
      `single steps on a shared ${cores}-core machine are noisy, the slope is the figure to quote.`);
  }
  const m0 = by[0]?.memory;
  const m1 = by[1]?.memory;
  if (m0 && m1) {
    out.push(`Of the ${fmt(m1.total)} MiB resident with one viewer, ${fmt(m1.binary + m1.libraries + m1.files)} MiB are pages of files the agent maps ` +
      `(the binary ${fmt(m1.binary)}, shared libraries ${fmt(m1.libraries)}), ${fmt(m1.anon)} MiB anonymous memory (${fmt(m1.anonHugePages)} MiB of it in transparent huge pages, ` +
      `which x264's frame buffers get) and ${fmt(m1.shm)} MiB XShm segments; the first viewer adds ${fmt(m1.total - m0.total)} MiB to the idle agent's ${fmt(m0.total)} MiB ` +
      '(the pipeline starts: capture, encoder, one branch).');
  }
  if (d.everyoneGotEveryFrame !== null) {
    const worst = res.cost.runs.filter((r) => r.viewers > 0).reduce((a, r) => (r.maxDeficit > (a?.maxDeficit ?? -Infinity) ? r : a), null);
    if (d.everyoneGotEveryFrame) {
      out.push(`Every viewer, the Chromium page included, got every frame the agent encoded in every window (largest shortfall ${worst.maxDeficit} frame(s) of ${worst.framesEncoded}, within that window's slack of ${worst.frameSlack} for snapshots that are not exactly simultaneous).`);
    } else {
      const v = worst.perViewer.reduce((a, x) => ((x.deficit ?? -Infinity) > (a.deficit ?? -Infinity) ? x : a));
      // Where that viewer's frames went, from the agent's per-client counters.
      const why = `the agent's queue for it dropped ${v.agentDroppedPackets ?? '?'} packet(s) (its branch fell behind), ` +
        `and of the packets the agent handed it ${v.packetDeficit ?? '?'} did not arrive (a packet or two either way is snapshot skew)` +
        (v.kind === 'receiver' ? `; it saw ${v.packetsLost ?? '?'} packets missing by sequence number and ${v.incompleteFrames ?? '?'} incomplete frames` :
          `; the page counted ${v.packetsLost ?? '?'} packet(s) lost, and one lost packet can cost every frame up to the next keyframe`);
      out.push(`Not every viewer got every frame: ${d.windowsMissingFrames} window(s) had a viewer short by more than the window's slack (${worst.frameSlack} frames in the worst). ` +
        `The worst, with ${worst.viewers} viewers: ${v.kind === 'chromium' ? 'the Chromium page' : `receiver viewer ${v.id}`} missed ${v.deficit} of ${worst.framesEncoded} encoded frames; ${why}. ` +
        `Agent queue drops in that window, all viewers: ${worst.agentDroppedPackets} packets; machine busy ${fmt(worst.machineBusyPct)} % of ${cores * 100} %.`);
    }
  }
  if (top && by[1]) {
    out.push(`For context, the one bench_receiver process holding ${top.viewers - 1} viewers used ${fmt(top.receiverCpuPct)} % of a core, and the Chromium page ${fmt(top.chromiumCpuPct)} %; ` +
      `they share the ${cores} cores with the agent (machine busy ${fmt(top.machineBusyPct)} % of ${cores * 100} % at ${top.viewers} viewers).`);
  }
  if (d.starvedWindows?.length) {
    out.push(`**The machine could not keep up** in ${d.starvedWindows.length} window(s): the shared encoder delivered only ` +
      `${d.starvedWindows.map((w) => `${fmt(w.encodedFps)} fps with ${w.viewers} viewers (machine busy ${fmt(w.machineBusyPct)} %, other load ${fmt(w.otherLoadPct)} %)`).join('; ')} ` +
      `instead of ${res.config.framerate}. There the agent's CPU is capped by what it was given, not what it needed, and lost frames follow; ` +
      (d.cpuFitUnstarved ? `over the windows that kept the frame rate (1-${d.cpuFitUnstarved.upTo} viewers) the slope is ${fmt(d.cpuFitUnstarved.slope, 2)} % per viewer (R² ${fmt(d.cpuFitUnstarved.r2, 2)}).` : 'treat the slope with care.'));
  }
  if (d.maxOtherLoadPct > 20) {
    out.push(`Other load on the machine reached ${fmt(d.maxOtherLoadPct)} % (of ${cores * 100} %) in some window; the agent's CPU is its own time, but contention can inflate it.`);
  }
  return out.map((x) => `- ${x}`).join('\n');
}

/** This part's section of BENCHMARKS.md. */
export function render(res, jsonRel) {
  const m = res.machine;
  const a = res.agent;
  const d = res.derived;
  const L = [];
  L.push('## Cost per viewer (0-32 viewers: one Chromium + lightweight receivers)');
  L.push('');
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}).`);
  L.push('');
  L.push(`Agent \`oriel ${res.agentArgs.join(' ')}\` (${a.build} build), encoder ${res.healthz?.encoder ?? '?'}, ` +
    `${res.config.width}x${res.config.height} @ ${res.config.framerate} fps, ${res.config.bitrateKbps} kbit/s; screen: Xvfb showing \`${res.display.pipeline}\` ` +
    `(${res.display.covers ? 'covers the screen' : '**does not cover the screen**'}). Load average at start: ${m.loadAvgAtStart.join(' ')}.`);
  L.push('');
  if (a.build !== 'release') {
    L.push(`**Note:** this run used a **${a.build}** build of the agent; CPU figures of a release build are lower.`);
    L.push('');
  }
  L.push(`For n ≥ 1 viewers, one is a real Chromium page (the web client, decoding) and n-1 are \`bench_receiver\` viewers ` +
    `(\`examples/bench_receiver/\`: one process, one GStreamer webrtcbin per viewer on its own WebSocket, RTP into a fakesink, no decoding; ` +
    `a frame counts when its last packet (RTP marker bit) arrives with no sequence gap since the previous frame, i.e. only whole frames). Agent process only: CPU = utime+stime from \`/proc/PID/stat\` over a ${res.config.windowMs / 1000} s window ` +
    `after ${res.config.settleMs / 1000} s of settling, in % of one core; RSS, threads and open fds sampled every second (medians). ` +
    `"frames" = frames each viewer received in the window (Chromium: \`framesReceived\` from getStats; its \`framesDecoded\` is shown too), against the agent's \`oriel_frames_encoded_total\` over the same window; ` +
    `"every frame" allows ${res.config.frameSlack} frames of slack, plus the frames encoded while the agent's and the viewers' counters are read (asked for at once; a few ms unless the machine is saturated). ` +
    `"dropped pkts" = \`oriel_client_dropped_packets_total\` (the agent's per-client queues); "packets short" = the agent's \`oriel_client_sent_packets_total\` for that viewer minus the packets the viewer received (worst viewer; a few either way is snapshot skew). ` +
    `${res.config.rounds > 1 ? `${res.config.rounds} rounds (up, then down), medians. ` : 'One round, counts going up. '}` +
    `The receiver process and Chromium are shown for context only; they are not in the agent's figures.`);
  L.push('');
  L.push('| viewers | agent CPU % | RSS MiB | threads | fds | frames encoded | frames per viewer min / median | Chromium frames received / decoded | every viewer every frame | dropped pkts | most packets short (of sent) | receiver CPU % | Chromium CPU % | machine busy % (of ' + m.cores * 100 + ') | pipeline |');
  L.push('|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---|---:|---:|---:|---|');
  for (const s of res.cost.summary) {
    L.push(`| ${s.viewers} | **${fmt(s.cpuPct)}** | ${fmt(s.rssMiB)} | ${s.threads} | ${s.fds ?? 'n/a'} | ${s.framesEncoded} | ` +
      `${s.viewers ? `${s.minFrames} / ${s.medianFrames}` : '-'} | ${s.viewers ? `${s.chromiumFrames ?? 'n/a'} / ${s.chromiumFramesDecoded ?? 'n/a'}` : '-'} | ` +
      `${s.viewers ? (s.everyoneGotEveryFrame ? 'yes' : `**no** (worst -${s.maxDeficit})`) : '-'} | ${s.agentDroppedPackets} | ` +
      `${s.viewers && Number.isFinite(s.maxPacketDeficit) ? `${s.maxPacketDeficit} (of ${s.agentSentPacketsMedian})` : '-'} | ` +
      `${fmt(s.receiverCpuPct)} | ${fmt(s.chromiumCpuPct)} | ${fmt(s.machineBusyPct)} | ${s.pipeline} |`);
  }
  L.push('');
  L.push('Marginal cost per added viewer:');
  L.push('');
  L.push('| | CPU % of a core | RSS MiB | threads | fds |');
  L.push('|---|---:|---:|---:|---:|');
  const fr = (f, dg = 2) => (f ? `**${fmt(f.slope, dg)}** (R² ${fmt(f.r2, 2)})` : 'n/a');
  L.push(`| least-squares slope, n ≥ 1 | ${fr(d.cpuFit)} | ${fr(d.rssFit)} | ${fr(d.threadsFit, 1)} | ${fr(d.fdsFit, 1)} |`);
  if (d.cpuFitUnstarved) L.push(`| slope over the windows that kept ${res.config.framerate} fps (1-${d.cpuFitUnstarved.upTo}) | ${fr(d.cpuFitUnstarved)} | | | |`);
  for (const s of d.steps) {
    L.push(`| step ${s.from} → ${s.to} | ${fmt(s.cpuPctPerViewer, 2)} | ${fmt(s.rssMiBPerViewer, 2)} | ${fmt(s.threadsPerViewer, 1)} | |`);
  }
  L.push('');
  const mem = memoryColumns(res);
  if (mem) {
    L.push('Where the resident memory goes (`/proc/PID/smaps`, Rss summed by mapping, read at the end of each count\'s last window; exact, where the table\'s RSS is the kernel\'s running VmRSS counter, which proc(5) calls inexact):');
    L.push('');
    L.push(...breakdownTable(mem));
    L.push('');
  }
  L.push('<details><summary>Every window</summary>');
  L.push('');
  L.push('| # | round | viewers | agent CPU % | RSS MiB | threads | encoded (fps) | frames per viewer (Chromium first) | dropped pkts | most packets short | keyframes forced | receiver CPU % / RSS MiB / threads | other load % |');
  L.push('|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---|---:|');
  res.cost.runs.forEach((r, i) => {
    L.push(`| ${i + 1} | ${r.round} | ${r.viewers} | ${fmt(r.cpuPct)} | ${fmt(r.rssMiB)} | ${r.threads} | ${r.framesEncoded} (${fmt(r.encodedFps)}) | ` +
      `${r.perViewer.map((v) => (v.gotEveryFrame ? v.frames : `**${v.frames}**`)).join(', ') || '-'} | ${r.agentDroppedPackets} | ${r.maxPacketDeficit ?? '-'} | ${r.keyframesForced} | ` +
      `${fmt(r.receiverCpuPct)} / ${fmt(r.receiverRssMiB)} / ${r.receiverThreads} | ${fmt(r.otherLoadPct)} |`);
  });
  L.push('');
  L.push('</details>');
  L.push('');
  L.push(...readingAndOddities(whatTheNumbersSay(res), res.notes));
  return L.join('\n');
}

/** One-line findings for the top of BENCHMARKS.md. */
export function headline(res) {
  const d = res.derived;
  const top = res.cost.summary[res.cost.summary.length - 1];
  const out = [];
  if (d.cpuFit) {
    out.push(`Each added viewer costs the agent ${fmt(d.cpuFit.slope, 2)} % of a core, ${fmt(d.rssFit?.slope, 2)} MiB and ${fmt(d.threadsFit?.slope, 1)} threads; ` +
      `${top.viewers} viewers: ${fmt(top.cpuPct)} % of a core in total (part \`viewers\`).`);
  }
  if (d.starvedWindows?.length) {
    const counts = [...new Set(d.starvedWindows.map((w) => w.viewers))].sort((a, b) => a - b);
    out.push(`Viewers: the machine could not keep ${res.config.framerate} fps in ${d.starvedWindows.length} window(s) (at ${counts.join(', ')} viewers); figures there are capped, not costs (part \`viewers\`).`);
  }
  if (d.everyoneGotEveryFrame !== null) {
    out.push(d.everyoneGotEveryFrame
      ? `Up to ${top.viewers} viewers (one Chromium) every viewer got every encoded frame (part \`viewers\`).`
      : `Not every viewer got every frame: ${d.windowsMissingFrames} window(s) with a shortfall, worst ${d.maxDeficit} frames (part \`viewers\`).`);
  }
  return out;
}

function oddities(res, agentLog, rx) {
  const notes = [];
  if (res.agent.build !== 'release') notes.push(`agent is a ${res.agent.build} build`);
  if (!res.display.covers) notes.push('the moving window does not cover the screen');
  for (const r of res.cost.runs) {
    if (r.viewers === 0 && r.pipelineAfter !== 'stopped') notes.push(`0-viewer window ${r.label}: pipeline ${r.pipelineAfter}`);
    if (r.viewers > 0 && r.pipelineAfter !== 'playing') notes.push(`${r.viewers}-viewer window ${r.label}: pipeline ${r.pipelineAfter}`);
    const bad = r.perViewer.filter((v) => v.state !== 'connected');
    if (bad.length) notes.push(`${r.viewers}-viewer window: ${bad.length} viewer(s) not connected at the end (${bad.map((v) => `${v.id}:${v.state}`).join(', ')})`);
  }
  notes.push(...joinProblems);
  const rxNote = receiverErrorsNote(rx);
  if (rxNote) notes.push(rxNote);
  noteAgentWarnings(res, notes, agentLog);
  return notes;
}

function summaryText(res) {
  const L = [''];
  L.push(`oriel bench viewers ${res.startedAt} (${res.agent.build} build, ${res.healthz?.encoder ?? '?'})`);
  L.push('viewers  agentCPU%  RSS MiB  threads  fds  encoded  frames min/med  every frame  rxCPU%  chromium%  machine%');
  for (const s of res.cost.summary) {
    L.push(`${String(s.viewers).padStart(7)}  ${fmt(s.cpuPct).padStart(9)}  ${fmt(s.rssMiB).padStart(7)}  ${String(s.threads).padStart(7)}  ${String(s.fds).padStart(3)}  ` +
      `${String(s.framesEncoded).padStart(7)}  ${(s.viewers ? `${s.minFrames}/${s.medianFrames}` : '-').padStart(14)}  ${String(s.viewers ? s.everyoneGotEveryFrame : '-').padStart(11)}  ` +
      `${fmt(s.receiverCpuPct).padStart(6)}  ${fmt(s.chromiumCpuPct).padStart(9)}  ${fmt(s.machineBusyPct).padStart(8)}`);
  }
  const d = res.derived;
  L.push(`marginal per viewer (slope, n>=1): ${fmt(d.cpuFit?.slope, 2)} % CPU, ${fmt(d.rssFit?.slope, 2)} MiB, ${fmt(d.threadsFit?.slope, 1)} threads`);
  for (const n of res.notes ?? []) L.push(`note: ${n}`);
  return L.join('\n');
}

// ---------------------------------------------------------------- main

async function main(res) {
  res.command = 'cd bench && node viewers.mjs';
  res.config = {
    width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps,
    windowMs: CFG.windowMs, settleMs: CFG.settleMs, viewers: VIEWERS, rounds: ROUNDS, frameSlack: FRAME_SLACK, scene: CFG.scene,
  };
  res.machine = machineInfo();
  res.agent = agentInfo();
  log(`agent ${res.agent.bin} (${res.agent.build}), ${res.machine.cores} cores, load ${res.machine.loadAvgAtStart.join(' ')}`);
  res.display = await startDisplay();
  const agent = await startAgent(res.display.display);
  res.agentArgs = agent.args();
  res.healthz = await agent.healthz();
  log(`agent pid ${agent.pid} on ${agent.url}`);
  const ctx = await launchBrowser();
  const rx = await Receivers.start(agent.viewerUrl, { name: 'bench-viewers' });
  res.receiver = { bin: rx.bin, pid: rx.pid };
  res.cost = await costByViewers(ctx, agent, rx);
  res.receiverExit = await rx.quit();
  res.metricsAtEnd = await agent.metrics();
  if (!agent.alive) throw new Error('the agent died during the run');
  const agentLog = [...agent.rec.log];
  res.agentLogFile = saveAgentLog(agent.rec.log, res.startedAt, 'viewers');
  res.derived = derive(res);
  res.notes = oddities(res, agentLog, rx);
  if (res.receiverExit !== 0) res.notes.push(`bench_receiver exited with ${res.receiverExit}`);
  return summaryText(res);
}

if (isMain(import.meta.url)) runPart('viewers', main);
