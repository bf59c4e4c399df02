#!/usr/bin/env node
// oriel benchmark part `churn`: does the agent give back what viewers take?
// RSS, threads and open fds before, during and after 200 join/leave cycles.
//
//   cd bench && node churn.mjs      (or `make bench-churn`)
//
// What it does, unattended (about 2-3 minutes on a 2-core machine):
//   1. Xvfb with full-screen moving content (BENCH_SCENE=bars), the agent on
//      it at 720p30, default bitrate.
//   2. One anchor viewer (a lightweight receiver, examples/bench_receiver)
//      stays connected throughout, so the capture and encoder keep running
//      and every checkpoint compares the same state; a first session before
//      the run pays the one-off costs of the first start (x264, DTLS
//      certificate, thread pools).
//   3. BENCH_CHURN_CYCLES (200) join/leave cycles: receivers join in batches
//      of BENCH_CHURN_BATCH (4), each waits for its first frame, then all
//      leave with bye; BENCH_CHURN_CHROMIUM (5) of the cycles are a real
//      Chromium page instead (join, first presented frame, bye), spread over
//      the run. Agent RSS, threads, open fds (/proc/PID/fd), /healthz clients
//      and peers, and oriel_joins_total at 0, 50, 100, 150, 200 cycles (after
//      BENCH_SETTLE_MS, medians of 3 samples), again after BENCH_CHURN_SETTLE_MS
//      (10000) of rest, and finally with nobody connected after the idle stop,
//      against the same state before the cycles.
//   4. Growth per 100 cycles overall and over the last 100, and whether it
//      levels off.
//
// Knobs (environment): ORIEL_BIN, BENCH_RECEIVER, CHROMIUM,
// BENCH_CHURN_CYCLES (200), BENCH_CHURN_BATCH (4), BENCH_CHURN_CHROMIUM (5),
// BENCH_CHURN_CHECKPOINTS (4: measure every cycles/4), BENCH_CHURN_SETTLE_MS
// (10000), BENCH_SETTLE_MS (3000), BENCH_SCENE, BENCH_NO_MARKDOWN=1,
// BENCH_TIMEOUT_MS (540000), BENCH_AGENT_ARGS.

import {
  CFG, agentInfo, closeClient, envNum, fmt, launchBrowser, log, machineInfo, median, openClient, procStatus, quantile, round1,
  sleep, startAgent, startDisplay, waitClients, waitFor, waitPresented,
} from './lib/harness.mjs';
import { isMain, noteAgentWarnings, readingAndOddities, runPart, saveAgentLog } from './lib/run.mjs';
import { Receivers, receiverErrorsNote } from './lib/receiver.mjs';
import { fdCount } from './viewers.mjs';

const CYCLES = envNum('BENCH_CHURN_CYCLES', 200);
const BATCH = Math.max(1, envNum('BENCH_CHURN_BATCH', 4));
const CHROMIUM_CYCLES = Math.min(envNum('BENCH_CHURN_CHROMIUM', 5), CYCLES);
const CHECKPOINTS = Math.max(1, envNum('BENCH_CHURN_CHECKPOINTS', 4));
const REST_MS = envNum('BENCH_CHURN_SETTLE_MS', 10000);

/** Agent footprint now: medians of 3 samples 0.5 s apart, plus its counters. */
async function footprint(agent, rx, label, cycles) {
  await sleep(CFG.settleMs);
  const samples = [];
  for (let i = 0; i < 3; i++) {
    if (i) await sleep(500);
    samples.push({ ...procStatus(agent.pid), fds: fdCount(agent.pid) });
  }
  const h = await agent.healthz();
  const m = await agent.metrics();
  const rxs = rx.status();
  const r = {
    label,
    cycles,
    rssMiB: round1(median(samples.map((s) => s.rssKb)) / 1024),
    threads: median(samples.map((s) => s.threads)),
    fds: median(samples.map((s) => s.fds)),
    clients: h.clients,
    peers: h.peers,
    pipeline: h.pipeline,
    joinsTotal: m.oriel_joins_total ?? null,
    keyframesForcedTotal: m.oriel_keyframes_forced_total ?? null,
    receiverRssMiB: round1(rxs.rssKb / 1024),
    receiverThreads: rxs.threads,
    at: new Date().toISOString(),
  };
  log(`${label}: cycles ${cycles} rss ${fmt(r.rssMiB)} MiB threads ${r.threads} fds ${r.fds} clients ${r.clients} peers ${r.peers} ` +
    `pipeline ${r.pipeline} joins ${r.joinsTotal} (receiver rss ${fmt(r.receiverRssMiB)} MiB, ${r.receiverThreads} threads)`);
  return r;
}

async function churn(ctx, agent, rx) {
  const points = [];
  // First session: pays one-off costs; then the idle baseline.
  const warm = rx.add(1);
  await rx.waitFirstFrames(warm, 30000);
  await rx.remove(1);
  await waitFor(async () => (await agent.healthz()).pipeline === 'stopped', 30000, 'idle stop', 200);
  const idleBefore = await footprint(agent, rx, 'idle before (nobody connected, after one session)', 0);

  const anchor = rx.add(1);
  await rx.waitFirstFrames(anchor, 30000);
  await waitClients(agent, 1);
  points.push(await footprint(agent, rx, 'anchor only, before the cycles', 0));

  // Cycle numbers at which a Chromium page joins instead of a receiver batch.
  const chromeAt = new Set();
  for (let i = 0; i < CHROMIUM_CYCLES; i++) chromeAt.add(Math.floor(((i + 0.5) * CYCLES) / CHROMIUM_CYCLES));
  const every = Math.max(1, Math.round(CYCLES / CHECKPOINTS));
  let done = 0;
  let nextCheck = every;
  let chromiumDone = 0;
  const joinMs = [];
  const failures = [];
  const t0 = Date.now();
  while (done < CYCLES) {
    // A Chromium cycle when one falls in this stretch.
    const nextChrome = Math.min(...[...chromeAt].filter((c) => c >= done), Infinity);
    if (nextChrome === done) {
      const page = await openClient(ctx, agent);
      try {
        await waitPresented(page, 20000);
      } catch (e) {
        failures.push(`cycle ${done + 1} (Chromium): ${e.message.slice(0, 200)}`);
      }
      await closeClient(page);
      done += 1;
      chromiumDone += 1;
    } else {
      const k = Math.min(BATCH, CYCLES - done, nextCheck - done, nextChrome - done);
      const ids = rx.add(k);
      try {
        const vs = await rx.waitFirstFrames(ids, 30000);
        joinMs.push(...vs.map((v) => v.firstFrameMs));
      } catch (e) {
        // Still a join/leave cycle for the agent; reported, not fatal.
        failures.push(`cycles ${done + 1}-${done + k}: ${e.message.slice(0, 200)}`);
      }
      await rx.remove(k);
      done += k;
    }
    if (failures.length > 10) throw new Error(`more than 10 failed joins during churn: ${failures.join(' | ')}`);
    await waitClients(agent, 1, 15000);
    if (done >= nextCheck || done === CYCLES) {
      await waitClients(agent, 1, 15000);
      points.push(await footprint(agent, rx, `after ${done} cycles`, done));
      nextCheck += every;
    }
  }
  const cyclesSec = Math.round((Date.now() - t0) / 1000);
  await sleep(REST_MS);
  const rested = await footprint(agent, rx, `after ${REST_MS / 1000} s of rest`, done);
  await rx.remove(1); // the anchor
  await waitFor(async () => (await agent.healthz()).pipeline === 'stopped', 30000, 'idle stop', 200);
  const idleAfter = await footprint(agent, rx, 'idle after (nobody connected)', done);
  return {
    idleBefore, points, rested, idleAfter, chromiumCycles: chromiumDone, receiverCycles: done - chromiumDone, cyclesSec, failures,
    receiverFirstFrameMs: { p50: quantile(joinMs, 0.5), p95: quantile(joinMs, 0.95), max: joinMs.length ? Math.max(...joinMs) : null, n: joinMs.length },
  };
}

function derive(res) {
  const c = res.churn;
  const p0 = c.points[0];
  const last = c.points[c.points.length - 1];
  const mid = c.points.find((p) => p.cycles >= last.cycles / 2 && p !== p0) ?? p0;
  const per100 = (a, b, k) => (b.cycles > a.cycles ? round1(((b[k] - a[k]) * 100) / (b.cycles - a.cycles)) : null);
  const d = {
    cycles: last.cycles,
    rssGrowthMiB: round1(last.rssMiB - p0.rssMiB),
    threadsGrowth: last.threads - p0.threads,
    fdsGrowth: last.fds - p0.fds,
    rssPer100: per100(p0, last, 'rssMiB'),
    threadsPer100: per100(p0, last, 'threads'),
    fdsPer100: per100(p0, last, 'fds'),
    rssPer100SecondHalf: per100(mid, last, 'rssMiB'),
    threadsPer100SecondHalf: per100(mid, last, 'threads'),
    fdsPer100SecondHalf: per100(mid, last, 'fds'),
    restedRssMiB: round1(c.rested.rssMiB - p0.rssMiB),
    restedThreads: c.rested.threads - p0.threads,
    restedFds: c.rested.fds - p0.fds,
    idleRssMiB: round1(c.idleAfter.rssMiB - c.idleBefore.rssMiB),
    idleThreads: c.idleAfter.threads - c.idleBefore.threads,
    idleFds: c.idleAfter.fds - c.idleBefore.fds,
    clientsBackToBaseline: c.rested.clients === p0.clients && c.rested.peers === p0.peers && c.idleAfter.clients === 0 && c.idleAfter.peers === 0,
    joinsCounted: (last.joinsTotal ?? 0) - (p0.joinsTotal ?? 0),
    midCycles: mid.cycles,
  };
  // "Levels off": the second half grows no more than 1 MiB per 100 cycles
  // and no threads or fds, or at most half of the overall rate.
  d.levelsOff = d.threadsPer100SecondHalf <= 0 && d.fdsPer100SecondHalf <= 0 &&
    (d.rssPer100SecondHalf <= 1 || (d.rssPer100 > 0 && d.rssPer100SecondHalf <= d.rssPer100 / 2));
  return d;
}

function whatTheNumbersSay(res) {
  const d = res.derived;
  const c = res.churn;
  const out = [];
  out.push(`After ${d.cycles} join/leave cycles (${c.receiverCycles} lightweight receivers, ${c.chromiumCycles} Chromium pages; the agent counted ${d.joinsCounted} joins) ` +
    `the agent, back to its one anchor viewer, holds ${fmt(d.rssGrowthMiB)} MiB more RSS, ${d.threadsGrowth} more threads and ${d.fdsGrowth} more open fds than before them ` +
    `(${fmt(d.rssPer100)} MiB, ${fmt(d.threadsPer100)} threads, ${fmt(d.fdsPer100)} fds per 100 cycles).`);
  out.push(`Over the last ${d.cycles - d.midCycles} cycles: ${fmt(d.rssPer100SecondHalf)} MiB, ${fmt(d.threadsPer100SecondHalf)} threads and ${fmt(d.fdsPer100SecondHalf)} fds per 100 cycles; ` +
    (d.levelsOff
      ? 'the growth levels off (a fixed leak per viewer would keep the overall rate), so what remains behaves like allocator high-water marks rather than a per-viewer leak.'
      : '**it does not level off**: something is kept per viewer (see the checkpoints).'));
  out.push(`After ${res.config.restMs / 1000} s of rest: ${fmt(d.restedRssMiB)} MiB, ${d.restedThreads} threads, ${d.restedFds} fds against before the cycles. ` +
    `With nobody connected after the idle stop: ${fmt(d.idleRssMiB)} MiB, ${d.idleThreads} threads, ${d.idleFds} fds against the same state before the cycles. ` +
    `/healthz clients and peers back to the baseline: ${d.clientsBackToBaseline ? 'yes' : '**no**'}.`);
  return out.map((x) => `- ${x}`).join('\n');
}

/** This part's section of BENCHMARKS.md. */
export function render(res, jsonRel) {
  const c = res.churn;
  const d = res.derived;
  const L = [];
  L.push(`## Churn: ${d.cycles} join/leave cycles`);
  L.push('');
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}).`);
  L.push('');
  L.push(`Agent \`oriel ${res.agentArgs.join(' ')}\` (${res.agent.build} build), encoder ${res.healthz?.encoder ?? '?'}, ` +
    `${res.config.width}x${res.config.height} @ ${res.config.framerate} fps; screen: \`${res.display.pipeline}\`. Load average at start: ${res.machine.loadAvgAtStart.join(' ')}.`);
  L.push('');
  L.push(`One anchor viewer stays connected so capture and encode run throughout; a first session before the run pays the one-off costs. ` +
    `A cycle = one viewer joins, gets its first frame and leaves with bye: \`bench_receiver\` viewers in batches of ${res.config.batch} ` +
    `(webrtcbin into fakesink), and ${c.chromiumCycles} Chromium pages spread over the run. The ${d.cycles} cycles took ${c.cyclesSec} s ` +
    `(receiver first frame p50 ${fmt(c.receiverFirstFrameMs?.p50, 0)} ms, p95 ${fmt(c.receiverFirstFrameMs?.p95, 0)} ms after its add; ${c.failures?.length ?? 0} join(s) without a first frame). ` +
    `At each checkpoint, after ${res.config.settleMs / 1000} s: agent RSS and threads (\`/proc/PID/status\`), open fds (\`/proc/PID/fd\`), medians of 3 samples; ` +
    `/healthz clients/peers; \`oriel_joins_total\`.`);
  L.push('');
  L.push('| checkpoint | cycles | RSS MiB | threads | fds | clients / peers | pipeline | joins counted | receiver RSS MiB |');
  L.push('|---|---:|---:|---:|---:|---|---|---:|---:|');
  for (const p of [c.idleBefore, ...c.points, c.rested, c.idleAfter]) {
    L.push(`| ${p.label} | ${p.cycles} | ${fmt(p.rssMiB)} | ${p.threads} | ${p.fds} | ${p.clients} / ${p.peers} | ${p.pipeline} | ${p.joinsTotal ?? 'n/a'} | ${fmt(p.receiverRssMiB)} |`);
  }
  L.push('');
  L.push('| growth | RSS MiB | threads | fds |');
  L.push('|---|---:|---:|---:|');
  L.push(`| after ${d.cycles} cycles vs before | **${fmt(d.rssGrowthMiB)}** | **${d.threadsGrowth}** | **${d.fdsGrowth}** |`);
  L.push(`| per 100 cycles, overall | ${fmt(d.rssPer100)} | ${fmt(d.threadsPer100)} | ${fmt(d.fdsPer100)} |`);
  L.push(`| per 100 cycles, cycles ${d.midCycles}-${d.cycles} | ${fmt(d.rssPer100SecondHalf)} | ${fmt(d.threadsPer100SecondHalf)} | ${fmt(d.fdsPer100SecondHalf)} |`);
  L.push(`| after ${res.config.restMs / 1000} s of rest vs before | ${fmt(d.restedRssMiB)} | ${d.restedThreads} | ${d.restedFds} |`);
  L.push(`| idle (nobody connected) after vs before | ${fmt(d.idleRssMiB)} | ${d.idleThreads} | ${d.idleFds} |`);
  L.push('');
  L.push(...readingAndOddities(whatTheNumbersSay(res), res.notes));
  return L.join('\n');
}

/** One-line findings for the top of BENCHMARKS.md. */
export function headline(res) {
  const d = res.derived;
  return [`After ${d.cycles} join/leave cycles the agent holds ${fmt(d.rssGrowthMiB)} MiB, ${d.threadsGrowth} threads, ${d.fdsGrowth} fds more than before ` +
    `(last ${d.cycles - d.midCycles} cycles: ${fmt(d.rssPer100SecondHalf)} MiB per 100; ${d.levelsOff ? 'levels off' : '**does not level off**'}) (part \`churn\`).`];
}

function oddities(res, agentLog, rx) {
  const notes = [];
  if (res.agent.build !== 'release') notes.push(`agent is a ${res.agent.build} build`);
  const d = res.derived;
  if (!d.clientsBackToBaseline) notes.push('/healthz clients/peers did not return to the baseline');
  if (d.joinsCounted !== d.cycles) notes.push(`the agent counted ${d.joinsCounted} joins for ${d.cycles} cycles`);
  for (const f of res.churn.failures) notes.push(`join without a first frame: ${f}`);
  const rxNote = receiverErrorsNote(rx);
  if (rxNote) notes.push(rxNote);
  noteAgentWarnings(res, notes, agentLog);
  return notes;
}

async function main(res) {
  res.command = 'cd bench && node churn.mjs';
  res.config = {
    width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps, scene: CFG.scene,
    cycles: CYCLES, batch: BATCH, chromiumCycles: CHROMIUM_CYCLES, checkpoints: CHECKPOINTS, restMs: REST_MS, settleMs: CFG.settleMs,
  };
  res.machine = machineInfo();
  res.agent = agentInfo();
  res.display = await startDisplay();
  const agent = await startAgent(res.display.display);
  res.agentArgs = agent.args();
  res.healthz = await agent.healthz();
  const ctx = CHROMIUM_CYCLES > 0 ? await launchBrowser() : null;
  const rx = await Receivers.start(agent.viewerUrl, { name: 'bench-churn' });
  res.churn = await churn(ctx, agent, rx);
  res.receiverExit = await rx.quit();
  if (!agent.alive) throw new Error('the agent died during the run');
  const agentLog = [...agent.rec.log];
  res.agentLogFile = saveAgentLog(agent.rec.log, res.startedAt, 'churn');
  res.derived = derive(res);
  res.notes = oddities(res, agentLog, rx);
  if (res.receiverExit !== 0) res.notes.push(`bench_receiver exited with ${res.receiverExit}`);
  const d = res.derived;
  return `\nchurn ${d.cycles} cycles: rss ${fmt(d.rssGrowthMiB)} MiB threads ${d.threadsGrowth} fds ${d.fdsGrowth}; ` +
    `per 100 (2nd half) ${fmt(d.rssPer100SecondHalf)} MiB; levels off ${d.levelsOff}; clients back ${d.clientsBackToBaseline}\n` +
    `${(res.notes ?? []).map((n) => `note: ${n}`).join('\n')}`;
}

if (isMain(import.meta.url)) runPart('churn', main);
