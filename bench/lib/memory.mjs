// Where a process's resident memory goes, from /proc/PID/smaps: the goal of
// 50 MiB with one viewer is only worth chasing where the bytes actually are
// (code pages of libraries the process maps, x264's huge pages, XShm
// segments), so the viewers part records this beside the total.
import fs from 'node:fs';

/** Category of one mapping, by its path (or its absence). */
export function category(name, exe) {
  if (!name) return 'anon';
  if (name === exe) return 'binary';
  if (name === '[heap]') return 'anon';
  if (name.startsWith('[stack')) return 'stacks';
  if (name.startsWith('[')) return 'kernel';
  if (name.startsWith('/SYSV') || name.startsWith('/dev/shm/') || name.startsWith('/memfd:')) return 'shm';
  if (/\.so(\.|$)/.test(name)) return 'libraries';
  return 'files';
}

/**
 * Parses smaps text into KiB per category: rss, and of the anonymous part
 * how much sits in transparent huge pages. Thread stacks mapped by glibc are
 * anonymous and count as "anon".
 */
export function breakdownOf(text, exe) {
  const out = { binary: 0, libraries: 0, files: 0, anon: 0, anonHugePages: 0, shm: 0, stacks: 0, kernel: 0, total: 0 };
  let cat = null;
  for (const line of text.split('\n')) {
    // A header: "start-end perms offset dev inode [path]".
    const h = line.match(/^[0-9a-f]+-[0-9a-f]+\s+\S+\s+\S+\s+\S+\s+\d+\s*(.*)$/);
    if (h) {
      cat = category(h[1].replace(/ \(deleted\)$/, '').trim(), exe);
      continue;
    }
    if (!cat) continue;
    const rss = line.match(/^Rss:\s+(\d+) kB/);
    if (rss) {
      out[cat] += Number(rss[1]);
      out.total += Number(rss[1]);
      continue;
    }
    const thp = line.match(/^AnonHugePages:\s+(\d+) kB/);
    if (thp) out.anonHugePages += Number(thp[1]);
  }
  return out;
}

/** The breakdown of a live process in MiB (one decimal), or null if it is gone. */
export function memoryBreakdown(pid) {
  try {
    const exe = fs.readlinkSync(`/proc/${pid}/exe`);
    const kb = breakdownOf(fs.readFileSync(`/proc/${pid}/smaps`, 'utf8'), exe);
    return Object.fromEntries(Object.entries(kb).map(([k, v]) => [k, Math.round((v / 1024) * 10) / 10]));
  } catch {
    return null;
  }
}

/** Markdown rows: one column per labelled breakdown, e.g. {"0 viewers": b0, "1 viewer": b1}. */
export function breakdownTable(cols) {
  const names = Object.keys(cols);
  const rows = [
    ['the oriel binary (code and data pages)', 'binary'],
    ['shared libraries (GStreamer, x264, GLib, NSS, ...)', 'libraries'],
    ['other files', 'files'],
    ['anonymous (heap, arenas, thread stacks)', 'anon'],
    ['… of it in transparent huge pages', 'anonHugePages'],
    ['shared memory (XShm segments)', 'shm'],
    ['main stack and kernel mappings', null],
    ['**total (sum of Rss)**', 'total'],
  ];
  const f = (x) => (x === null || x === undefined ? 'n/a' : x.toFixed(1));
  const L = [`| MiB | ${names.join(' | ')} |`, `|---|${names.map(() => '---:').join('|')}|`];
  for (const [label, key] of rows) {
    const v = (b) => (!b ? null : key ? b[key] : Math.round((b.stacks + b.kernel) * 10) / 10);
    L.push(`| ${label} | ${names.map((n) => f(v(cols[n]))).join(' | ')} |`);
  }
  return L;
}
