// Running one benchmark part: watchdog, cleanup on every way out, the raw
// results file, and BENCHMARKS.md regenerated from the newest results of
// every part (bench/report.mjs).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CFG, RESULTS_DIR, REPO_ROOT, children, cleanup, log } from './harness.mjs';

/** True when the module at `metaUrl` is the script node was started with. */
export function isMain(metaUrl) {
  return process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(metaUrl);
}

/** The agent's whole log, kept outside the repo for a look after the run. */
export function saveAgentLog(lines, startedAt, part = 'bench') {
  const file = path.join(os.tmpdir(), `oriel-${part}-${startedAt.replace(/[:.]/g, '-')}-agent.log`);
  try {
    fs.writeFileSync(file, lines.join('\n') + '\n');
    return file;
  } catch {
    return null;
  }
}

/** WARN/ERROR lines of an agent log, grouped: [count, text] for the 3 commonest. */
export function agentWarnings(lines) {
  const bad = lines.filter((l) => /\b(ERROR|WARN|CRITICAL)\b/.test(l));
  const kinds = {};
  for (const l of bad) {
    const k = l.replace(/^.*?\b(ERROR|WARN|CRITICAL)\b/, '$1').replace(/\d{2}:\d{2}:\d{2}\.\d+:?\s*/, '').slice(0, 140);
    kinds[k] = (kinds[k] ?? 0) + 1;
  }
  const top = Object.entries(kinds).sort((a, b) => b[1] - a[1]).slice(0, 3);
  return { count: bad.length, lines: bad.slice(0, 50), top,
    note: bad.length ? `agent logged ${bad.length} WARN/ERROR/CRITICAL line(s): ${top.map(([k, n]) => `${n}x \`${k.replace(/`/g, "'")}\``).join('; ')}` : null };
}

/** Writes results/<date>-<part>.json (or a temp file with BENCH_NO_MARKDOWN=1). */
export function saveResult(part, res) {
  let jsonPath;
  if (process.env.BENCH_NO_MARKDOWN === '1') {
    jsonPath = path.join(os.tmpdir(), `oriel-bench-${res.startedAt.replace(/[:.]/g, '-')}-${part}.json`);
  } else {
    fs.mkdirSync(RESULTS_DIR, { recursive: true });
    jsonPath = path.join(RESULTS_DIR, `${res.startedAt.slice(0, 10)}-${part}.json`);
  }
  fs.writeFileSync(jsonPath, JSON.stringify(res, null, 2) + '\n');
  log(`wrote ${path.relative(REPO_ROOT, jsonPath).startsWith('..') ? jsonPath : path.relative(REPO_ROOT, jsonPath)}`);
  return jsonPath;
}

/**
 * Runs `main(res)` for benchmark part `part` as the whole process: a watchdog
 * of CFG.timeoutMs, every child killed on the way out, the results saved and
 * BENCHMARKS.md regenerated. `main` fills `res` (startedAt is set) and may
 * return a one-screen text summary for stdout.
 */
export function runPart(part, main) {
  const t0 = Date.now();
  const res = { part, startedAt: new Date().toISOString() };
  const watchdog = setTimeout(() => {
    log(`watchdog: over ${CFG.timeoutMs / 1000} s, giving up`);
    cleanup().finally(() => process.exit(2));
  }, CFG.timeoutMs);
  watchdog.unref();
  (async () => {
    const summary = await main(res);
    await cleanup();
    res.durationSec = Math.round((Date.now() - t0) / 1000);
    saveResult(part, res);
    if (process.env.BENCH_NO_MARKDOWN !== '1') {
      const { writeBenchmarks } = await import('../report.mjs');
      await writeBenchmarks();
    }
    if (summary) console.log(summary);
  })().then(
    () => process.exit(0),
    async (e) => {
      console.error(`bench ${part} failed: ${e?.stack ?? e}`);
      const agentRec = children.find((r) => r.name === 'oriel');
      if (agentRec) console.error(`agent log: ${saveAgentLog(agentRec.log, new Date().toISOString(), part)}`);
      for (const r of children) {
        if (!r.log.length) continue;
        console.error(`----- ${r.name} (last 40 lines) -----\n${r.log.slice(-40).join('\n')}`);
      }
      await cleanup();
      process.exit(1);
    },
  );
}

/** The closing lines of a part's section: its reading, then the oddities seen. */
export function readingAndOddities(reading, notes) {
  const L = ['### What the numbers say', '', reading, ''];
  if (notes?.length) L.push('### Oddities seen in this run', '', ...notes.map((n) => `- ${n}`), '');
  return L;
}

/** Adds the agent log's WARN/ERROR summary to `notes` and keeps the lines in `res`. */
export function noteAgentWarnings(res, notes, agentLog) {
  const w = agentWarnings(agentLog);
  if (w.count) {
    res.agentWarnings = w.lines;
    notes.push(w.note);
  }
}
