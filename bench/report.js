#!/usr/bin/env node
// bizprobe bench: turns bench/run.sh's results.tsv into the table (stdout) and RESULTS.md.
//   node bench/report.js --results FILE --work DIR --out FILE [--seconds N] [--load-before L]
//        [--load-after L] [--rounds N] [--duration S]
// Ratios are computed within each round (same round, adjacent measurements) and the median of
// the per-round ratios is reported.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execSync } = require('child_process');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const rows = fs.readFileSync(args.results, 'utf8').split('\n').filter(Boolean).map((l) => {
  const [wl, round, cfg, key, ...rest] = l.split('\t');
  return { wl, round: Number(round), cfg: Number(cfg), key, value: rest.join('\t') };
});
const NAMES = { 1: 'untraced', 2: 'empty-probe floor', 3: 'bizprobe run', 4: 'bpftrace', 5: 'in-app prom-client' };

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const get = (wl, round, cfg, key) => {
  const r = rows.find((x) => x.wl === wl && x.round === round && x.cfg === cfg && x.key === key);
  return r ? Number(r.value) : NaN;
};
const rounds = (wl) => [...new Set(rows.filter((x) => x.wl === wl && x.round > 0).map((x) => x.round))].sort((a, b) => a - b);
const perRound = (wl, fn) => rounds(wl).map((r) => fn(r)).filter((x) => Number.isFinite(x));
const ratio = (wl, key, a, b) => perRound(wl, (r) => get(wl, r, a, key) / get(wl, r, b, key));
const pct = (x) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : 'n/a');
const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const list = (xs, f) => xs.map(f).join(', ');
const sh = (cmd) => { try { return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return 'n/a'; } };
const readWork = (f) => { try { return fs.readFileSync(path.join(args.work, f), 'utf8').trim(); } catch { return ''; } };

const table = [];
const add = (figure, target, measured, met, detail) => table.push({ figure, target, measured, met, detail });
const verdict = (b) => (b === null ? 'n/a' : b ? 'met' : '**MISSED**');

// The share of the traced server's CPU in the tracers' kernel paths (rec H, bench/tracer-share.awk):
// median over the rounds, in percent.
const share = (wl, cfg) => median(rows.filter((x) => x.wl === 'H' && x.cfg === cfg && x.key === `share_${wl}`).map((x) => Number(x.value)));
const shares = (wl) => `bizprobe ${fmt(share(wl, 3))}%, floor ${fmt(share(wl, 2))}%, bpftrace ${fmt(share(wl, 4))}%, untraced ${fmt(share(wl, 1))}%`;
// A against the floor: what bizprobe's programs add to the traps both pay.
const shareNoteA = () => (Number.isFinite(share('A', 3))
  ? `; by construction (perf: the server's CPU in tracer kernel paths): ${shares('A')}; bizprobe's programs add ${fmt(share('A', 3) - share('A', 2))} points to the floor's`
  : '');
// B against untraced: the share is a lower bound of the cost (trap delivery and cache effects
// outside the sampled stacks only add to it).
const shareNoteB = () => (Number.isFinite(share('B', 3))
  ? `; by construction (perf: the server's CPU in tracer kernel paths): ${shares('B')}; bizprobe costs this server at least ${fmt(share('B', 3))}% of its CPU, the floor alone ${fmt(share('B', 2))}%`
  : '');

// A
let xs = ratio('A', 'rps', 3, 2);
add('A throughput, bizprobe vs empty-probe floor', '>= 95%', pct(median(xs)), xs.length ? median(xs) >= 0.95 : null, `rounds: ${list(xs, pct)}${shareNoteA()}`);
xs = ratio('A', 'rps', 3, 4);
add('A throughput, bizprobe vs bpftrace', '>= 100%', pct(median(xs)), xs.length ? median(xs) >= 1.0 : null, `rounds: ${list(xs, pct)}`);
// B
xs = ratio('B', 'rps', 3, 1);
add('B throughput, bizprobe vs untraced', '>= 97%', pct(median(xs)), xs.length ? median(xs) >= 0.97 : null, `rounds: ${list(xs, pct)}${shareNoteB()}`);
xs = ratio('B', 'rps', 3, 5);
add('B throughput, bizprobe vs in-app prom-client', '>= 100%', pct(median(xs)), xs.length ? median(xs) >= 1.0 : null, `rounds: ${list(xs, pct)}`);
// C
const cRate = get('C', 0, 0, 'rate'), dRate = get('D', 0, 0, 'rate');
const added = (cfg, key, wl = 'C') => perRound(wl, (r) => get(wl, r, cfg, key) - get(wl, r, 1, key));
const a99 = added(3, 'p99_us'), a50 = added(3, 'p50_us');
add('C added p99 latency (at half of A\'s untraced capacity)', '<= 50 us', `${fmt(median(a99))} us (p50 +${fmt(median(a50))} us)`, a99.length ? median(a99) <= 50 : null,
  `at ${cRate} req/s; rounds p99: ${list(a99, (x) => fmt(x))} us`);
const d99 = added(3, 'p99_us', 'D'), d50 = added(3, 'p50_us', 'D');
if (d99.length) add('C added p99 latency (at half of the slowest configuration\'s capacity)', '<= 50 us', `${fmt(median(d99))} us (p50 +${fmt(median(d50))} us)`, median(d99) <= 50,
  `at ${dRate} req/s, no configuration saturated; rounds p99: ${list(d99, (x) => fmt(x))} us`);
// The userspace stages alone (bench/pipeline_bench.c): ns per exchange, no BPF, no kernel.
function pipelineDetail() {
  const pj = (w) => { const r = rows.find((x) => x.wl === 'U' && x.key === w); return r ? JSON.parse(r.value) : null; };
  const a = pj('A'), b = pj('B');
  if (!a || !b) return '';
  return `; the userspace stages alone (bench/pipeline_bench.c, the same bytes replayed, no BPF; median of ${a.repetitions}): A ${Math.round(a.ns_per_exchange_median)} ns, B ${Math.round(b.ns_per_exchange_median)} ns per exchange (${fmt(a.ns_per_exchange_median / 1000, 2)}% and ${fmt(b.ns_per_exchange_median / 1000, 2)}% of a core per 10k/s)`;
}
// CPU per 10k exchanges/s, from config 3 of A and B
const cpuPer10k = (wl) => perRound(wl, (r) => {
  const cpu = get(wl, r, 3, 'cpu_s'), wall = get(wl, r, 3, 'wall_s'), ex = get(wl, r, 3, 'exchanges');
  return ex > 0 ? ((cpu / wall) * 100) / (ex / wall / 10000) : NaN;
});
const cpuA = cpuPer10k('A'), cpuB = cpuPer10k('B');
const exRate = (wl) => median(perRound(wl, (r) => get(wl, r, 3, 'exchanges') / get(wl, r, 3, 'wall_s')));
const cpuFrac = (wl) => median(perRound(wl, (r) => get(wl, r, 3, 'cpu_s') / get(wl, r, 3, 'wall_s')));
add('bizprobe CPU per 10k exchanges/s', '<= 2% of a core', `${fmt(median(cpuA), 2)}% (A), ${fmt(median(cpuB), 2)}% (B)`,
  cpuA.length ? median(cpuA) <= 2 && (!cpuB.length || median(cpuB) <= 2) : null,
  `A: ${fmt(cpuFrac('A') * 100)}% of a core at ${fmt(exRate('A'), 0)} exchanges/s; B: ${fmt(cpuFrac('B') * 100)}% at ${fmt(exRate('B'), 0)} exchanges/s (${fmt(exRate('B') / median(perRound('B', (r) => get('B', r, 3, 'rps'))), 2)} per tip: the inbound request and its 2 Stripe calls, plus the stand-in's webhooks, which it delivers one at a time 20 ms apart: a steady ~45/s in every configuration)` +
  pipelineDetail());
// RSS
const hwm = rows.filter((x) => x.key === 'hwm_kib').map((x) => Number(x.value));
const maxHwm = hwm.length ? Math.max(...hwm) / 1024 : NaN;
add('bizprobe RSS under load (VmHWM)', '<= 32 MiB', `${fmt(maxHwm)} MiB`, hwm.length ? maxHwm <= 32 : null,
  `max over the bizprobe runs of A, B, C; medians A ${fmt(median(perRound('A', (r) => get('A', r, 3, 'hwm_kib'))) / 1024)} MiB, B ${fmt(median(perRound('B', (r) => get('B', r, 3, 'hwm_kib'))) / 1024)} MiB`);
// Loss: run 1 the target (nginx, default ring buffer), 2 forced (--ringbuf 4096), 3 the TLS path
const L = (r, k) => get('L', r, r === 0 ? 0 : 3, k);
const Ls = (k) => { const r = rows.find((x) => x.wl === 'L' && x.round === 0 && x.key === k); return r ? r.value : 'n/a'; };
const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
if (Number.isFinite(L(1, 'exchanges'))) {
  const secs = L(1, 'seconds'), depth = L(0, 'depth'), conns = L(0, 'connections');
  const bizRate = L(1, 'exchanges') / secs, wrkRate = L(1, 'rps');
  const rate = Math.min(bizRate, wrkRate);
  // per-second rates from the 1 s scrapes of bizprobe_exchanges_total{role="server"} during the load
  const t0 = L(1, 't0'), t1 = L(1, 't1');
  const samples = readWork('loss-samples.txt').split('\n').map((l) => l.split(' ').map(Number))
    .filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v) && t >= t0 && t <= t1);
  const perSec = samples.slice(1).map(([t, v], k) => (v - samples[k][1]) / (t - samples[k][0]));
  const lost = L(1, 'lost'), forced = L(2, 'lost');
  let met;
  if (lost !== 0 || !(forced > 0)) met = false;
  else if (!(secs >= 59.9)) met = null; // a shorter run (smoke, BENCH_LOSS_SECONDS) does not judge the 60 s target
  else met = rate >= 50000;
  const load = depth > 1 ? `pipelined ${depth} deep` : 'one request per round trip';
  add('lost events at 50k exchanges/s for 60 s', '0 (counted when forced)',
    `${int(lost)} lost (${int(L(1, 'lost_bytes'))} bytes) at ${int(bizRate)}/s by bizprobe (wrk ${int(wrkRate)}/s) for ${fmt(secs)} s, ` +
    `${Ls('server')} plaintext, ${load}; forced: ${int(forced)} events, ${int(L(2, 'lost_bytes'))} bytes counted`,
    met,
    `${Ls('server')} (one process, CPU 0) returning a 3-byte 200, wrk -t1 -c${conns} ${load} (CPU 1), \`bizprobe run\` with the default ring buffer (CPU 1); ` +
    `bizprobe counted ${int(L(1, 'exchanges'))} server exchanges, wrk ${int(L(1, 'wrk_requests'))} responses ` +
    `(difference ${int(L(1, 'exchanges') - L(1, 'wrk_requests'))}: answers to requests still in flight when wrk stopped, at most ${int(conns * depth)}), ` +
    `${int(L(1, 'bad'))} wrk errors, ${int(L(1, 'parse_errors'))} parse errors; ${int(L(1, 'records') / secs)} ring-buffer records/s (${fmt(L(1, 'records') / L(1, 'exchanges'), 2)} per exchange); ` +
    `per-second rate from the 1 s scrapes: min ${int(Math.min(...perSec))}, median ${int(median(perSec))} over ${perSec.length} intervals; ` +
    `forced run: --ringbuf 4096, same load for ${fmt(L(2, 'seconds'))} s at ${int(L(2, 'rps'))} req/s, ${int(L(2, 'exchanges'))} exchanges still assembled, ${int(L(2, 'parse_errors'))} parse errors; ` +
    (Number.isFinite(L(3, 'exchanges'))
      ? `TLS path (A's node HTTPS server, OpenSSL uprobes, wrk -t1 -c${conns} for ${fmt(L(3, 'seconds'))} s): ${int(L(3, 'exchanges') / L(3, 'seconds'))} exchanges/s, ${int(L(3, 'lost'))} lost (${int(L(3, 'lost_bytes'))} bytes)`
      : 'TLS path not run'));
} else add('lost events at 50k exchanges/s for 60 s', '0 (counted when forced)', 'n/a', null, 'not run');
// Render
const rj = (k) => { const r = rows.find((x) => x.wl === 'R' && x.key === k); return r ? JSON.parse(r.value) : null; };
const flat = rj('flat'), mixed = rj('mixed');
if (flat && mixed) {
  add('/metrics render at 2,000 series', '<= 5 ms', `${fmt(flat.median_ms, 2)} ms (counters+gauges), ${fmt(mixed.median_ms, 2)} ms (with 400 histograms)`,
    flat.median_ms <= 5 && mixed.median_ms <= 5,
    `median of ${flat.iterations}; flat ${flat.bytes} bytes, p90 ${fmt(flat.p90_ms, 2)} ms; mixed ${mixed.bytes} bytes (7,600 sample lines), p90 ${fmt(mixed.p90_ms, 2)} ms`);
} else add('/metrics render at 2,000 series', '<= 5 ms', 'n/a', null, 'not run');
// Attach
const at = rows.find((x) => x.wl === 'T' && x.key === 'attach_json');
if (at) {
  const j = JSON.parse(at.value);
  add('attach to a running node process', '<= 500 ms', `${fmt(j.median_ms)} ms`, j.median_ms <= 500, `median of ${j.trials.length}: ${j.trials.join(', ')} ms`);
} else add('attach to a running node process', '<= 500 ms', 'n/a', null, 'not run');
// Idle: not one of the targets, but what every quiet node of a DaemonSet pays.
const idleS = get('I', 1, 3, 'seconds');
if (Number.isFinite(idleS)) {
  const cpu = get('I', 1, 3, 'cpu_s'), sw = get('I', 1, 3, 'switches');
  add('bizprobe CPU with the traced app idle', '(none)', `${fmt((100 * cpu) / idleS, 3)}% of a core`, null,
    `attached to A's server with no requests for ${fmt(idleS, 0)} s, /metrics scraped every 1 s; ${fmt(sw / idleS)} thread switches/s (schedstat and status of every thread)`);
}
const nodeS = get('N', 1, 3, 'seconds');
if (Number.isFinite(nodeS)) {
  const cpu = get('N', 1, 3, 'cpu_s'), examined = get('N', 1, 3, 'examined');
  add('bizprobe CPU in node mode, nothing selected', '(none)', `${fmt((100 * cpu) / nodeS, 3)}% of a core`, null,
    `\`run --node\` beside ${int(get('N', 1, 3, 'processes'))} idle processes for ${fmt(nodeS, 0)} s: ${fmt(examined / nodeS, 2)} processes examined per second (their /proc files read); the look once a second lists the host's processes from a BPF task iterator`);
}

// Bystanders: processes bizprobe does not trace, on the same host. Throughput ratio per round =
// the time with no bizprobe over the time with the configuration's bizprobe (bench/run.sh).
const BYS = { 2: '`run --pid` elsewhere (socket hooks auto: libc)', 3: '`run --exe` elsewhere', 4: 'syscall hooks\' floor (`trace --pid --empty-probes --socket-hooks syscalls`)', 5: '`run --pid --socket-hooks syscalls` elsewhere', 6: '`run --node --select comm=node` elsewhere (node\'s processes through their libc)' };
const bys = (key, cfg) => perRound('Y', (r) => get('Y', r, 1, key) / get('Y', r, cfg, key));
const bysDetail = [];
for (const cfg of [1, 2, 3, 4, 5, 6]) {
  const dd = perRound('Y', (r) => get('Y', r, cfg, 'dd_s')), tls = perRound('Y', (r) => get('Y', r, cfg, 'tls_s'));
  if (!dd.length) continue;
  bysDetail.push(`| ${cfg === 1 ? 'no bizprobe' : BYS[cfg]} | ${fmt(median(dd), 3)} s | ${cfg === 1 ? '-' : pct(median(bys('dd_s', cfg)))} | ${fmt(median(tls), 3)} s | ${cfg === 1 ? '-' : pct(median(bys('tls_s', cfg)))} |`);
}
if (bysDetail.length) {
  const dd2 = median(bys('dd_s', 2)), tls2 = median(bys('tls_s', 2));
  add('syscall-bound bystander (dd bs=1), bizprobe run --pid elsewhere', '>= 95%', pct(dd2), dd2 >= 0.95,
    `dd's throughput with bizprobe attached to another process over without (the default socket hooks, auto, are libc's for a node target: no syscall tracepoint); per round ${list(bys('dd_s', 2), pct)}; --exe ${pct(median(bys('dd_s', 3)))}`);
  const dd5 = median(bys('dd_s', 5));
  add('syscall-bound bystander (dd bs=1), bizprobe run --pid --socket-hooks syscalls elsewhere', '(none)', pct(dd5), null,
    `the raw syscall tracepoints, which --exe and processes that bypass libc need; per round ${list(bys('dd_s', 5), pct)}; their floor (empty programs) ${pct(median(bys('dd_s', 4)))}`);
  const dd6 = median(bys('dd_s', 6));
  if (Number.isFinite(dd6))
    add('syscall-bound bystander (dd bs=1), bizprobe run --node elsewhere', '>= 95%', pct(dd6), dd6 >= 0.95,
      `node mode (the DaemonSet) selecting the idle node process by comm: its sockets through its libc, no syscall tracepoint; per round ${list(bys('dd_s', 6), pct)}; TLS bystander ${pct(median(bys('tls_s', 6)))}`);
  add('TLS bystander on the same libssl, bizprobe run --pid elsewhere', '>= 99%', pct(tls2), tls2 >= 0.99,
    `per round ${list(bys('tls_s', 2), pct)}; --exe ${pct(median(bys('tls_s', 3)))} (with --exe the OpenSSL probes sit in every process's libssl)`);
}

// Per-configuration detail
const detail = [];
for (const wl of ['A', 'B']) {
  for (const cfg of [1, 2, 3, 4, 5]) {
    const rps = perRound(wl, (r) => get(wl, r, cfg, 'rps'));
    if (!rps.length) continue;
    const rel = ratio(wl, 'rps', cfg, 1);
    const badN = perRound(wl, (r) => get(wl, r, cfg, 'bad')).reduce((a, b) => a + b, 0);
    detail.push(`| ${wl} | ${NAMES[cfg]} | ${fmt(median(rps), 0)} req/s | ${pct(median(rel))} | ${list(rps, (x) => fmt(x, 0))} | ${badN} |`);
  }
}
const cdetail = [];
for (const wl of ['C', 'D']) for (const cfg of [1, 2, 3, 4, 5]) {
  const p50 = perRound(wl, (r) => get(wl, r, cfg, 'p50_us')), p99 = perRound(wl, (r) => get(wl, r, cfg, 'p99_us'));
  if (!p50.length) continue;
  const d50 = added(cfg, 'p50_us', wl), d99 = added(cfg, 'p99_us', wl);
  cdetail.push(`| ${wl === 'C' ? cRate : dRate} | ${NAMES[cfg]} | ${fmt(median(p50))} | ${fmt(median(p99))} | ${cfg === 1 ? '-' : fmt(median(d50))} | ${cfg === 1 ? '-' : fmt(median(d99))} | ${list(p99, (x) => fmt(x, 0))} |`);
}

const mainTable = ['| figure | target | measured | verdict |', '| --- | --- | --- | --- |',
  ...table.map((t) => `| ${t.figure} | ${t.target} | ${t.measured} | ${verdict(t.met)} |`)].join('\n');
const cpuModel = (os.cpus()[0] || {}).model || 'n/a';
const env = [
  `- date: ${fs.statSync(args.results).mtime.toISOString()} (the last measurement); commit ${sh('git describe --always --dirty')}`,
  `- kernel: ${sh('uname -r')}; CPU: ${cpuModel}, ${os.cpus().length} CPUs; ${sh('lsb_release -ds 2>/dev/null || . /etc/os-release && echo $PRETTY_NAME')}`,
  `- node ${process.version}; ${sh('build/bizprobe version')}; ${sh('wrk -v 2>&1 | head -1').split(' [')[0]}; ${sh('bpftrace --version')}`,
  `- ${args.rounds} rounds x ${args.duration} s per measurement, configurations alternated 1-5 in every round; run took ${Math.round(Number(args.seconds) / 60)} min`,
  `- load average before / after: ${args['load-before']} / ${args['load-after']} (1-minute load before the run: near 0 means nothing else was running; the bench itself keeps both CPUs busy)`,
].join('\n');

const out = [];
out.push(`# bizprobe overhead bench: results`, '', `Generated by \`make bench\` (bench/run.sh; method in bench/README.md).`, '', env, '', '## Targets', '', mainTable, '');
out.push('Detail per figure:', '', ...table.map((t) => `- ${t.figure}: ${t.detail}`), '');
out.push('## Throughput per configuration (medians; ratio = median of per-round ratios to untraced)', '',
  '| workload | configuration | req/s | vs untraced | per round | non-2xx/errors |', '| --- | --- | --- | --- | --- | --- |', ...detail, '');
out.push(`## Workload C: latency at a fixed rate, microseconds (${cRate} req/s = half of A's untraced capacity; ${dRate} req/s = half of the slowest configuration's)`, '',
  '| req/s | configuration | p50 | p99 | added p50 | added p99 | p99 per round |', '| --- | --- | --- | --- | --- | --- | --- |', ...cdetail, '');
if (bysDetail.length) {
  out.push('## Bystanders: what processes bizprobe does not trace pay (medians of the rounds; ratio = throughput vs no bizprobe)', '',
    '| bizprobe | dd bs=1 time | dd vs none | TLS GETs time | TLS vs none |', '| --- | --- | --- | --- | --- |', ...bysDetail, '');
}
const fm = readWork('forced-metrics.txt');
if (fm) out.push('## Forced loss (--ringbuf 4096): bizprobe\'s own counters after the run', '', '```', fm, '```', '');
const pb = readWork('profile-bizprobe.txt'), ps = readWork('profile-server.txt'), pbpf = readWork('profile-server-bpf.txt');
if (pb || ps) {
  out.push('## Profiles (perf record -g, A at saturation with `bizprobe run` attached)', '',
    'bizprobe process (self time by object and symbol):', '', '```', pb, '```', '',
    'traced node server (self time):', '', '```', ps, '```', '',
    'traced node server, BPF/uprobe path (time including children):', '', '```', pbpf, '```', '');
}
const pbb = readWork('profile-bizprobe-b.txt');
if (pbb) {
  out.push('bizprobe process under B at saturation (self time by object and symbol):', '', '```', pbb, '```', '');
}
const sa = readWork('share-bizprobe-A.txt'), sb = readWork('share-bizprobe-B.txt');
if (sa || sb) {
  out.push('## Where bizprobe\'s share of the server\'s CPU goes (perf record -g of the server, time including children)', '',
    'The uprobe traps (asm_exc_int3, the uretprobe syscall) and the syscall tracepoints\' slow entry and exit',
    'are paid by the empty-probe floor as well; the bpf_prog_ lines are bizprobe\'s own programs.', '',
    'A (node HTTPS, trivial handler):', '', '```', sa, '```', '', 'B (the demo\'s payment route):', '', '```', sb, '```', '');
}
const BPFCOST = { A: 'A (node HTTPS, node\'s own OpenSSL)', B: 'B (the demo app\'s payment route)', P: 'P (a Python HTTPS server on libssl.so.3, one connection)' };
const bpfcost = Object.keys(BPFCOST).filter((wl) => readWork(`bpfcost-${wl}-3.txt`));
if (bpfcost.length) {
  out.push('## What fires, and BPF time per request (at saturation, kernel.bpf_stats_enabled, its own short runs)', '',
    'Run count and run time of each program divided by the requests wrk completed; the raw syscall',
    'tracepoints fire for every syscall of every process (wrk\'s too), and return at once for the ones',
    'that are not traced. The statistics add two clock reads to every run, which the empty-probe floor',
    'carries as well: bizprobe\'s own work is the difference.', '');
  for (const wl of bpfcost) {
    out.push(`${BPFCOST[wl]}, empty-probe floor:`, '', '```', readWork(`bpfcost-${wl}-2.txt`), '```', '',
      `${BPFCOST[wl]}, bizprobe run:`, '', '```', readWork(`bpfcost-${wl}-3.txt`), '```', '');
  }
}
const analysis = path.join(__dirname, 'ANALYSIS.md');
if (fs.existsSync(analysis)) out.push(fs.readFileSync(analysis, 'utf8').trim(), '');
fs.writeFileSync(args.out, out.join('\n'));

console.log(`\nbizprobe bench -- ${sh('uname -r')}, ${cpuModel}\n`);
console.log(mainTable);
console.log(`\n(written to ${args.out})`);
