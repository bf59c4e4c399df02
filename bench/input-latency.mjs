// Input latency inside the agent: a controller page sends pointer motion as
// fast as its timers allow (setTimeout(2) clamps to ~4 ms, ~240 Hz) for 5 s;
// prints the agent's /metrics summary of data-channel arrival → injection
// call done.
// Usage: node bench/input-latency.mjs CONTROLLER_LINK_URL http://HOST:PORT/metrics
import fs from 'node:fs';
import { chromium } from 'playwright-core';
const [url, metricsUrl] = process.argv.slice(2);
const ctx = await chromium.launchPersistentContext(fs.mkdtempSync('/tmp/oriel-lat-'), {executablePath:'/usr/bin/chromium', headless:true, args:['--headless','--no-sandbox','--disable-gpu','--disable-quic','--no-first-run','--disable-background-networking','--disable-component-update','--disable-sync','--autoplay-policy=no-user-gesture-required']});
const p = await ctx.newPage(); await p.goto(url);
await p.waitForFunction(() => window.oriel.inputReady(), null, {timeout: 20000});
const sent = await p.evaluate(async () => {
  let n = 0; const t0 = performance.now();
  while (performance.now() - t0 < 5000) {
    const x = (n * 97) % 65536, y = (n * 51) % 65536;
    window.oriel.sendInput('motion', [1, 0x10, x & 255, x >> 8, y & 255, y >> 8]); n++;
    await new Promise(r => setTimeout(r, 2));
  }
  return n;
});
await new Promise(r => setTimeout(r, 500));
const m = await (await fetch(metricsUrl)).text();
console.log('sent', sent, 'in 5 s');
console.log(m.split('\n').filter(l => /oriel_input_(latency|injected)/.test(l) && !l.startsWith('#')).join('\n'));
await ctx.close();
