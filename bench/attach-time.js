#!/usr/bin/env node
// bizprobe bench: time from exec of `bizprobe trace --pid PID` to its stderr line "bizprobe: attached:".
//   node bench/attach-time.js BIZPROBE PID TRIALS
// One JSON line: every trial in ms, and the median. The clock starts just before spawn() and
// stops when the line arrives on the pipe; bizprobe is then stopped with SIGINT and awaited.
'use strict';
const { spawn } = require('child_process');
const [bin, pid, trialsArg] = process.argv.slice(2);
const trials = Number(trialsArg || 5);

function once() {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(bin, ['trace', '--pid', pid], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '', ms = null;
    const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
    child.stderr.on('data', (d) => {
      err += d;
      if (ms === null && err.includes('bizprobe: attached:')) {
        ms = Number(process.hrtime.bigint() - t0) / 1e6;
        child.kill('SIGINT');
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      if (ms === null) reject(new Error('no "bizprobe: attached:" line: ' + err.trim()));
      else resolve(ms);
    });
  });
}

(async () => {
  const ms = [];
  for (let i = 0; i < trials; i++) {
    ms.push(await once());
    await new Promise((r) => setTimeout(r, 200));
  }
  const sorted = [...ms].sort((a, b) => a - b);
  console.log(JSON.stringify({ trials: ms.map((x) => Math.round(x * 10) / 10), median_ms: Math.round(sorted[Math.floor(sorted.length / 2)] * 10) / 10 }));
})().catch((e) => { console.error('attach-time: ' + e.message); process.exit(1); });
