// bizprobe status page: polls /api/status (the session cookie goes along by itself) and
// renders it. No framework and no network access beyond this host: it works offline. Values
// are written with textContent only (event names and labels are data, never markup), and each
// figure keeps the number it shows in data-value.
'use strict';
(function () {
  const POLL_MS = 5000;
  const SVG = 'http://www.w3.org/2000/svg';
  const ZERO_DECIMAL = new Set(['BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG',
    'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF']);

  const $ = (id) => document.getElementById(id);
  const isNum = (v) => typeof v === 'number' && isFinite(v);
  const count = (v) => (isNum(v) ? String(Math.round(v)) : '–');
  const money = (v, cur) => v.toFixed(ZERO_DECIMAL.has(cur) ? 0 : 2) + ' ' + cur;
  const percent = (v) => (isNum(v) ? v.toFixed(1) + ' %' : '–');

  function put(id, v, text) {
    const el = $(id);
    if (!el) return;
    el.dataset.value = isNum(v) ? String(v) : (typeof v === 'boolean' ? String(v) : '');
    el.textContent = text;
  }

  function moneyList(id, obj, field) {
    const ul = $(id);
    const rows = Object.keys(obj || {}).sort().map((cur) => {
      const v = field ? obj[cur][field] : obj[cur];
      const li = document.createElement('li');
      li.dataset.currency = cur;
      li.dataset.value = String(v);
      li.textContent = money(v, cur);
      return li;
    });
    if (!rows.length) {
      const li = document.createElement('li');
      li.className = 'muted';
      li.textContent = 'none yet';
      rows.push(li);
    }
    ul.replaceChildren(...rows);
  }

  function bars(svg, series, classes) {
    // As wide as it is drawn, so that bars fill the card and text keeps its size.
    const w = Math.max(svg.clientWidth || 840, 120), h = 120, top = 12, bottom = 16;
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    const n = series[0].length;
    let max = 1;
    for (let i = 0; i < n; i++) {
      max = Math.max(max, series.reduce((s, a) => s + a[i], 0));
    }
    const bw = w / n;
    const nodes = [];
    for (let i = 0; i < n; i++) {
      let y = h - bottom;
      series.forEach((a, k) => {
        if (!a[i]) return;
        const bh = (a[i] / max) * (h - top - bottom);
        y -= bh;
        const r = document.createElementNS(SVG, 'rect');
        r.setAttribute('x', (i * bw + 1).toFixed(1));
        r.setAttribute('y', y.toFixed(1));
        r.setAttribute('width', Math.max(bw - 2, 1).toFixed(1));
        r.setAttribute('height', bh.toFixed(1));
        r.setAttribute('class', classes[k]);
        const t = document.createElementNS(SVG, 'title');
        t.textContent = a[i];
        r.appendChild(t);
        nodes.push(r);
      });
    }
    const axis = document.createElementNS(SVG, 'line');
    axis.setAttribute('x1', 0); axis.setAttribute('x2', w);
    axis.setAttribute('y1', h - bottom); axis.setAttribute('y2', h - bottom);
    axis.setAttribute('class', 'axis');
    nodes.push(axis);
    [['−10 min', 2, 'start'], ['now', w - 2, 'end']].forEach(([s, x, anchor]) => {
      const t = document.createElementNS(SVG, 'text');
      t.setAttribute('x', x); t.setAttribute('y', h - 3);
      t.setAttribute('text-anchor', anchor);
      t.textContent = s;
      nodes.push(t);
    });
    const peak = document.createElementNS(SVG, 'text');
    peak.setAttribute('x', 2); peak.setAttribute('y', 10);
    peak.textContent = 'max ' + max;
    nodes.push(peak);
    svg.replaceChildren(...nodes);
  }

  function events(list, seen) {
    const tbody = $('events').tBodies[0];
    const rows = (list || []).map((e) => {
      const tr = document.createElement('tr');
      tr.className = 'event';
      const time = document.createElement('td');
      time.textContent = new Date(e.time_ms).toLocaleTimeString();
      time.dataset.value = String(e.time_ms);
      const name = document.createElement('td');
      name.className = 'name';
      name.textContent = e.name;
      const labels = document.createElement('td');
      labels.className = 'labels';
      Object.keys(e.labels || {}).sort().forEach((k) => {
        const s = document.createElement('span');
        s.dataset.label = k;
        s.dataset.value = e.labels[k];
        s.textContent = k + '=' + e.labels[k];
        labels.appendChild(s);
      });
      tr.append(time, name, labels);
      return tr;
    });
    if (!rows.length) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = 3; td.className = 'muted'; td.textContent = 'none yet';
      tr.appendChild(td);
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
    put('events-seen', seen, isNum(seen) ? '(' + seen + ' since start, last ' +
      (list || []).length + ' shown)' : '');
  }

  function render(s) {
    const p = s.payments || {};
    put('payments-succeeded', p.succeeded, count(p.succeeded));
    put('payments-total', p.total, count(p.total));
    put('payments-failed', p.failed, count(p.failed));
    put('success-rate', p.success_rate, percent(p.success_rate));
    moneyList('revenue', s.revenue, 'amount');
    moneyList('mrr', s.mrr, null);
    const u = s.users || {}, active = u.active || {};
    put('active-24h', active['24h'], count(active['24h']));
    put('active-7d', active['7d'], count(active['7d']));
    put('active-30d', active['30d'], count(active['30d']));
    put('registrations', u.registrations, count(u.registrations));
    put('total-users', u.total, count(u.total));

    const sum = (s.summary && s.summary.summary) || {};
    put('sum-total-users', sum.totalUsers, count(sum.totalUsers));
    put('sum-active-users', sum.activeUsers, count(sum.activeUsers));
    put('sum-new-users', sum.newUsers, count(sum.newUsers));
    put('sum-registrations', sum.registrations, count(sum.registrations));
    put('sum-conversion', sum.conversionRate, percent(sum.conversionRate));
    const byCur = sum.monthlyRecurringRevenueByCurrency || {};
    const mrrText = Object.keys(byCur).sort().map((c) => money(byCur[c], c)).join(', ');
    put('sum-mrr', sum.monthlyRecurringRevenue, mrrText || (isNum(sum.monthlyRecurringRevenue)
      ? sum.monthlyRecurringRevenue.toFixed(2) : '–'));

    const h = s.health || {};
    put('h-attached', h.attached, h.attached === undefined ? '–' : (h.attached ? 'yes' : 'NO'));
    $('h-attached').classList.toggle('bad', h.attached === false);
    put('h-traced', h.traced_processes, count(h.traced_processes));
    put('h-tls', h.tls_files_attached, count(h.tls_files_attached));
    put('h-exchanges', h.exchanges, count(h.exchanges));
    [['h-events-lost', h.events_lost], ['h-parse-errors', h.http_parse_errors],
      ['h-stripe-parse-errors', h.stripe_parse_errors], ['h-dropped', h.exchanges_dropped]]
      .forEach(([id, v]) => { put(id, v, count(v)); $(id).classList.toggle('bad', v > 0); });

    const hist = s.history;
    if (hist) {
      bars($('chart-payments'), [hist.payments_succeeded, hist.payments_failed], ['ok', 'bad']);
      bars($('chart-events'), [hist.events], ['ev']);
    }
    events(s.events, s.events_seen);
    put('updated', s.time_ms, 'updated ' + new Date().toLocaleTimeString());
    document.body.dataset.loaded = String(s.time_ms);
  }

  async function poll() {
    try {
      const r = await fetch('/api/status', { cache: 'no-store', credentials: 'same-origin' });
      if (r.status === 401) {
        location.replace('/'); // the session is gone (bizprobe restarted): sign in again
        return;
      }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      render(await r.json());
      $('stale').hidden = true;
    } catch (e) {
      $('stale').hidden = false;
    }
    setTimeout(poll, POLL_MS);
  }
  poll();
})();
