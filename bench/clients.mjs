#!/usr/bin/env node
// oriel benchmark part `clients`: what the agent costs per connected
// Chromium page (0-4 real browsers), and how long a browser waits for its
// first frame, warm and cold.
//
//   cd bench && node clients.mjs      (or `make bench-clients`)
//
// What it does, unattended (about 2.5 minutes on a 2-core machine):
//   1. Xvfb on a free display with a full-screen moving GStreamer test video:
//      scrolling SMPTE bars + a running clock (BENCH_SCENE=bars, the default),
//      which keeps x264 at its 4000 kbit/s. `pattern=ball` (BENCH_SCENE=ball)
//      also fills the screen with its window, but only a small ball moves on
//      black: the stream then needs ~0.2 Mbit/s and understates every cost.
//   2. The agent on it (`--capture x11`, 720p30, default bitrate).
//   3. Agent CPU (% of one core, /proc/PID/stat utime+stime over a window),
//      RSS and threads with 0, 1, 2, 4 Chromium clients, the sequence run up
//      then down (0 1 2 4 4 2 1 0), medians reported. Each client's decoded
//      frame rate over the same window is recorded.
//   4. Time to first frame (WebSocket open -> first presented frame): warm
//      joins while another client plays, and cold joins after idle stop.
//   5. Raw results to bench/results/<date>-clients.json, BENCHMARKS.md
//      regenerated (bench/report.mjs), a summary on stdout.
//
// Every process it starts gets its own process group and is killed (group and
// all) on the way out, also on error, SIGINT/SIGTERM or the global watchdog.
//
// Knobs (environment): ORIEL_BIN, CHROMIUM, BENCH_WINDOW_MS (10000),
// BENCH_SETTLE_MS (3000), BENCH_ROUNDS (2), BENCH_CLIENTS ("0,1,2,4"),
// BENCH_WARM_JOINS (20), BENCH_COLD_JOINS (3), BENCH_SCENE (bars|ball),
// BENCH_NO_MARKDOWN=1 (experiments: leave BENCHMARKS.md and results/ alone, raw JSON
// goes to the temp dir), BENCH_TIMEOUT_MS (540000),
// BENCH_AGENT_ARGS (extra agent arguments, for experiments).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  CFG, children, chromiumPids, fmt, launchBrowser, log, machineInfo, agentInfo, median, pidsCpuSec,
  procCpuSec, procStatus, quantile, round1, rtcStats, sleep, startAgent, startDisplay, status, sysCpu, waitClients,
  waitFor, waitPresented, openClient, closeClient,
} from './lib/harness.mjs';
import { isMain, noteAgentWarnings, readingAndOddities, runPart, saveAgentLog } from './lib/run.mjs';

// --------------------------------------------------------- measurements

/** One measurement window with `pages` connected. */
async function measure(agent, pages, label) {
  const n = pages.length;
  if (n === 0) {
    await waitFor(async () => (await agent.healthz()).pipeline === 'stopped', 20000, 'idle stop (pipeline stopped)', 200);
  } else {
    await waitClients(agent, n);
  }
  await sleep(CFG.settleMs);
  if (!agent.alive) throw new Error('the agent died');
  const h0 = await agent.healthz();
  const m0 = await agent.metrics();
  const chrPids = chromiumPids();
  const helperPids = children.filter((r) => r.name !== 'oriel' && r.exitCode === undefined).map((r) => r.child.pid);

  const before = await Promise.all(pages.map(async (p) => ({ s: await status(p), rtc: await rtcStats(p), t: performance.now() })));
  const t0 = performance.now();
  const cpu0 = procCpuSec(agent.pid);
  const sys0 = sysCpu();
  const chr0 = pidsCpuSec(chrPids);
  const hlp0 = pidsCpuSec(helperPids);

  const samples = [];
  const end = t0 + CFG.windowMs;
  while (performance.now() < end - 5) {
    await sleep(Math.min(1000, Math.max(0, end - performance.now())));
    samples.push(procStatus(agent.pid));
  }
  const cpu1 = procCpuSec(agent.pid);
  const sys1 = sysCpu();
  const chr1 = pidsCpuSec(chrPids);
  const hlp1 = pidsCpuSec(helperPids);
  const t1 = performance.now();
  const after = await Promise.all(pages.map(async (p) => ({ s: await status(p), rtc: await rtcStats(p), t: performance.now() })));
  const h1 = await agent.healthz();
  const m1 = await agent.metrics();
  const md = (k) => (m1[k] ?? 0) - (m0[k] ?? 0);

  const dt = (t1 - t0) / 1000;
  const clients = pages.map((_, i) => {
    const a = before[i];
    const b = after[i];
    const sec = (b.t - a.t) / 1000;
    const rd = (k) => (a.rtc && b.rtc ? b.rtc[k] - a.rtc[k] : null);
    return {
      // From getStats() directly, so exact over the window (not the page's 250 ms poll).
      rtcDecodedFps: a.rtc && b.rtc ? round1(rd('framesDecoded') / sec) : null,
      receivedKbps: a.rtc && b.rtc ? Math.round((rd('bytesReceived') * 8) / sec / 1000) : null,
      packetsLost: rd('packetsLost'),
      nacksSent: rd('nackCount'),
      plisSent: rd('pliCount'),
      firsSent: rd('firCount'),
      keyFramesDecoded: rd('keyFramesDecoded'),
      decodedFps: round1((b.s.framesDecoded - a.s.framesDecoded) / sec),
      presentedFps: round1((b.s.framesPresented - a.s.framesPresented) / sec),
      droppedInWindow: (b.s.framesDropped ?? 0) - (a.s.framesDropped ?? 0),
      reconnected: b.s.connects !== a.s.connects,
      pcState: b.s.pcState,
      width: b.s.width,
      height: b.s.height,
    };
  });
  const r = {
    label,
    clients: n,
    windowSec: round1(dt),
    cpuPct: Math.round(((cpu1 - cpu0) / dt) * 1000) / 10,
    rssMiB: round1(median(samples.map((s) => s.rssKb)) / 1024),
    threads: median(samples.map((s) => s.threads)),
    machineBusyPct: round1(((sys1.busy - sys0.busy) / (sys1.total - sys0.total)) * os.cpus().length * 100),
    chromiumCpuPct: round1(((chr1 - chr0) / dt) * 100),
    xvfbAndMoverCpuPct: round1(((hlp1 - hlp0) / dt) * 100),
    // Keyframe traffic inside the window (steady state should need none).
    keyframesRequested: md('oriel_keyframes_requested_total'),
    keyframesForced: md('oriel_keyframes_forced_total'),
    pipelineBefore: h0.pipeline,
    pipelineAfter: h1.pipeline,
    healthz: h1,
    perClient: clients,
  };
  // Whatever else ran on the machine meanwhile (other people's builds and tests).
  // (Clamped at 0: the separate /proc reads are not exactly simultaneous.)
  r.otherLoadPct = round1(Math.max(0, r.machineBusyPct - r.cpuPct - r.chromiumCpuPct - r.xvfbAndMoverCpuPct));
  log(`${label}: ${n} client(s) cpu ${fmt(r.cpuPct)}% rss ${fmt(r.rssMiB)} MiB threads ${r.threads} ` +
    `fps [${clients.map((c) => fmt(c.decodedFps)).join(', ')}] kbps [${clients.map((c) => c.receivedKbps).join(', ')}] ` +
    `lost/nack/pli/fir/kf [${clients.map((c) => `${c.packetsLost}/${c.nacksSent}/${c.plisSent}/${c.firsSent}/${c.keyFramesDecoded}`).join(', ')}] machine ${fmt(r.machineBusyPct)}% (of ${os.cpus().length * 100}) ` +
    `kf req/forced ${r.keyframesRequested}/${r.keyframesForced} chromium ${fmt(r.chromiumCpuPct)}% xvfb+mover ${fmt(r.xvfbAndMoverCpuPct)}% other ${fmt(r.otherLoadPct)}% pipeline ${h1.pipeline}`);
  return r;
}

async function costByClients(ctx, agent) {
  const pages = [];
  const setCount = async (n) => {
    while (pages.length < n) {
      const p = await openClient(ctx, agent);
      pages.push(p);
      await waitPresented(p);
    }
    while (pages.length > n) await closeClient(pages.pop());
  };
  // Warm-up: one client plays briefly and leaves, so every 0-client window
  // (the first one too) is "after idle stop", and Chromium's first-run costs are paid.
  await setCount(1);
  await sleep(1000);
  await setCount(0);
  const runs = [];
  for (let r = 0; r < CFG.rounds; r++) {
    const seq = r % 2 === 0 ? CFG.clients : [...CFG.clients].reverse();
    for (const n of seq) {
      await setCount(n);
      runs.push({ round: r + 1, ...(await measure(agent, pages, `round ${r + 1}`)) });
    }
  }
  await setCount(0);
  const summary = CFG.clients.map((n) => {
    const rs = runs.filter((x) => x.clients === n);
    const fps = rs.flatMap((x) => x.perClient.map((c) => c.decodedFps));
    return {
      clients: n,
      runs: rs.length,
      cpuPct: round1(median(rs.map((x) => x.cpuPct))),
      cpuPctRuns: rs.map((x) => x.cpuPct),
      rssMiB: round1(median(rs.map((x) => x.rssMiB))),
      threads: median(rs.map((x) => x.threads)),
      minClientFps: fps.length ? Math.min(...fps) : null,
      medianClientFps: round1(median(fps)),
      medianClientKbps: median(rs.flatMap((x) => x.perClient.map((c) => c.receivedKbps))),
      plisPerClientPerSec: round1(median(rs.flatMap((x) => x.perClient.map((c) => (c.plisSent ?? NaN) / x.windowSec)))),
      keyframesForcedPerSec: round1(median(rs.map((x) => x.keyframesForced / x.windowSec))),
      machineBusyPct: round1(median(rs.map((x) => x.machineBusyPct))),
      otherLoadPct: round1(median(rs.map((x) => x.otherLoadPct))),
      chromiumCpuPct: round1(median(rs.map((x) => x.chromiumCpuPct))),
      pipeline: [...new Set(rs.map((x) => x.pipelineAfter))].join('/'),
    };
  });
  return { runs, summary };
}

async function timeToFirstFrame(ctx, agent) {
  const starts = async () => (await agent.metrics()).oriel_pipeline_starts_total;
  const KF = ['oriel_keyframes_requested_total', 'oriel_keyframes_forced_total', 'oriel_keyframes_coalesced_total'];
  const kf = async () => {
    const m = await agent.metrics();
    return KF.map((k) => m[k] ?? 0);
  };
  const kfDelta = (a, b) => ({ requested: b[0] - a[0], forced: b[1] - a[1], coalesced: b[2] - a[2] });
  const JOIN_TIMEOUT_MS = 10000;
  const MAX_FAILED = 3;

  /** One fresh page joins; a sample, or a failure record if no frame shows up in time. */
  const join = async () => {
    const k0 = await kf();
    const at = new Date().toISOString();
    const page = await openClient(ctx, agent);
    let sample;
    try {
      const s = await waitPresented(page, JOIN_TIMEOUT_MS);
      sample = { at, firstFrameSinceConnectMs: s.firstFrameSinceConnectMs, firstFrameSinceLoadMs: s.firstFrameSinceLoadMs };
    } catch (e) {
      const st = await status(page).catch(() => null);
      sample = { at, failed: true, error: e.message.split(' (last value')[0], statusAtTimeout: st };
      log(`join at ${at} FAILED: no frame within ${JOIN_TIMEOUT_MS} ms; page status ${JSON.stringify(st)}`);
    }
    sample.keyframes = kfDelta(k0, await kf());
    return { page, sample };
  };

  // Cold: nobody connected, pipeline stopped by idle stop, then one join.
  const cold = [];
  await waitClients(agent, 0);
  for (let i = 0; i < CFG.coldJoins; i++) {
    await waitFor(async () => (await agent.healthz()).pipeline === 'stopped', 20000, 'idle stop', 100);
    await sleep(300);
    const s0 = await starts();
    const { page, sample } = await join();
    sample.pipelineStarted = (await starts()) - s0 === 1;
    cold.push(sample);
    log(`cold join ${i + 1}: ${fmt(sample.firstFrameSinceConnectMs, 0)} ms after connect (pipeline started: ${sample.pipelineStarted})`);
    await closeClient(page);
    await waitClients(agent, 0);
    if (cold.filter((x) => x.failed).length >= MAX_FAILED) break;
  }

  // Warm: one client plays the whole time; fresh pages join and leave.
  const anchor = await openClient(ctx, agent);
  await waitPresented(anchor);
  await waitClients(agent, 1);
  await sleep(1000);
  const warm = [];
  const sw0 = await starts();
  for (let i = 0; i < CFG.warmJoins; i++) {
    const { page, sample } = await join();
    warm.push(sample);
    await closeClient(page);
    await waitClients(agent, 1);
    await sleep(200);
    if (warm.filter((x) => x.failed).length >= MAX_FAILED) {
      log(`warm joins: ${MAX_FAILED} failures, stopping early`);
      break;
    }
  }
  const sw1 = await starts();
  const anchorStatus = await status(anchor);
  log(`warm joins: ${warm.map((w) => (w.failed ? 'FAILED' : fmt(w.firstFrameSinceConnectMs, 0))).join(' ')} ms (pipeline restarts during: ${sw1 - sw0})`);
  await closeClient(anchor);

  const dist = (all, k) => {
    const xs = all.filter((x) => !x.failed).map((x) => x[k]);
    return {
      n: xs.length,
      failed: all.filter((x) => x.failed).length,
      p50: round1(quantile(xs, 0.5)),
      p95: round1(quantile(xs, 0.95)),
      max: round1(xs.length ? Math.max(...xs) : null),
      min: round1(xs.length ? Math.min(...xs) : null),
    };
  };
  return {
    warm: {
      samples: warm,
      sinceConnect: dist(warm, 'firstFrameSinceConnectMs'),
      sinceLoad: dist(warm, 'firstFrameSinceLoadMs'),
      pipelineRestartsDuring: sw1 - sw0,
      anchorReconnects: anchorStatus.connects - 1,
    },
    cold: {
      samples: cold,
      sinceConnect: dist(cold, 'firstFrameSinceConnectMs'),
      sinceLoad: dist(cold, 'firstFrameSinceLoadMs'),
      allStartedPipeline: cold.every((c) => c.pipelineStarted),
    },
  };
}

// -------------------------------------------------------------- report

function derive(res) {
  const by = Object.fromEntries(res.cost.summary.map((s) => [s.clients, s]));
  const c = (n) => by[n]?.cpuPct ?? null;
  const d = {};
  if (c(1) !== null && c(4) !== null) {
    d.marginalCpuPerClientPct = round1((c(4) - c(1)) / 3);
    d.marginalRssPerClientMiB = round1((by[4].rssMiB - by[1].rssMiB) / 3);
    d.marginalThreadsPerClient = round1((by[4].threads - by[1].threads) / 3);
  }
  if (c(0) !== null && c(1) !== null) d.firstClientCpuPct = round1(c(1) - c(0));
  const fps = res.cost.runs.flatMap((r) => r.perClient.map((p) => p.decodedFps));
  d.minClientFps = fps.length ? Math.min(...fps) : null;
  d.reconnectsDuringWindows = res.cost.runs.reduce((a, r) => a + r.perClient.filter((p) => p.reconnected).length, 0);
  d.maxMachineBusyPct = Math.max(...res.cost.runs.map((r) => r.machineBusyPct));
  d.maxOtherLoadPct = Math.max(...res.cost.runs.map((r) => r.otherLoadPct));
  d.medianOtherLoadPct = round1(median(res.cost.runs.map((r) => r.otherLoadPct)));
  if (res.ttff) {
    d.coldMinusWarmP50Ms = round1(res.ttff.cold.sinceConnect.p50 - res.ttff.warm.sinceConnect.p50);
  }
  return d;
}

function whatTheNumbersSay(res) {
  const d = res.derived;
  const by = Object.fromEntries(res.cost.summary.map((s) => [s.clients, s]));
  const cores = res.machine.cores;
  const out = [];
  if (by[0] && by[1]) {
    out.push(`With nobody watching the agent idles at ${fmt(by[0].cpuPct)} % of a core ` +
      `(pipeline ${by[0].pipeline} after the idle stop), ${fmt(by[0].rssMiB)} MiB RSS, ${by[0].threads} threads. ` +
      `The first client costs ${fmt(d.firstClientCpuPct)} points of a core (${fmt(by[1].cpuPct)} % in total): ` +
      `mostly capture + colour conversion + the one x264 encode that every client shares, plus this client's own branch.`);
  }
  if (d.marginalCpuPerClientPct !== null && d.marginalCpuPerClientPct !== undefined) {
    const enc = d.firstClientCpuPct;
    const ratio = enc && d.marginalCpuPerClientPct > 0 ? enc / d.marginalCpuPerClientPct : null;
    out.push(`Each further client adds about ${fmt(d.marginalCpuPerClientPct)} % of a core ` +
      `((cpu4 - cpu1) / 3 = (${fmt(by[4].cpuPct)} - ${fmt(by[1].cpuPct)}) / 3), ${fmt(d.marginalRssPerClientMiB)} MiB and ` +
      `${fmt(d.marginalThreadsPerClient)} threads` +
      (ratio ? `: the shared encode costs about ${fmt(ratio, 0)}x what one more viewer does.` : '.'));
  }
  if (d.minClientFps !== null) {
    out.push(d.minClientFps >= res.config.framerate * 0.9
      ? `Every client decoded at least ${fmt(d.minClientFps)} fps in every window (target ${res.config.framerate}), so the cost figures are for full-rate delivery.`
      : `The slowest client decoded only ${fmt(d.minClientFps)} fps in some window (target ${res.config.framerate}): ` +
        `with ${cores} cores shared by the agent and every Chromium decoder, the heavier rows are partly CPU-starved; read them as lower bounds.`);
  }
  const withClients = res.cost.runs.filter((r) => r.clients > 0);
  const storm = withClients.filter((r) => r.keyframesForced / r.windowSec >= 0.5);
  if (storm.length) {
    const quiet = withClients.filter((r) => !storm.includes(r));
    const rates = storm.map((r) => r.keyframesForced / r.windowSec);
    const sum = (k) => storm.reduce((a, r) => a + r.perClient.reduce((b, c) => b + (c[k] ?? 0), 0), 0);
    const plis = storm.flatMap((r) => r.perClient.map((c) => (c.plisSent ?? NaN) / r.windowSec));
    const lo = Math.min(...rates);
    const hi = Math.max(...rates);
    out.push(`Keyframes: in ${storm.length} of ${withClients.length} windows with clients the agent forced ${fmt(lo)}${hi - lo >= 0.05 ? `-${fmt(hi)}` : ''} keyframes per second ` +
      `while every client sent about ${fmt(median(plis))} PLI/s, with ${sum('packetsLost')} packets lost and ${sum('nacksSent')} NACKs in those windows` +
      (quiet.length ? `; the other ${quiet.length} window(s) (${quiet.map((r) => `${r.clients} client${r.clients > 1 ? 's' : ''}, ${r.label}`).join('; ')}) had none` : '') +
      `. A steady stream without loss should need no keyframe at all: this looks like a request loop (each keyframe answered by a PLI, the next keyframe deferred by the coalescing interval). ` +
      `It costs bitrate and encode time, and the CPU figures above include it.`);
  }
  if (d.maxOtherLoadPct > 20 || d.maxMachineBusyPct > cores * 100 * 0.8) {
    out.push(`The machine was not quiet: up to ${fmt(d.maxMachineBusyPct)} % of ${cores * 100} % busy in a window, of which Chromium took ` +
      `${fmt(by[4]?.chromiumCpuPct)} % with 4 clients and unrelated processes up to ${fmt(d.maxOtherLoadPct)} % (median ${fmt(d.medianOtherLoadPct)} %). ` +
      `The agent figure is its own CPU time, so other load does not add to it, but contention for ${cores} cores can inflate it and cost frames; compare runs with care.`);
  }
  if (res.ttff && res.ttff.warm.sinceConnect.n && res.ttff.cold.sinceConnect.n) {
    const w = res.ttff.warm.sinceConnect;
    const c = res.ttff.cold.sinceConnect;
    const avg = (xs, k) => (xs.length ? xs.reduce((a, x) => a + (x.keyframes?.[k] ?? 0), 0) / xs.length : null);
    const head = `A browser joining a stream that is already running sees its first frame ${fmt(w.p50, 0)} ms (p50; p95 ${fmt(w.p95, 0)}, max ${fmt(w.max, 0)}) ` +
      `after its WebSocket opens; with the pipeline cold (first join after the idle stop) ${fmt(c.p50, 0)} ms (p50 of ${c.n}).`;
    if (d.coldMinusWarmP50Ms >= 0) {
      out.push(`${head} The cold start costs ${fmt(d.coldMinusWarmP50Ms, 0)} ms more: the price of starting capture and encoder on demand.`);
    } else {
      const kfArg = res.agentArgs.indexOf('--keyframe-interval-ms');
      const interval = kfArg >= 0 ? `${res.agentArgs[kfArg + 1]} ms` : 'the default 500 ms';
      out.push(`${head} The warm join is the slower one, by ${fmt(-d.coldMinusWarmP50Ms, 0)} ms: a cold start begins with the encoder's own keyframe, ` +
        `while each warm join caused on average ${fmt(avg(res.ttff.warm.samples, 'requested'))} keyframe requests and ` +
        `${fmt(avg(res.ttff.warm.samples, 'forced'))} forced keyframes (cold: ${fmt(avg(res.ttff.cold.samples, 'requested'))} / ${fmt(avg(res.ttff.cold.samples, 'forced'))}). ` +
        `That fits the keyframe forced at \`connected\` not being usable by the new browser, whose own request (PLI) is then deferred ` +
        `by the coalescing window (\`--keyframe-interval-ms\`, here ${interval}).`);
    }
  }
  return out.map((x) => `- ${x}`).join('\n');
}

/** This part's section of BENCHMARKS.md. */
export function render(res, jsonRel) {
  const m = res.machine;
  const a = res.agent;
  const L = [];
  L.push('## Cost per Chromium client (0-4 real browsers)');
  L.push('');
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command ?? 'cd bench && node clients.mjs'}\`. Raw results: [\`${jsonRel}\`](${jsonRel}).`);
  L.push('');
  L.push(`Agent \`DISPLAY=${res.display.display} oriel ${res.agentArgs.join(' ')}\` (${a.build} build), encoder ${res.healthz?.encoder ?? '?'}, ` +
    `${res.config.width}x${res.config.height} @ ${res.config.framerate} fps, ${res.config.bitrateKbps} kbit/s. ` +
    `Screen: Xvfb ${res.config.width}x${res.config.height}x24 showing \`${res.display.pipeline}\` ` +
    `(${res.display.covers ? 'covers the screen' : '**does not cover the screen**'}; scene \`${res.config.scene}\`). Load average at start: ${m.loadAvgAtStart.join(' ')}.`);
  L.push('');
  if (a.build !== 'release') {
    L.push(`**Note:** this run used a **${a.build}** build of the agent; CPU figures of a release build are lower.`);
    L.push('');
  }
  L.push(`Agent process only (all threads): CPU = utime+stime delta from \`/proc/PID/stat\` over a ${res.config.windowMs / 1000} s window ` +
    `after ${res.config.settleMs / 1000} s of settling, in % of one core; RSS = median \`VmRSS\` sampled every second; threads from \`/proc/PID/status\`. ` +
    `Sequence ${res.cost.runs.map((r) => r.clients).join(' → ')} (${res.config.rounds} rounds, up then down); medians over the rounds. ` +
    `The 0-client rows are taken after the idle stop. "client fps" is each page's \`framesDecoded\` rate (\`window.oriel.status()\`) over the same window; ` +
    `kbit/s, packets lost, NACK and PLI counts come from the page's own \`RTCPeerConnection.getStats()\` (inbound-rtp video; the bench keeps a handle on it through an init script), ` +
    `"keyframes forced" from the agent's \`oriel_keyframes_forced_total\`. ` +
    `Chromium's CPU (all its processes), Xvfb + the moving test video, the whole machine's busy time and the rest ` +
    `("other load" = machine busy - agent - Chromium - Xvfb/mover: other people's builds and tests) are shown for context only; none of them is in the agent's figure.`);
  L.push('');
  L.push('| clients | agent CPU % (median) | per round | RSS MiB | threads | client fps min / median | kbit/s per client | PLI/s per client | keyframes forced/s | pipeline | Chromium CPU % | machine busy % (of ' + m.cores * 100 + ') | other load % |');
  L.push('|---:|---:|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|');
  for (const s of res.cost.summary) {
    L.push(`| ${s.clients} | **${fmt(s.cpuPct)}** | ${s.cpuPctRuns.map((x) => fmt(x)).join(', ')} | ${fmt(s.rssMiB)} | ${s.threads} | ` +
      `${s.clients ? `${fmt(s.minClientFps)} / ${fmt(s.medianClientFps)}` : '-'} | ${s.clients ? fmt(s.medianClientKbps, 0) : '-'} | ` +
      `${s.clients ? fmt(s.plisPerClientPerSec) : '-'} | ${fmt(s.keyframesForcedPerSec)} | ${s.pipeline} | ${fmt(s.chromiumCpuPct)} | ${fmt(s.machineBusyPct)} | ${fmt(s.otherLoadPct)} |`);
  }
  L.push('');
  L.push('<details><summary>Every window</summary>');
  L.push('');
  L.push('| # | round | clients | agent CPU % | RSS MiB | threads | fps per client (decoded) | presented fps per client | kbit/s per client | lost / NACK / PLI / keyframes per client | keyframes forced | Chromium CPU % | Xvfb + mover CPU % | machine busy % | other load % |');
  L.push('|---:|---:|---:|---:|---:|---:|---|---|---|---|---:|---:|---:|---:|---:|');
  res.cost.runs.forEach((r, i) => {
    L.push(`| ${i + 1} | ${r.round} | ${r.clients} | ${fmt(r.cpuPct)} | ${fmt(r.rssMiB)} | ${r.threads} | ` +
      `${r.perClient.map((c) => fmt(c.decodedFps)).join(', ') || '-'} | ${r.perClient.map((c) => fmt(c.presentedFps)).join(', ') || '-'} | ` +
      `${r.perClient.map((c) => c.receivedKbps ?? 'n/a').join(', ') || '-'} | ` +
      `${r.perClient.map((c) => `${c.packetsLost ?? '?'}/${c.nacksSent ?? '?'}/${c.plisSent ?? '?'}/${c.keyFramesDecoded ?? '?'}`).join(', ') || '-'} | ` +
      `${r.keyframesForced ?? 'n/a'} | ${fmt(r.chromiumCpuPct)} | ${fmt(r.xvfbAndMoverCpuPct)} | ${fmt(r.machineBusyPct)} | ${fmt(Math.max(0, r.otherLoadPct))} |`);
  });
  L.push('');
  L.push('</details>');
  L.push('');
  if (res.ttff) {
    const t = res.ttff;
    L.push('### Time to first frame, warm and cold');
    L.push('');
    L.push('`firstFrameSinceConnectMs` from `window.oriel.status()`: WebSocket open to the first presented frame ' +
      '(`requestVideoFrameCallback`). Warm: a fresh page joins while another client is already playing, then leaves. ' +
      'Cold: the first join after the idle stop (no client before; the join starts capture and encoder). ' +
      '"since load" is the same first frame measured from the page load, for reference. Nearest-rank percentiles.');
    L.push('');
    L.push('| case | joins with a frame | failed (no frame in 10 s) | p50 ms | p95 ms | max ms | min ms | since load p50 ms | keyframes requested / forced per join (mean) |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
    const avg = (xs, k) => (xs.length ? xs.reduce((a, x) => a + (x.keyframes?.[k] ?? 0), 0) / xs.length : null);
    for (const [name, x] of [['warm (one client already playing)', t.warm], ['cold (after idle stop)', t.cold]]) {
      L.push(`| ${name} | ${x.sinceConnect.n} | ${x.sinceConnect.failed ? `**${x.sinceConnect.failed}**` : 0} | **${fmt(x.sinceConnect.p50, 0)}** | ${fmt(x.sinceConnect.p95, 0)} | ${fmt(x.sinceConnect.max, 0)} | ${fmt(x.sinceConnect.min, 0)} | ${fmt(x.sinceLoad.p50, 0)} | ` +
        `${fmt(avg(x.samples, 'requested'))} / ${fmt(avg(x.samples, 'forced'))} |`);
    }
    L.push('');
    const seq = (xs) => xs.map((w) => (w.failed ? `**failed** (${w.at})` : fmt(w.firstFrameSinceConnectMs, 0))).join(', ');
    L.push(`Warm joins, in order (ms): ${seq(t.warm.samples)}. Cold: ${seq(t.cold.samples)}.`);
    L.push('');
    L.push(`Checks: every cold join started the pipeline: ${t.cold.allStartedPipeline ? 'yes' : '**no**'}; ` +
      `pipeline restarts during the warm joins: ${t.warm.pipelineRestartsDuring}; reconnects of the playing client: ${t.warm.anchorReconnects}.`);
    L.push('');
  }
  L.push(...readingAndOddities(whatTheNumbersSay(res), res.notes));
  return L.join('\n');
}

/** One-line findings for the top of BENCHMARKS.md. */
export function headline(res) {
  const d = res.derived;
  const by = Object.fromEntries(res.cost.summary.map((s) => [s.clients, s]));
  const out = [];
  if (by[1]) out.push(`Chromium clients: the first costs the agent ${fmt(by[1].cpuPct)} % of a core, each further one +${fmt(d.marginalCpuPerClientPct)} % (part \`clients\`).`);
  if (res.ttff) out.push(`First frame for a browser joining a running stream: p50 ${fmt(res.ttff.warm.sinceConnect.p50, 0)} ms, p95 ${fmt(res.ttff.warm.sinceConnect.p95, 0)} ms (part \`clients\`).`);
  return out;
}

function summaryText(res) {
  const L = [];
  L.push('');
  L.push(`oriel bench ${res.startedAt}  (${res.agent.build} build, ${res.healthz?.encoder ?? '?'}, ${res.config.width}x${res.config.height}@${res.config.framerate}, ${res.config.bitrateKbps} kbit/s)`);
  L.push('clients  agentCPU%  (runs)          RSS MiB  threads  fps min/med   chromium%  machine%  other%');
  for (const s of res.cost.summary) {
    L.push(`${String(s.clients).padStart(7)}  ${fmt(s.cpuPct).padStart(9)}  ${('(' + s.cpuPctRuns.map((x) => fmt(x)).join(', ') + ')').padEnd(14)}  ` +
      `${fmt(s.rssMiB).padStart(7)}  ${String(s.threads).padStart(7)}  ${(s.clients ? `${fmt(s.minClientFps)}/${fmt(s.medianClientFps)}` : '-').padStart(11)}  ` +
      `${fmt(s.chromiumCpuPct).padStart(9)}  ${fmt(s.machineBusyPct).padStart(8)}  ${fmt(s.otherLoadPct).padStart(6)}`);
  }
  const d = res.derived;
  L.push(`marginal per added client: ${fmt(d.marginalCpuPerClientPct)} % CPU, ${fmt(d.marginalRssPerClientMiB)} MiB, ${fmt(d.marginalThreadsPerClient)} threads; first client ${fmt(d.firstClientCpuPct)} %`);
  if (res.ttff) {
    for (const [k, x] of [['warm', res.ttff.warm], ['cold', res.ttff.cold]]) {
      L.push(`time to first frame ${k} (n=${x.sinceConnect.n}, failed ${x.sinceConnect.failed}): p50 ${fmt(x.sinceConnect.p50, 0)} ms  p95 ${fmt(x.sinceConnect.p95, 0)} ms  max ${fmt(x.sinceConnect.max, 0)} ms`);
    }
  }
  for (const n of res.notes ?? []) L.push(`note: ${n}`);
  return L.join('\n');
}

function oddities(res, agentLog) {
  const notes = [];
  if (res.agent.build !== 'release') notes.push(`agent is a ${res.agent.build} build`);
  if (!res.display.covers) notes.push('the moving window does not cover the screen');
  const d = res.derived;
  if (d.reconnectsDuringWindows) notes.push(`${d.reconnectsDuringWindows} client reconnect(s) during measurement windows`);
  for (const r of res.cost.runs) {
    if (r.clients === 0 && r.pipelineAfter !== 'stopped') notes.push(`0-client window ${r.label}: pipeline ${r.pipelineAfter}`);
    if (r.clients > 0 && r.pipelineAfter !== 'playing') notes.push(`${r.clients}-client window ${r.label}: pipeline ${r.pipelineAfter}`);
  }
  const kfWindows = res.cost.runs.filter((r) => r.clients > 0 && r.keyframesForced / r.windowSec >= 0.5);
  if (kfWindows.length) notes.push(`steady-state keyframe loop: ${kfWindows.length} window(s) with >= 0.5 forced keyframes/s and PLIs from every client without packet loss`);
  if (res.ttff) {
    for (const [k, x] of [['warm', res.ttff.warm], ['cold', res.ttff.cold]]) {
      const f = x.samples.filter((w) => w.failed);
      if (f.length) notes.push(`${f.length} ${k} join(s) got no frame within 10 s (at ${f.map((w) => w.at).join(', ')}); page status then: ${JSON.stringify(f[0].statusAtTimeout)}`);
    }
  }
  if (res.ttff && !res.ttff.cold.allStartedPipeline) notes.push('a cold join did not start the pipeline exactly once');
  noteAgentWarnings(res, notes, agentLog);
  return notes;
}

// ---------------------------------------------------------------- main

async function main(res) {
  res.command = 'cd bench && node clients.mjs';
  res.config = {
    width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps,
    windowMs: CFG.windowMs, settleMs: CFG.settleMs, rounds: CFG.rounds, clients: CFG.clients,
    warmJoins: CFG.warmJoins, coldJoins: CFG.coldJoins, scene: CFG.scene,
  };
  res.machine = machineInfo();
  res.agent = agentInfo();
  log(`agent ${res.agent.bin} (${res.agent.build}), ${res.machine.cores} cores, load ${res.machine.loadAvgAtStart.join(' ')}`);

  res.display = await startDisplay();
  log(`display ${res.display.display}, mover window ${JSON.stringify(res.display.geometry)}`);
  const agent = await startAgent(res.display.display);
  res.agentArgs = agent.args();
  res.healthz = await agent.healthz();
  log(`agent pid ${agent.pid} on ${agent.url}: ${JSON.stringify(res.healthz)}`);

  const ctx = await launchBrowser();
  res.cost = await costByClients(ctx, agent);
  res.ttff = await timeToFirstFrame(ctx, agent);
  res.metricsAtEnd = await agent.metrics();
  if (!agent.alive) throw new Error('the agent died during the run');
  const agentLog = [...agent.rec.log];
  res.agentLogFile = saveAgentLog(agent.rec.log, res.startedAt, 'clients');
  res.derived = derive(res);
  res.notes = oddities(res, agentLog);
  return summaryText(res);
}

if (isMain(import.meta.url)) runPart('clients', main);
