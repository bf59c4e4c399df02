// The churn part's sections of BENCHMARKS.md (bench/churn.mjs): the run with
// malloc checks and the leaks tracer, and the one under Valgrind.
import { fmt, round1 } from './harness.mjs';
import { readingAndOddities } from './run.mjs';

const diff = (a, b) => (a === null || b === null || a === undefined || b === undefined ? 'n/a' : `${b - a >= 0 ? '+' : ''}${round1(b - a)}`);

/** Types whose live count differs between two checkpoints: "GstPad +2, ...". */
function objectDiff(a, b) {
  const types = new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})]);
  const out = [];
  for (const t of [...types].sort()) {
    const d = (b?.[t] ?? 0) - (a?.[t] ?? 0);
    if (d) out.push(`${t} ${d > 0 ? '+' : ''}${d}`);
  }
  return out.length ? out.join(', ') : 'none';
}

function mixTable(res) {
  const c = res.churn;
  const L = ['| exit mix | what the client does | cycles | went as expected | round time p50 / max (ms) |', '|---|---|---:|---:|---|'];
  for (const m of res.config.mixes) {
    const s = c.perMix[m.name];
    L.push(`| ${m.name} | ${m.what} | ${s.cycles} | ${s.rounds - s.failures.length} of ${s.rounds} rounds | ${fmt(s.msP50, 0)} / ${fmt(s.msMax, 0)} |`);
  }
  return L;
}

function pointTable(res) {
  const c = res.churn;
  const L = ['| checkpoint | cycles | RSS MiB | threads | fds | clients / peers | video encoders | removed branches still alive 10 s later | live GStreamer objects |',
    '|---|---:|---:|---:|---:|---|---:|---:|---:|'];
  for (const p of [...c.points, c.rested]) {
    L.push(`| ${p.label} | ${p.cycles} | ${fmt(p.rssMiB)} | ${p.threads} | ${p.fds} | ${p.clients} / ${p.peers} | ${p.encoders ?? 'n/a'} | ${p.branchesOutlived ?? 'n/a'} | ${p.gstObjects ?? 'n/a'} |`);
  }
  return L;
}

/** Why the object count moved when the encoder count did (`oriel_video_encoders`), and the leftover watcher's count. */
function encoderNote(p0, rested) {
  let note = '';
  if (p0.encoders != null && rested.encoders != null && p0.encoders !== rested.encoders) {
    note += `\n- ${rested.encoders} video encoder(s) at rest against ${p0.encoders} before: the cheaper rung (its own x264enc, parser, payloader and tee) ` +
      `${rested.encoders > p0.encoders ? 'was running for a slow viewer at rest and not before' : 'ran before and not at rest'}; its objects are in the difference and are no leftover.`;
  }
  if (rested.branchesOutlived != null) {
    note += `\n- Removed client branches still alive 10 s after their removal (\`oriel_branches_outlived_total\`, src/media/leftover.rs): ${rested.branchesOutlived}.`;
  }
  return note;
}

/** The growth figures the issue asks for: after the first 100 cycles, and at rest against the baseline. */
export function churnDerived(res) {
  const c = res.churn;
  const p0 = c.points[0];
  const p100 = c.points.find((p) => p.cycles >= 100) ?? p0;
  const last = c.points[c.points.length - 1];
  return {
    rssAfterFirst100MiB: round1(last.rssMiB - p100.rssMiB),
    rssTotalMiB: round1(last.rssMiB - p0.rssMiB),
    restedThreads: c.rested.threads - p0.threads,
    restedFds: c.rested.fds - p0.fds,
    restedObjects: c.rested.gstObjects === null || p0.gstObjects === null ? null : c.rested.gstObjects - p0.gstObjects,
    objectsPerCycle: c.rested.gstObjects === null ? null : (c.rested.gstObjects - p0.gstObjects) / last.cycles,
    from100: p100.cycles,
    cycles: last.cycles,
  };
}

function renderMain(res, jsonRel) {
  const c = res.churn;
  const d = churnDerived(res);
  const p0 = c.points[0];
  const L = [`### Churn: ${d.cycles} joins and leaves, every way of leaving, one viewer staying`, ''];
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}). ` +
    `CPU: ${res.machine.cpuModel}, ${res.machine.cores} cores; load average at start ${res.machine.loadAvgAtStart.join(' ')}.`);
  L.push('');
  L.push(`Agent \`oriel ${res.agentArgs.join(' ')}\` (${res.agent.build} build, tree at ${res.agent.gitHead ?? '?'}), ${res.config.width}x${res.config.height} @ ${res.config.framerate} fps, ` +
    `run with \`${Object.entries(res.agentEnv).map(([k, v]) => `${k}=${v}`).join(' ')}\` (glibc's malloc checks and GStreamer's leaks tracer). ` +
    `One Chromium page watches throughout (the anchor); ${res.config.parallel} rounds of \`bench_receiver\` viewers run at a time, cycling through the exit mixes. ` +
    `The ${d.cycles} cycles took ${c.cyclesSec} s.`);
  L.push('');
  L.push(...mixTable(res), '');
  L.push(...pointTable(res), '');
  L.push('| what the issue asks | measured |', '|---|---|');
  L.push(`| crashes | **${res.crashes.total}** (main agent exit ${res.mainAgentExit.exit} after SIGTERM in ${res.mainAgentExit.ms} ms; ${res.crashes.mainAgentSigns.count} crash sign(s) in its log) |`);
  L.push(`| the staying viewer never stops decoding | longest stretch without a new decoded frame: **${c.anchor.maxStallMs} ms** (${c.anchor.stalls} stall(s) of ${res.config.stallMs} ms or more) |`);
  L.push(`| RSS after the first ${d.from100} cycles | **${diff(0, d.rssAfterFirst100MiB)} MiB** from cycle ${d.from100} to ${d.cycles} (${diff(0, d.rssTotalMiB)} MiB from the start) |`);
  L.push(`| threads and fds back to the baseline | at rest vs before the cycles: threads ${diff(0, d.restedThreads)}, fds ${diff(0, d.restedFds)} |`);
  L.push(`| no GStreamer object left per cycle | live objects (\`leaks\` tracer, GstObject and subtypes) before: ${p0.gstObjects}, at rest: ${c.rested.gstObjects} ` +
    `(**${diff(0, d.restedObjects)}**, ${fmt(d.objectsPerCycle, 3)} per cycle); types that differ: ${objectDiff(p0.gstByType, c.rested.gstByType)} |`);
  L.push('');
  if (res.displayLost || res.sigterm) {
    L.push('Leaves that take the stream down (no staying viewer):', '');
    L.push('| exit mix | cycles | outcome |', '|---|---:|---|');
    if (res.displayLost) {
      const x = res.displayLost;
      L.push(`| display lost during a join (Xvfb killed 0-400 ms into it, back 0.5-1.5 s later) | ${x.cycles} | agent alive; a new viewer got frames after ${x.recovered} of ${x.cycles} (p50 ${fmt(x.recoverMsP50, 0)} ms, max ${fmt(x.recoverMsMax, 0)} ms after the display came back) |`);
    }
    if (res.sigterm) {
      const x = res.sigterm;
      L.push(`| SIGTERM 0-600 ms into a join (a fresh agent each time) | ${x.cycles} | exit 0 in ${x.clean} of ${x.cycles} (${Object.entries(x.exits).map(([k, v]) => `${v}x ${k}`).join(', ')}); stop p50 ${fmt(x.stopMsP50, 0)} ms, max ${fmt(x.stopMsMax, 0)} ms; crash signs in logs ${x.crash.count} |`);
    }
    L.push('');
  }
  const reading = [
    `- ${res.crashes.total ? `**${res.crashes.total} crash(es)**` : 'No crash'} in ${d.cycles} cycles plus the disruptive rounds; verdict: ${res.verdict.length ? `**${res.verdict.join('; ')}**` : 'every check passed'}.`,
  ].join('\n');
  L.push(...readingAndOddities(reading, res.notes));
  return L.join('\n');
}

function renderValgrind(res, jsonRel) {
  const c = res.churn;
  const m = res.memcheck;
  const L = [`### Churn under Valgrind memcheck: ${c.points[c.points.length - 1].cycles} cycles`, ''];
  L.push(`Run: ${res.startedAt} (${res.durationSec} s), \`${res.command}\`. Raw results: [\`${jsonRel}\`](${jsonRel}). CPU: ${res.machine.cpuModel}, ${res.machine.cores} cores.`);
  L.push('');
  L.push(`The agent under \`${res.agentWrap.join(' ')}\`, ${res.config.width}x${res.config.height} @ ${res.config.framerate} fps, the same exit mixes and anchor page as above. ` +
    `Memcheck's errors from every process it watched (${m.files} log file(s)):`);
  L.push('');
  L.push('| memcheck error kind | count |', '|---|---:|');
  for (const [k, v] of Object.entries(m.kinds)) L.push(`| ${k} | ${v} |`);
  if (!Object.keys(m.kinds).length) L.push('| (none) | 0 |');
  L.push(`| **invalid reads or writes with an oriel frame on the stack** | **${m.oriel}** |`);
  L.push('');
  L.push(...mixTable(res), '');
  L.push(...pointTable(res), '');
  const p0 = c.points[0];
  const objects = c.rested.gstObjects === null || p0.gstObjects === null ? 'not counted'
    : `${p0.gstObjects} before, ${c.rested.gstObjects} at rest (${diff(p0.gstObjects, c.rested.gstObjects)}; types that differ: ${objectDiff(p0.gstByType, c.rested.gstByType)})`;
  const reading = `- ${m.oriel ? `**${m.oriel} invalid read(s)/write(s) in oriel's code**` : 'No invalid read or write with an oriel frame on the stack'}; ` +
    `${m.errors} memcheck error(s) in all; crashes ${res.crashes.total}.\n` +
    `- Live GStreamer objects under Valgrind (its slowness changes every timing): ${objects}.` +
    encoderNote(p0, c.rested);
  L.push(...readingAndOddities(reading, res.notes));
  return L.join('\n');
}

/** The part's section (`churn` or `churn-valgrind`). */
export function renderChurn(res, jsonRel) {
  if (!res.churn?.perMix) return `### Churn\n\nThe newest result, [\`${jsonRel}\`](${jsonRel}), is from the earlier single-mix benchmark; run \`make bench-churn\`.\n`;
  return res.mode === 'valgrind' ? renderValgrind(res, jsonRel) : renderMain(res, jsonRel);
}

export function headlineChurn(res) {
  const c = res.churn;
  if (!c?.perMix) return [];
  if (res.mode === 'valgrind') {
    const d = churnDerived(res);
    return [`Churn under Valgrind: ${c.points[c.points.length - 1].cycles} cycles, ${res.memcheck.oriel} invalid read/write with an oriel frame, ${res.crashes.total} crashes, ` +
      `live GStreamer objects ${diff(0, d.restedObjects)} (part \`churn-valgrind\`).`];
  }
  const d = churnDerived(res);
  return [`Churn: ${d.cycles} cycles in every exit mix, ${res.crashes.total} crashes, the staying viewer's longest stall ${c.anchor.maxStallMs} ms, ` +
    `RSS ${diff(0, d.rssAfterFirst100MiB)} MiB after cycle ${d.from100}, live GStreamer objects ${diff(0, d.restedObjects)} (part \`churn\`).`];
}
