// A private PulseAudio for tests and benchmarks (node builtins only, so
// both harnesses can use it): its configuration, how to start it, pactl.

import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

/**
 * A private PulseAudio's files in `dir` (0700): its script (a socket there,
 * a null sink `desk` as the default output), and how to start it:
 * {address, program, args, env} (env: overrides for childEnv).
 */
export function pulseSetup(dir) {
  const socket = path.join(dir, 'native');
  const script = path.join(dir, 'default.pa');
  fs.writeFileSync(script, [
    `load-module module-native-protocol-unix auth-anonymous=1 socket=${socket}`,
    'load-module module-null-sink sink_name=desk rate=48000 sink_properties=device.description=desk',
    'set-default-sink desk',
    '',
  ].join('\n'));
  return {
    address: `unix:${socket}`,
    program: 'pulseaudio',
    args: ['-n', '--daemonize=no', '--exit-idle-time=-1', '--use-pid-file=no', '--realtime=no', '--log-target=stderr', '-F', script],
    env: { PULSE_RUNTIME_PATH: dir, PULSE_STATE_PATH: dir, PULSE_COOKIE: path.join(dir, 'cookie') },
  };
}

/** `pactl` against `address`. */
export const pactlAt = (address) => (...args) =>
  spawnSync('pactl', args, { env: { ...process.env, PULSE_SERVER: address }, encoding: 'utf8', timeout: 5000 });

