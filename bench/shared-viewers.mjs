#!/usr/bin/env node
// oriel benchmark part `shared-viewers`: what each added browser watching
// the same desktop costs the agent, oriel and Selkies 2.1 in the same run
// (issue 15's "agent CPU per added viewer", with Selkies beside it). The
// `viewers` part measures oriel alone up to 32 lightweight viewers; Selkies
// speaks only to its own page, so here both are watched by Chromium pages.
//
//   cd bench && node shared-viewers.mjs      (or `make bench-shared-viewers`)
//
// What it does, unattended (about 6 minutes):
//   1. Xvfb at 720p with the full-screen moving scene (BENCH_SCENE).
//   2. Per agent (oriel, then Selkies; BENCH_SV_ROUNDS (2) rounds, the order
//      alternating), 1, 2, 3 pages (BENCH_SV_COUNTS), up then down: oriel's
//      pages open viewer links, Selkies' first page is its controller and
//      the others its view-only `#shared` page. After BENCH_SETTLE_MS, a
//      BENCH_WINDOW_MS window: the agent's CPU (Selkies: all its processes),
//      RSS, each page's presented frames.
//   3. The slope of CPU over pages (least squares): the cost per added viewer.
//
// Knobs: ORIEL_BIN, CHROMIUM, BENCH_SV_ROUNDS, BENCH_SV_COUNTS,
// BENCH_SV_AGENTS (oriel,selkies), BENCH_WINDOW_MS (10000), BENCH_SETTLE_MS,
// BENCH_TASKSET, BENCH_NO_MARKDOWN=1, BENCH_TIMEOUT_MS (900000).

import { performance } from 'node:perf_hooks';
import {
  CFG, agentInfo, closeClient, envNum, fmt, launchBrowser, log, machineInfo, median, openClient, procCpuSec, procStatus,
  round1, sleep, startAgent, startDisplay, status, stopChild, waitClients, waitPresented,
} from './lib/harness.mjs';
import { isMain, noteAgentWarnings, readingAndOddities, runPart } from './lib/run.mjs';
import {
  SELKIES_VIDEO, ensureSelkies, openSelkiesPage, selkiesPageUrl, selkiesPids, selkiesPresentedRate, startSelkies, stopSelkies,
} from './lib/selkies.mjs';
import { linearFit } from './viewers.mjs';

const ROUNDS = envNum('BENCH_SV_ROUNDS', 2);
const COUNTS = (process.env.BENCH_SV_COUNTS || '1,2,3').split(',').map(Number);
const AGENTS = (process.env.BENCH_SV_AGENTS || 'oriel,selkies').split(',');
CFG.windowMs = envNum('BENCH_WINDOW_MS', 10000);
CFG.timeoutMs = envNum('BENCH_TIMEOUT_MS', 900000);

/** CPU seconds per pid and the summed RSS of `pids`. */
function sample(pids) {
  const cpu = new Map();
  let rssKb = 0;
  for (const pid of pids) {
    try {
      cpu.set(pid, procCpuSec(pid));
      rssKb += procStatus(pid).rssKb;
    } catch {
      /* gone */
    }
  }
  return { t: performance.now(), cpu, rssMiB: rssKb / 1024 };
}

/** % of one core between two samples, over the pids both saw. */
function cpuPct(a, b) {
  let s = 0;
  for (const [pid, t] of b.cpu) if (a.cpu.has(pid)) s += t - a.cpu.get(pid);
  return (s / ((b.t - a.t) / 1000)) * 100;
}

/** An agent under test: how to add and drop a page, whose CPU counts, each page's presented rate over a window. */
async function openOriel(ctx, display) {
  const agent = await startAgent(display);
  const pages = [];
  return {
    kind: 'oriel',
    pids: () => [agent.pid],
    alive: () => agent.alive,
    log: () => agent.rec.log,
    count: () => pages.length,
    async add() {
      const p = await openClient(ctx, agent);
      pages.push(p);
      await waitPresented(p);
      await waitClients(agent, pages.length);
    },
    async drop() {
      await closeClient(pages.pop());
    },
    async window(ms) {
      const a = await Promise.all(pages.map((p) => status(p)));
      const t = performance.now();
      await sleep(ms);
      const b = await Promise.all(pages.map((p) => status(p)));
      const sec = (performance.now() - t) / 1000;
      return pages.map((_, i) => (b[i].framesPresented - a[i].framesPresented) / sec);
    },
    async stop() {
      while (pages.length) await closeClient(pages.pop());
      await stopChild(agent.rec);
    },
  };
}

async function openSelkies(ctx, display) {
  const s = await startSelkies({ display, width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps });
  const pages = [];
  return {
    kind: 'selkies',
    pids: () => selkiesPids(s),
    alive: () => s.rec.exitCode === undefined,
    log: () => s.rec.log,
    count: () => pages.length,
    async add() {
      // The first page controls; the others watch through its view-only page.
      const url = pages.length ? selkiesPageUrl({ port: s.port, hash: '#shared' }) : s.url;
      const { page } = await openSelkiesPage(ctx, url);
      pages.push(page);
    },
    async drop() {
      await pages.pop().close().catch(() => {});
    },
    async window(ms) {
      const rates = await Promise.all(pages.map((p) => selkiesPresentedRate(p, ms)));
      return rates.map((r) => r.fps);
    },
    async stop() {
      while (pages.length) await pages.pop().close().catch(() => {});
      await stopSelkies(s);
    },
  };
}

async function measure(a, label) {
  await sleep(CFG.settleMs);
  if (!a.alive()) throw new Error(`${a.kind} died`);
  const s0 = sample(a.pids());
  const fps = await a.window(CFG.windowMs);
  const s1 = sample(a.pids());
  const r = { agent: a.kind, pages: a.count(), cpuPct: round1(cpuPct(s0, s1)), rssMiB: round1(s1.rssMiB), fps: fps.map(round1) };
  log(`${label}: ${a.kind} ${r.pages} page(s): cpu ${fmt(r.cpuPct)} % rss ${fmt(r.rssMiB)} MiB fps [${r.fps.map((x) => fmt(x)).join(', ')}]`);
  return r;
}

async function runAgent(kind, ctx, display, round, notes) {
  const a = kind === 'selkies' ? await openSelkies(ctx, display) : await openOriel(ctx, display);
  const out = [];
  try {
    for (const n of [...COUNTS, ...[...COUNTS].reverse()]) {
      while (a.count() < n) await a.add();
      while (a.count() > n) await a.drop();
      out.push({ round, ...(await measure(a, `round ${round}`)) });
    }
  } finally {
    if (kind === 'oriel') noteAgentWarnings({}, notes, a.log());
    await a.stop();
  }
  return out;
}

async function main(res) {
  res.command = 'cd bench && node shared-viewers.mjs';
  res.config = { width: CFG.width, height: CFG.height, framerate: CFG.framerate, bitrateKbps: CFG.bitrateKbps, scene: CFG.scene, rounds: ROUNDS, counts: COUNTS, windowMs: CFG.windowMs, agents: AGENTS, taskset: CFG.taskset ?? null };
  res.machine = machineInfo();
  res.agent = agentInfo();
  if (AGENTS.includes('selkies')) res.selkies = await ensureSelkies();
  res.display = await startDisplay();
  const browser = await launchBrowser();
  const ctx = browser.contexts?.()[0] ?? browser;
  res.notes = [];
  res.runs = [];
  for (let r = 1; r <= ROUNDS; r++) {
    for (const kind of r % 2 ? AGENTS : [...AGENTS].reverse()) res.runs.push(...(await runAgent(kind, ctx, res.display.display, r, res.notes)));
  }
  await browser.close().catch(() => {});
  res.summary = summarize(res);
  return headline(res).join('\n');
}

function summarize(res) {
  const out = {};
  for (const kind of AGENTS) {
    const rows = COUNTS.map((n) => {
      const rs = res.runs.filter((r) => r.agent === kind && r.pages === n);
      const fps = rs.flatMap((r) => r.fps);
      return { pages: n, cpuPct: round1(median(rs.map((r) => r.cpuPct))), rssMiB: round1(median(rs.map((r) => r.rssMiB))), minFps: fps.length ? Math.min(...fps) : null };
    });
    const f = linearFit(rows.map((r) => r.pages), rows.map((r) => r.cpuPct));
    out[kind] = { rows, perViewer: f ? Math.round(f.slope * 100) / 100 : null, r2: f?.r2 ?? null };
  }
  return out;
}

// --------------------------------------------------------------- report

export function headline(res) {
  const o = res.summary.oriel;
  const s = res.summary.selkies;
  if (!o) return [];
  const vs = s ? `, Selkies 2.1 +${fmt(s.perViewer, 2)} % (same run)` : '';
  return [`Each added Chromium viewer of a moving 720p30 desktop costs oriel +${fmt(o.perViewer, 2)} % of a core${vs} (part \`shared-viewers\`).`];
}

export function render(res, jsonRel) {
  const s = res.summary;
  const kinds = Object.keys(s);
  const L = [
    '## Cost per added viewer, oriel and Selkies 2.1 (Chromium pages)',
    '',
    `Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}). CPU: ${res.machine.cpuModel}, ${res.machine.cores} cores${res.config.taskset ? `; agents pinned to CPU(s) ${res.config.taskset}` : ''}.`,
    '',
    `Xvfb at ${res.config.width}x${res.config.height} with the full-screen \`${res.config.scene}\` scene; each agent at ${res.config.framerate} fps, ${res.config.bitrateKbps} kbit/s x264, watched by ${res.config.counts.join(', ')} Chromium pages in one browser (oriel: viewer links; Selkies${res.selkies?.versions ? ` ${res.selkies.versions}` : ''}: its page, then its view-only \`#shared\` page). ${res.config.rounds} rounds, the counts up then down, the agents alternating; medians of ${res.config.windowMs / 1000} s windows. CPU is the agent's (Selkies: all its processes), % of one core; the per-viewer figure is the least-squares slope over the counts.`,
    '',
    `| pages | ${kinds.map((k) => `${k} CPU % | ${k} RSS MiB | ${k} slowest page fps`).join(' | ')} |`,
    `|---:|${kinds.map(() => '---:|---:|---:').join('|')}|`,
    ...res.config.counts.map((n, i) => `| ${n} | ${kinds.map((k) => { const r = s[k].rows[i]; return `${fmt(r.cpuPct)} | ${fmt(r.rssMiB)} | ${fmt(r.minFps)}`; }).join(' | ')} |`),
    `| per added viewer | ${kinds.map((k) => `**${fmt(s[k].perViewer, 2)}** | | `).join(' | ')} |`,
    '',
  ];
  const o = s.oriel;
  const sk = s.selkies;
  const reading = o && sk
    ? `Each added page costs oriel ${fmt(o.perViewer, 2)} % of a core and Selkies ${fmt(sk.perViewer, 2)} % (${o.perViewer < sk.perViewer ? 'oriel lower' : 'Selkies lower'}); with ${res.config.counts.at(-1)} pages oriel uses ${fmt(o.rows.at(-1).cpuPct)} % against Selkies' ${fmt(sk.rows.at(-1).cpuPct)} %. Issue 15's goal is at most 1.0 % per added viewer.`
    : 'One agent only in this run.';
  L.push(...readingAndOddities(reading, res.notes));
  return L.join('\n');
}

if (isMain(import.meta.url)) runPart('shared-viewers', main);
