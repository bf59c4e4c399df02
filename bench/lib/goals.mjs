// Issue 15's goals against the newest results: one row per goal, oriel's
// figure from the part that measures it, Selkies 2.1's from the same run
// where that part runs it, and the distance. BENCHMARKS.md puts the table
// under its headlines (bench/report.mjs).
import { fmt } from './harness.mjs';

const cpuOf = (res) => (res?.machine ? `${res.machine.cpuModel}, ${res.machine.cores} cores` : '?');
const dayOf = (res) => res?.startedAt?.slice(0, 10) ?? '?';

/**
 * Selkies times no stages of its own: beside oriel's capture → encoded
 * stands the nearest figure both have, paint on the screen to the frame's
 * last packet in Chromium (capture, encode, send), and which is ahead on it.
 */
function serverPath(o, sk) {
  const a = o?.latency?.paintedToReceived?.p50;
  const b = sk?.latency?.paintedToReceived?.p50;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return null;
  return { note: `no stage timing; painted → received ${fmt(b)} ms (oriel ${fmt(a)})`, ahead: a < b ? `yes on painted → received (${fmt(b / a, 2)}x)` : `no on painted → received (${fmt(a / b, 2)}x Selkies')` };
}

/** `runs`: report.mjs's list ({part, res}). Returns markdown lines. */
export function goalsSection(runs) {
  const res = Object.fromEntries(runs.map((r) => [r.part, r.res]));
  const rows = [];
  // [goal, target, at most (lower is better), oriel's value, Selkies' value or null, part]
  const glass = res.glass?.runs?.find((r) => r.config === '720p30' && r.mode === '0/0');
  const glass1080 = res.glass?.runs?.find((r) => r.config === '1080p30' && r.mode === '0/0');
  const glassSk = res.glass?.runs?.find((r) => r.config === '720p30' && r.mode === 'selkies' && r.latency);
  if (glass) {
    rows.push(['glass-to-glass p50, 720p30', 7, 'ms', glass.latency?.glass?.p50, glassSk?.latency?.glass?.p50 ?? null, 'glass']);
    rows.push(['glass-to-glass p99, 720p30', 12, 'ms', glass.latency?.glass?.p99, glassSk?.latency?.glass?.p99 ?? null, 'glass']);
    rows.push(['capture → encoded p50, 720p', 3, 'ms', glass.agentCaptureToEncoded?.p50Ms, serverPath(glass, glassSk), 'glass']);
  }
  const glass1080Sk = res.glass?.runs?.find((r) => r.config === '1080p30' && r.mode === 'selkies' && r.latency);
  if (glass1080) rows.push(['capture → encoded p50, 1080p', 6, 'ms', glass1080.agentCaptureToEncoded?.p50Ms, serverPath(glass1080, glass1080Sk), 'glass']);
  const still = res.still?.summary?.damage;
  if (still?.moving?.encodedP50Ms !== undefined && still.moving.encodedP50Ms !== null) {
    rows.push(['capture → encoded p50, 720p30, moving desktop, capture by damage', 3, 'ms', still.moving.encodedP50Ms, { note: 'no stage timing', ahead: '-' }, 'still']);
  }
  const click = res.click?.summary?.[30];
  if (click?.oriel) rows.push(['click-to-photon p50, 30 fps', 25, 'ms', click.oriel.p50, click.selkies?.p50 ?? null, 'click']);
  const stillSk = res.still?.summary?.selkies;
  if (still) rows.push(['agent CPU, still desktop, one viewer', 2, '% of a core', still.still.cpuPct, stillSk?.still?.cpuPct ?? null, 'still']);
  // Beside Selkies where shared-viewers ran both (Chromium pages); else the
  // lightweight viewers' slope.
  const sv = res['shared-viewers']?.summary;
  const slope = res.viewers?.derived?.cpuFit?.slope;
  if (sv?.oriel && sv.selkies) rows.push(['agent CPU per added viewer (Chromium pages)', 1.0, '% of a core', sv.oriel.perViewer, sv.selkies.perViewer, 'shared-viewers']);
  if (slope !== undefined) rows.push(['agent CPU per added viewer (lightweight receivers)', 1.0, '% of a core', slope, null, 'viewers']);
  // RSS beside Selkies where the click part ran both; else the still part's.
  if (click?.oriel && click.selkies) rows.push(['agent RSS, one viewer (Chromium)', 50, 'MiB', click.oriel.rssMiB, click.selkies.rssMiB, 'click']);
  else if (still) rows.push(['agent RSS, one viewer', 50, 'MiB', still.still.rssMiB, null, 'still']);
  if (!rows.length) return [];
  const L = [
    "## Issue 15's goals",
    '',
    'Each goal against the newest run of the part that measures it (the CPU it ran on named per row). Selkies 2.1 is measured in the same run only where the part runs it beside oriel; elsewhere "not measured yet".',
    '',
    '| goal | target | oriel | met? | Selkies 2.1, same run | ahead of Selkies? | part, machine, day |',
    '|---|---:|---:|---|---:|---|---|',
  ];
  for (const [goal, target, unit, v, sk, part] of rows) {
    const has = v !== null && v !== undefined && Number.isFinite(v);
    const met = !has ? '?' : v <= target ? 'yes' : `no (+${fmt(v - target)} ${unit})`;
    const noted = sk !== null && typeof sk === 'object';
    const ahead = noted ? sk.ahead : sk === null || !has ? '-' : v < sk ? `yes (${fmt(sk / v, 2)}x)` : `no (${fmt(v / sk, 2)}x Selkies')`;
    const skText = noted ? sk.note : sk === null ? 'not measured yet' : `${fmt(sk)} ${unit}`;
    L.push(`| ${goal} | ≤ ${target} ${unit} | ${has ? fmt(v) : 'n/a'} ${unit} | ${met} | ${skText} | ${ahead} | \`${part}\`, ${cpuOf(res[part])}, ${dayOf(res[part])} |`);
  }
  L.push('');
  return L;
}
