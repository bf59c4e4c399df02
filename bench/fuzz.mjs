#!/usr/bin/env node
// oriel benchmark part `fuzz`: executions and crashes per fuzz target
// (issue 21's goal: 0 crashes after 10 million executions per target).
//
//   cd bench && node fuzz.mjs [TARGET...]      (or `make bench-fuzz`)
//   cd bench && node fuzz.mjs --from FILE      (a scripts/fuzz.sh result)
//
// Runs scripts/fuzz.sh (AFL++ through cargo-afl, one target after another;
// see the script) and keeps its result. A run of some targets only keeps the
// other targets' rows of the newest earlier result, each with its own date,
// so a long run can be made one target at a time.
//
// Knobs (environment): FUZZ_EXECS (10000000: stop a target there),
// FUZZ_SECONDS (1800: or after this long), FUZZ_NICE (19),
// BENCH_NO_MARKDOWN=1.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CFG, REPO_ROOT, RESULTS_DIR, childEnv, fmt, log, start } from './lib/harness.mjs';
import { isMain, readingAndOddities, runPart } from './lib/run.mjs';

const EXECS = process.env.FUZZ_EXECS || '10000000';
const SECONDS = Number(process.env.FUZZ_SECONDS || 1800);
const GOAL = 10_000_000;

/** The newest earlier result of this part, for the rows this run leaves alone. */
function previous() {
  if (!fs.existsSync(RESULTS_DIR)) return null;
  const files = fs.readdirSync(RESULTS_DIR).filter((f) => /^\d{4}-\d{2}-\d{2}-fuzz\.json$/.test(f)).sort();
  return files.length ? JSON.parse(fs.readFileSync(path.join(RESULTS_DIR, files.at(-1)), 'utf8')) : null;
}

async function runScript(targets) {
  const json = path.join(os.tmpdir(), `oriel-fuzz-${process.pid}.json`);
  const rec = start('fuzz.sh', 'bash', [path.join(REPO_ROOT, 'scripts/fuzz.sh'), ...targets],
    childEnv({ FUZZ_JSON: json, FUZZ_EXECS: EXECS, FUZZ_SECONDS: SECONDS }));
  rec.listeners.push((line) => console.error(line));
  await rec.exited;
  // Exit 1 with a results file: a target crashed, which the table shows.
  if (!fs.existsSync(json)) throw new Error(`scripts/fuzz.sh exited ${rec.exitCode} without results`);
  const out = JSON.parse(fs.readFileSync(json, 'utf8'));
  fs.rmSync(json, { force: true });
  return out;
}

/** One results record from a fuzz.sh result: run facts on every row. */
function rows(run) {
  const { targets, ...facts } = run;
  return targets.map((t) => ({ ...t, run: facts }));
}

async function main(res) {
  const args = process.argv.slice(2);
  const from = args[0] === '--from' ? args[1] : null;
  const targets = from ? [] : args;
  res.command = `cd bench && node fuzz.mjs ${args.join(' ')}`.trim();
  const run = from ? JSON.parse(fs.readFileSync(from, 'utf8')) : await runScript(targets);
  const fresh = rows(run);
  const names = new Set(fresh.map((r) => r.target));
  const kept = (previous()?.targets ?? []).filter((r) => !names.has(r.target));
  res.targets = [...fresh, ...kept];
  res.notes = notes(res);
  return res.targets.map((r) => `${r.target.padEnd(11)} ${String(r.execs).padStart(12)} execs ${r.crashes} crashes ${r.seconds} s`).join('\n');
}

function notes(res) {
  const n = [];
  for (const r of res.targets) {
    if (r.crashes > 0) n.push(`**${r.target} crashed ${r.crashes} time(s)**: the inputs are in \`fuzz/regressions/${r.target}/\``);
    if (r.hangs > 0) n.push(`${r.target}: ${r.hangs} input(s) over AFL's time limit (kept in ${r.run.outDir}/${r.target}/default/hangs)`);
    if (r.execs < GOAL) n.push(`${r.target}: ${fmtCount(r.execs)} executions, short of the 10 million goal (stopped after ${r.seconds} s)`);
  }
  return n;
}

const fmtCount = (n) => (n >= 1e6 ? `${fmt(n / 1e6, 1)} M` : n >= 1e3 ? `${fmt(n / 1e3, 0)} k` : String(n));

/** This part's section of BENCHMARKS.md. */
export function render(res, jsonRel) {
  const L = ['### Fuzzing: executions and crashes per parser of outside bytes', ''];
  L.push(`Raw results: [\`${jsonRel}\`](${jsonRel}). Made by \`scripts/fuzz.sh\` (\`make fuzz\`, or \`${res.command}\`): ` +
    'AFL++ through cargo-afl on the stable toolchain, one target at a time, each from its checked-in seeds (`fuzz/corpus/<target>/`). ' +
    'A target is a check in `fuzz/src/<target>.rs`: it feeds the bytes to the agent\'s own parser and asserts what must hold for every input ' +
    '(no panic, what was accepted reads back the same, a token from nowhere never verifies); a crash is a panic or a failed assertion. ' +
    'Every crash becomes an input under `fuzz/regressions/<target>/`, replayed by `cd fuzz && cargo test`.');
  L.push('');
  L.push('| target | parser covered | executions | crashes | hangs | seconds | execs/s | corpus | edges | run | machine |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|');
  for (const r of res.targets) {
    const rate = r.seconds > 0 ? Math.round(r.execs / r.seconds) : null;
    L.push(`| ${r.target} | \`${r.parser}\` | ${r.execs.toLocaleString('en-US')} | ${r.crashes ? `**${r.crashes}**` : 0} | ${r.hangs} | ` +
      `${r.seconds} | ${rate ?? 'n/a'} | ${r.corpus} | ${r.edges} | ${r.run.startedAt.slice(0, 16).replace('T', ' ')}, tree ${r.run.gitHead}, nice ${r.run.nice} | ` +
      `${r.run.host.cpuModel}, ${r.run.host.cores} cores |`);
  }
  L.push('');
  const r0 = res.targets[0]?.run;
  if (r0) L.push(`${r0.cargoAfl}, ${r0.rustc}. Executions and crashes are AFL's \`execs_done\` and \`saved_crashes\` (\`fuzzer_stats\`); ` +
    'seconds its `run_time`; corpus the inputs it kept, edges the coverage map entries they reach.', '');
  L.push(...readingAndOddities(reading(res), res.notes));
  return L.join('\n');
}

function reading(res) {
  const crashed = res.targets.filter((r) => r.crashes > 0);
  const short = res.targets.filter((r) => r.execs < GOAL);
  const total = res.targets.reduce((s, r) => s + r.execs, 0);
  let s = `${fmtCount(total)} executions over ${res.targets.length} targets, ` +
    (crashed.length ? `crashes in ${crashed.map((r) => r.target).join(', ')}.` : 'no crash.');
  s += short.length ? ` Short of 10 million: ${short.map((r) => `${r.target} (${fmtCount(r.execs)})`).join(', ')}.` : ' Every target reached 10 million.';
  return s;
}

/** One-line findings for the top of BENCHMARKS.md. */
export function headline(res) {
  const crashes = res.targets.reduce((s, r) => s + r.crashes, 0);
  const least = [...res.targets].sort((a, b) => a.execs - b.execs)[0];
  return [`Fuzzing: ${crashes} crash(es) in ${res.targets.length} parsers of outside bytes; the least-run target (${least?.target}) had ` +
    `${fmtCount(least?.execs ?? 0)} executions (part \`fuzz\`).`];
}

if (isMain(import.meta.url)) {
  // The whole run, not a bench's default minutes: each target up to its cap, plus the build.
  CFG.timeoutMs = Math.max(CFG.timeoutMs, (6 * (SECONDS + 120) + 3600) * 1000);
  log(`fuzz: up to ${EXECS} executions or ${SECONDS} s per target`);
  runPart('fuzz', main);
}
