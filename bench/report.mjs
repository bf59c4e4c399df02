#!/usr/bin/env node
// Writes BENCHMARKS.md from the newest results file of every benchmark part
// (bench/results/<date>-<part>.json). Each part script renders its own
// section: `export function render(res, jsonRel)` returns markdown starting at
// a `##` heading, `export function headline(res)` a few one-line findings.
//
//   node bench/report.mjs        (every part script also runs it when it ends)
import fs from 'node:fs';
import path from 'node:path';
import { MARKDOWN, REPO_ROOT, RESULTS_DIR, log } from './lib/harness.mjs';
import { isMain } from './lib/run.mjs';
import { goalsSection } from './lib/goals.mjs';

/**
 * Parts in report order: [name, script, what it measures, section]. Parts
 * of a section (`reliability`) render a `###` subsection; the report puts
 * them together under that section's `##` heading, after the other parts.
 */
export const PARTS = [
  ['glass', 'glass.mjs', 'glass-to-glass latency'],
  ['glass-taskset', 'glass.mjs', 'glass-to-glass latency with both agents pinned to one core (`BENCH_TASKSET=0`)'],
  ['glass-network', 'glass-network.mjs', 'the controller\'s glass-to-glass latency through loss and narrow links'],
  ['viewers', 'viewers.mjs', 'cost per viewer, up to 32 viewers'],
  ['peer', 'peer.mjs', 'side by side with gst-plugins-rs webrtcsink'],
  ['ttff', 'ttff.mjs', 'time to first frame with viewers connected'],
  ['still', 'still.mjs', 'the X11 capture by damage against the clock, still and moving desktop'],
  ['click', 'click.mjs', 'click-to-photon, oriel and Selkies 2.1'],
  ['click-taskset', 'click.mjs', 'click-to-photon with both agents pinned to one core (`BENCH_TASKSET=0`)'],
  ['shared-viewers', 'shared-viewers.mjs', 'cost per added Chromium viewer, oriel and Selkies 2.1'],
  ['audio', 'audio.mjs', 'the desktop\'s sound: latency, sync with the picture, cost'],
  ['input', 'input.mjs', 'input latency'],
  ['files', 'files.mjs', 'files both ways, and the picture meanwhile'],
  ['pointer', 'pointer.mjs', 'the remote pointer drawn by the page against in the video'],
  ['churn', 'churn.mjs', 'join/leave churn in every exit mix', 'reliability'],
  ['churn-valgrind', 'churn.mjs', 'join/leave churn under Valgrind memcheck', 'reliability'],
  ['soak', 'soak.mjs', 'an hour of a controller and 8 viewers', 'reliability'],
  ['clients', 'clients.mjs', 'cost per Chromium client and warm/cold first frame'],
  ['sfu', 'sfu.mjs', 'Janus per subscriber against oriel per direct viewer'],
  ['network', 'network.mjs', 'loss, capacity and adaptation through an impairment relay'],
  ['bad-clients', 'bad-clients.mjs', 'one bad client beside a playing controller and viewer', 'reliability'],
  ['fuzz', 'fuzz.mjs', 'executions and crashes per fuzz target', 'reliability'],
];

/** The `##` sections that gather parts' `###` subsections. */
const SECTIONS = {
  reliability: ['## Reliability', '',
    'What the agent does when something goes wrong, and what it costs the clients that behave. Each subsection is one part.', ''],
};

function newestResult(part) {
  if (!fs.existsSync(RESULTS_DIR)) return null;
  // Exactly <date>-<part>.json: `network` must not pick up `glass-network`'s files.
  const files = fs.readdirSync(RESULTS_DIR).filter((f) => /^\d{4}-\d{2}-\d{2}-/.test(f) && f.slice(11) === `${part}.json`).sort();
  if (!files.length) return null;
  const file = path.join(RESULTS_DIR, files[files.length - 1]);
  return { file, rel: path.relative(REPO_ROOT, file), res: JSON.parse(fs.readFileSync(file, 'utf8')) };
}

/** The CPU a run was measured on, as the Machine table names it. */
function cpuOf(r) {
  const m = r.res.machine;
  return m ? `${m.cpuModel}, ${m.cores} cores` : null;
}

/** The machine most parts were measured on: the table describes it, and parts
 * measured elsewhere say so (parts are re-run one at a time, on whichever
 * machine a session has, so one file can hold figures from two CPUs). */
function mainCpu(runs) {
  const count = new Map();
  for (const r of runs) if (cpuOf(r)) count.set(cpuOf(r), (count.get(cpuOf(r)) ?? 0) + 1);
  return [...count.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
}

function machineTable(runs) {
  const main = mainCpu(runs);
  const onMain = runs.filter((r) => cpuOf(r) === main);
  const newest = onMain.sort((a, b) => (a.res.startedAt < b.res.startedAt ? 1 : -1))[0];
  if (!newest) return [];
  const m = newest.res.machine;
  const a = newest.res.agent ?? {};
  const encoders = [...new Set(runs.map((r) => r.res.healthz?.encoder).filter(Boolean))];
  const L = ['## Machine', '', '| | |', '|---|---|'];
  L.push(`| CPU | ${m.cpuModel}, ${m.cores} cores |`);
  L.push(`| memory | ${m.memoryGiB} GiB |`);
  L.push(`| OS | ${m.os ?? '?'}, kernel ${m.kernel} |`);
  L.push(`| GStreamer | ${m.gstreamer} |`);
  if (m.chromium) L.push(`| Chromium | ${m.chromium} (headless, playwright-core) |`);
  L.push(`| encoder | ${encoders.join(', ') || '?'} (the agent's choice, from /healthz; no GPU on this machine) |`);
  if (a.bin) L.push(`| agent | \`${path.relative(REPO_ROOT, a.bin) || a.bin}\` (${a.build} build, ${a.version ?? '?'}, tree at ${a.gitHead ?? '?'}) |`);
  L.push('');
  const elsewhere = new Map();
  for (const r of runs) {
    const cpu = cpuOf(r);
    if (cpu && cpu !== main) elsewhere.set(cpu, [...(elsewhere.get(cpu) ?? []), r.part]);
  }
  for (const [cpu, parts] of elsewhere) {
    L.push(`Measured on another machine (${cpu}): ${parts.map((p) => `\`${p}\``).join(', ')}; their sections give its figures only.`);
    L.push('');
  }
  return L;
}

/** Each section's heading, then its parts' subsections. */
function sections(runs) {
  const L = [];
  for (const [name, heading] of Object.entries(SECTIONS)) {
    const parts = runs.filter((r) => r.section === name);
    if (!parts.length) continue;
    L.push(...heading);
    for (const r of parts) {
      // The part's own heading is a `###` here, so its subsections go one deeper.
      const lines = r.mod.render(r.res, r.rel).trimEnd().split('\n');
      L.push(...lines.map((l, i) => (i > 0 && l.startsWith('### ') ? `#${l}` : l)));
      L.push('');
    }
  }
  return L;
}

export async function writeBenchmarks() {
  const runs = [];
  const missing = [];
  for (const [part, script, what, section] of PARTS) {
    const r = newestResult(part);
    if (!r) {
      missing.push(`- ${what}: not measured yet (\`cd bench && node ${script}\`)`);
      continue;
    }
    const mod = await import(`./${script}`);
    runs.push({ part, script, what, section, ...r, mod });
  }
  const L = ['# Benchmarks', ''];
  L.push('> **Generated file.** Written by `bench/report.mjs` from the newest results of each part ' +
    '(`bench/results/<date>-<part>.json`); every run of a part rewrites it. Edit the generators, not this file.');
  L.push('');
  L.push('`make bench` runs every part in turn (unattended, about half an hour on 2 cores); `make bench-<part>` runs one. ' +
    'These are measurements on a shared, noisy machine: compare figures taken in the same run, and read the ratios rather than the absolute values.');
  L.push('');
  L.push(...machineTable(runs));
  L.push('## Headlines', '');
  const main = mainCpu(runs);
  for (const r of runs) {
    const lines = r.mod.headline ? r.mod.headline(r.res) : [];
    const where = cpuOf(r) && cpuOf(r) !== main ? ` (on ${cpuOf(r)})` : '';
    for (const h of lines) L.push(`- ${where ? h.replace(/\.?$/, `${where}.`) : h}`);
  }
  if (missing.length) L.push('', 'Not in this file:', '', ...missing);
  L.push('');
  L.push(...goalsSection(runs));
  for (const r of runs.filter((r) => !r.section)) {
    L.push(r.mod.render(r.res, r.rel).trimEnd());
    L.push('');
  }
  L.push(...sections(runs));
  fs.writeFileSync(MARKDOWN, L.join('\n').replace(/\n{3,}/g, '\n\n'));
  log(`wrote ${path.relative(process.cwd(), MARKDOWN) || MARKDOWN}`);
}

if (isMain(import.meta.url)) await writeBenchmarks();
