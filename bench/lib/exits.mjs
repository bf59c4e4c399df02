// The ways a real client leaves, for the churn benchmark (bench/churn.mjs):
// each runs one or two join/leave cycles with bench_receiver viewers and
// reports what happened. Any of them may overlap with others; none of them
// ends the stream for the viewers that stay.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CFG, sleep } from './harness.mjs';

const run = promisify(execFile);

/**
 * The exit mixes that leave the stream running, in the order a run cycles
 * through them. `cycles`: how many joins one round of the mix makes.
 */
export const MIXES = [
  { name: 'bye', cycles: 1, what: 'joins, plays, leaves with bye' },
  { name: 'tab-closed', cycles: 1, what: 'joins, plays, the socket and the peer vanish without a word' },
  { name: 'mid-offer', cycles: 1, what: 'closes its socket as soon as the offer arrives, never answering' },
  { name: 'mid-handshake', cycles: 1, what: 'vanishes 0-300 ms after it opened its socket (during hello, offer, ICE or DTLS)' },
  { name: 'ice-fails', cycles: 1, what: 'answers, but gives the agent only a candidate that leads nowhere: the agent\'s ICE checks fail' },
  { name: 'revoked', cycles: 1, what: 'plays on its own link, which `oriel link revoke` revokes mid-stream' },
  { name: 'same-ms', cycles: 2, what: 'two viewers playing leave in one command, in the same millisecond (bye or vanish, alternating)' },
];

/** A new viewer link for `agent`: {token, id}. Run off the event loop (other cycles go on). */
async function newLink(agent) {
  const { stdout, stderr } = await run(CFG.bin, ['link', 'create', '--role', 'viewer', '--ttl', '1h', '--state-dir', agent.stateDir,
    '--url', agent.url, '--label', 'churn'], { encoding: 'utf8' });
  const id = stderr.match(/oriel: link (\S+) /)?.[1];
  const token = decodeURIComponent(stdout.trim().split('#token=')[1] ?? '');
  if (!id || !token) throw new Error(`oriel link create said: ${stdout} ${stderr}`);
  return { id, token };
}

async function revoke(agent, id) {
  await run(CFG.bin, ['link', 'revoke', id, '--state-dir', agent.stateDir], { encoding: 'utf8' });
}

/**
 * One round of `mix` against `agent` with the viewers of `rx`. Resolves with
 * {cycles, ms, failure?}: a failure is what did not go as a real client
 * would expect (no first frame, never refused, ...), not a crash.
 */
export async function runMix(mix, agent, rx, rand) {
  const t0 = Date.now();
  const mine = [];
  const add = (n, opts) => {
    const ids = rx.add(n, opts);
    mine.push(...ids);
    return ids;
  };
  const out = (failure) => ({ cycles: MIXES.find((m) => m.name === mix).cycles, ms: Date.now() - t0, failure });
  try {
    switch (mix) {
      case 'bye':
      case 'tab-closed': {
        const ids = add(1);
        await rx.waitFirstFrames(ids, CFG.firstFrameMs);
        await rx.leave(ids, mix === 'bye' ? 'bye' : 'drop');
        return out();
      }
      case 'mid-offer': {
        const [id] = add(1, { way: 'midoffer', quiet: true });
        const v = await rx.waitOver(id, 30000);
        await rx.leave([id], 'drop');
        return out(v.ended ? undefined : `did not see an offer: ${v.errors.join('; ')}`);
      }
      case 'mid-handshake': {
        const ids = add(1, { quiet: true });
        await sleep(rand() * 300);
        await rx.leave(ids, 'drop');
        return out();
      }
      case 'ice-fails': {
        const [id] = add(1, { way: 'icefail', quiet: true });
        const v = await rx.waitOver(id, 90000);
        await rx.leave([id], 'drop');
        return out(v.failed ? undefined : 'the agent never gave up on ICE');
      }
      case 'revoked': {
        const link = await newLink(agent);
        const [id] = add(1, { token: link.token, quiet: true });
        await rx.waitFirstFrames([id], CFG.firstFrameMs);
        await revoke(agent, link.id);
        const v = await rx.waitOver(id, 15000);
        await rx.leave([id], 'drop');
        return out(v.failed ? undefined : 'still connected after its link was revoked');
      }
      case 'same-ms': {
        const ids = add(2);
        await rx.waitFirstFrames(ids, CFG.firstFrameMs);
        await rx.leave(ids, rand() < 0.5 ? 'bye' : 'drop');
        return out();
      }
      default:
        throw new Error(`unknown exit mix ${mix}`);
    }
  } catch (e) {
    // Reap whatever is left of this round's viewers so the next can go on.
    await rx.leave(mine.filter((id) => rx.alive.includes(id)), 'drop').catch(() => {});
    return out(e.message.slice(0, 300));
  }
}

/** Deterministic "random" numbers, so a run can be replayed. */
export function seeded(seed = 0x0e1e1) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x7fffffff;
  };
}
