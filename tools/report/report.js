/* refgc report — draws the page from the JSON data in #report-data (embedded into the page by
 * tools/cmd_report.c, which computes everything; this script only lays it out):
 *   - the summary of the last snapshot and the list of snapshots;
 *   - memory over time: an inline SVG plot of RSS, heap committed, heap in use and traced
 *     memory, with axes, a legend that hides and shows series, a mark at each snapshot and a
 *     tooltip with the values under the pointer;
 *   - the flame graph (an icicle: outermost frame at the top) of absolutely positioned divs,
 *     widths in percent of the zoomed frame; click zooms, the search box highlights frames
 *     and tells their share (nested matches counted once);
 *   - sortable tables (click a header), the leak suspects with their retaining chains, growth
 *     and changes across snapshots, and the collector's statistics.
 * Plain ES2017, no libraries, no network. Text from the data is only ever set as text, never
 * as HTML. */
(function () {
  'use strict';

  const SVGNS = 'http://www.w3.org/2000/svg';
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const snaps = data.snapshots || [];
  const last = snaps[snaps.length - 1] || {};

  /* ---- formatting ------------------------------------------------------------------------ */

  const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

  function fmtBytes(b) {
    const neg = b < 0;
    let v = Math.abs(b);
    let u = 0;
    while (v >= 1024 && u < UNITS.length - 1) { v /= 1024; u++; }
    const s = u === 0 ? String(Math.round(v)) : v.toFixed(v < 10 ? 2 : 1);
    return (neg ? '-' : '') + s + ' ' + UNITS[u];
  }
  function fmtSignedBytes(b) { return (b > 0 ? '+' : '') + fmtBytes(b); }
  function fmtCount(n) {
    return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }
  function fmtSignedCount(n) { return (n > 0 ? '+' : '') + fmtCount(n); }
  function fmtPct(x) {
    if (!isFinite(x)) return '—';
    const p = x * 100;
    return (p !== 0 && Math.abs(p) < 0.1 ? p.toFixed(3) : p.toFixed(1)) + '%';
  }
  function fmtDate(epoch) {
    if (!epoch) return 'unknown';
    return new Date(epoch * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }
  function fmtSeconds(s) {
    if (!s) return '0 s';
    if (s < 1e-3) return (s * 1e6).toFixed(0) + ' µs';
    if (s < 1) return (s * 1e3).toFixed(s < 0.01 ? 2 : 1) + ' ms';
    if (s < 120) return s.toFixed(s < 10 ? 3 : 1) + ' s';
    return Math.floor(s / 60) + ' min ' + (s % 60).toFixed(0) + ' s';
  }
  function basename(p) { const i = String(p).lastIndexOf('/'); return i < 0 ? p : p.slice(i + 1); }

  /* ---- DOM helpers ----------------------------------------------------------------------- */

  /* el('div', {class: 'x', text: 'y', 'data-name': 'z'}, [children]) */
  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    appendAll(e, children);
    return e;
  }
  function sv(tag, attrs, children) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    appendAll(e, children);
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      const v = attrs[k];
      if (v === undefined || v === null || v === false) return;
      if (k === 'text') e.textContent = String(v);
      else e.setAttribute(k, String(v));
    });
  }
  function appendAll(e, children) {
    if (!children) return;
    (Array.isArray(children) ? children : [children]).forEach(function (c) {
      if (c === null || c === undefined || c === false) return;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function $(id) { return document.getElementById(id); }
  function empty(text) { return el('p', {class: 'empty', text: text}); }

  /* ---- tooltip --------------------------------------------------------------------------- */

  const tooltip = $('tooltip');
  /* rows: [title, [label, value, swatchClass?]...] */
  function showTooltip(evt, title, rows) {
    clear(tooltip);
    tooltip.appendChild(el('div', {class: 'tt-title', text: title}));
    rows.forEach(function (r) {
      const label = el('span', null, [r[2] ? el('span', {class: 'tt-swatch swatch ' + r[2]}) : null, r[0]]);
      tooltip.appendChild(el('div', {class: 'tt-row'}, [label, el('span', {text: r[1]})]));
    });
    tooltip.hidden = false;
    moveTooltip(evt);
  }
  function moveTooltip(evt) {
    const pad = 14;
    const w = tooltip.offsetWidth, h = tooltip.offsetHeight;
    let x = evt.clientX + pad, y = evt.clientY + pad;
    if (x + w > window.innerWidth - 4) x = Math.max(4, evt.clientX - w - pad);
    if (y + h > window.innerHeight - 4) y = Math.max(4, evt.clientY - h - pad);
    tooltip.style.left = x + 'px';
    tooltip.style.top = y + 'px';
  }
  function hideTooltip() { tooltip.hidden = true; }

  /* ---- sortable tables ------------------------------------------------------------------- */

  /* columns: [{key, label, type: 'text'|'bytes'|'count'|'sbytes'|'scount'|'pct'|'custom',
   *            value(row) -> sort value, render(row) -> node or string, cls}] */
  function makeTable(container, opts) {
    const rows = opts.rows.slice();
    if (!rows.length) {
      container.appendChild(empty(opts.empty || 'Nothing to show.'));
      return null;
    }
    const table = el('table', {class: 'data', id: opts.id || null});
    if (opts.caption) table.appendChild(el('caption', {text: opts.caption}));
    const thead = el('thead');
    const tr = el('tr');
    const tbody = el('tbody');
    let sortCol = -1, sortDir = 0;
    const numeric = {bytes: 1, count: 1, sbytes: 1, scount: 1, pct: 1, num: 1};
    function valueOf(c, r) {
      if (c.value) return c.value(r);
      return r[c.key];
    }
    function cellText(c, r) {
      const v = valueOf(c, r);
      switch (c.type) {
        case 'bytes': return fmtBytes(v);
        case 'sbytes': return fmtSignedBytes(v);
        case 'count': return fmtCount(v);
        case 'scount': return fmtSignedCount(v);
        case 'pct': return fmtPct(v);
        default: return v === undefined || v === null ? '' : String(v);
      }
    }
    function fill() {
      clear(tbody);
      rows.forEach(function (r, i) {
        const row = el('tr');
        opts.columns.forEach(function (c) {
          const cls = [];
          if (numeric[c.type]) cls.push('num');
          if (c.cls) cls.push(c.cls);
          if (c.type === 'sbytes' || c.type === 'scount') {
            const v = valueOf(c, r);
            if (v > 0) cls.push('pos'); else if (v < 0) cls.push('neg');
          }
          const td = el('td', {class: cls.join(' ') || null});
          if (c.render) appendAll(td, c.render(r, i));
          else td.textContent = cellText(c, r);
          row.appendChild(td);
        });
        tbody.appendChild(row);
      });
    }
    opts.columns.forEach(function (c, ci) {
      const sortable = c.sortable !== false;
      const th = el('th', {class: [numeric[c.type] ? 'num' : '', sortable ? 'sortable' : ''].join(' ').trim() || null,
                          text: c.label, scope: 'col', 'data-key': c.key || null});
      if (sortable) {
        th.tabIndex = 0;
        const sortBy = function () {
          if (sortCol === ci) sortDir = -sortDir;
          else { sortCol = ci; sortDir = numeric[c.type] ? -1 : 1; }
          Array.prototype.forEach.call(tr.children, function (h) { h.removeAttribute('aria-sort'); });
          th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
          rows.sort(function (a, b) {
            const x = valueOf(c, a), y = valueOf(c, b);
            let d;
            if (typeof x === 'number' && typeof y === 'number') d = x - y;
            else d = String(x).localeCompare(String(y));
            return d * sortDir;
          });
          fill();
        };
        th.addEventListener('click', sortBy);
        th.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sortBy(); } });
      }
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    table.appendChild(thead);
    table.appendChild(tbody);
    fill();
    container.appendChild(table);
    if (opts.note) container.appendChild(el('p', {class: 'more', text: opts.note}));
    return table;
  }

  function frameItem(f) {
    return el('li', null, [el('span', {class: 'mono', text: f.name}),
                           f.loc ? el('span', {class: 'loc', text: ' ' + f.loc}) : null,
                           !f.loc && f.module ? el('span', {class: 'loc', text: ' (' + f.module + ')'}) : null]);
  }
  function stackDetails(stack, label) {
    if (!stack || !stack.length) return el('span', {class: 'more', text: 'no traceback'});
    const d = el('details', {class: 'stack'});
    d.appendChild(el('summary', {text: label || (stack.length + ' frame' + (stack.length === 1 ? '' : 's'))}));
    d.appendChild(el('ol', {class: 'frames'}, stack.map(frameItem)));
    return d;
  }
  function shareBar(share) {
    const w = Math.max(1, Math.round(Math.min(1, share) * 80));
    return el('span', {class: 'bar', style: 'width:' + w + 'px'});
  }

  /* ---- summary --------------------------------------------------------------------------- */

  function renderSummary() {
    const box = $('summary-facts');
    if (!snaps.length) { box.appendChild(empty('No snapshot.')); return; }
    const s = last;
    const facts = [
      ['Program', s.program ? s.program : 'unknown'],
      ['Process', 'pid ' + s.pid],
      ['Taken', fmtDate(s.time)],
      ['Uptime at snapshot', fmtSeconds(s.uptime)],
      ['Snapshots', String(snaps.length)],
      ['Tracing', s.frames ? 'on, up to ' + s.frames + ' frame' + (s.frames === 1 ? '' : 's') : 'off'],
      ['Sampling', s.sample_bytes ? 'one allocation per ' + fmtBytes(s.sample_bytes) + ' on average (estimates)' : 'every allocation'],
      ['Traced memory', fmtBytes(s.traced_current) + ' (peak ' + fmtBytes(s.traced_peak) + ')'],
      ['Traces', fmtCount(s.trace_count)],
      ['Heap in use', fmtBytes(s.heap_in_use) + ' of ' + fmtBytes(s.heap_committed) + ' committed'],
      ['Resident set size', s.rss ? fmtBytes(s.rss) : 'unknown'],
      ['Tracer\u2019s own memory', fmtBytes(s.tracer_memory)],
      ['Live objects', fmtCount(s.objects)],
      ['Object graph', s.graph_nodes ? fmtCount(s.graph_nodes) + ' objects, ' + fmtCount(s.graph_edges) + ' references' : 'not recorded'],
    ];
    const dl = el('dl');
    facts.forEach(function (f) {
      dl.appendChild(el('div', {'data-fact': f[0]}, [el('dt', {text: f[0]}), el('dd', {text: f[1]})]));
    });
    box.appendChild(dl);
    if (snaps.length > 1) {
      makeTable($('snapshot-list'), {
        id: 'snapshot-table',
        caption: 'Snapshots, in the order they were taken (the last one is shown below)',
        rows: snaps.map(function (x, i) { return Object.assign({n: i + 1}, x); }),
        columns: [
          {key: 'n', label: '#', type: 'num'},
          {key: 'file', label: 'file', cls: 'key'},
          {key: 'time', label: 'taken', render: function (r) { return fmtDate(r.time); }},
          {key: 'uptime', label: 'uptime', type: 'num', render: function (r) { return fmtSeconds(r.uptime); }},
          {key: 'traced_current', label: 'traced', type: 'bytes'},
          {key: 'heap_in_use', label: 'heap in use', type: 'bytes'},
          {key: 'rss', label: 'RSS', type: 'bytes'},
          {key: 'trace_count', label: 'traces', type: 'count'},
          {key: 'objects', label: 'objects', type: 'count'},
        ],
      });
    }
    $('page-footer').textContent = 'Written by refgc report ' + (data.tool || '') +
      ' from ' + snaps.map(function (x) { return basename(x.file); }).join(', ') + '.';
  }

  /* ---- memory over time ------------------------------------------------------------------ */

  const SERIES = [
    {key: 'rss', label: 'RSS', cls: 'series-rss'},
    {key: 'committed', label: 'heap committed', cls: 'series-committed'},
    {key: 'in_use', label: 'heap in use', cls: 'series-in-use'},
    {key: 'traced', label: 'traced', cls: 'series-traced'},
  ];
  const hiddenSeries = {};

  /* "nice" ticks from 0 (or lo) to hi: about `n` of them at 1, 2 or 5 times a power of ten,
   * in the given unit. */
  function niceTicks(lo, hi, n) {
    const span = hi - lo;
    if (!(span > 0)) return [lo];
    const raw = span / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const r = raw / mag;
    const step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(12));
    return out;
  }
  function unitFor(max) {
    let u = 0, d = 1;
    while (max / d >= 1024 && u < UNITS.length - 1) { d *= 1024; u++; }
    return {div: d, name: UNITS[u]};
  }

  function renderMemory() {
    const box = $('memory-plot');
    clear(box);
    const s = data.series || {};
    const t = s.t || [];
    if (!t.length) {
      box.appendChild(empty('No memory-over-time series in these snapshots.'));
      return;
    }
    const present = SERIES.filter(function (x) { return (s[x.key] || []).some(function (v) { return v > 0; }); });
    const shown = present.filter(function (x) { return !hiddenSeries[x.key]; });
    const W = Math.max(520, box.clientWidth || 900), H = 340;
    const m = {l: 72, r: 18, t: 16, b: 46};
    const pw = W - m.l - m.r, ph = H - m.t - m.b;
    let t0 = t[0], t1 = t[t.length - 1];
    snaps.forEach(function (x) { if (markable(x)) { t0 = Math.min(t0, x.uptime); t1 = Math.max(t1, x.uptime); } });
    if (!(t1 > t0)) { t0 -= 0.5; t1 = t0 + 1; } /* one point: in the middle */
    let ymax = 0;
    shown.forEach(function (x) { s[x.key].forEach(function (v) { if (v > ymax) ymax = v; }); });
    if (!(ymax > 0)) ymax = 1024;
    const unit = unitFor(ymax);
    const yticks = niceTicks(0, ymax * 1.05 / unit.div, 5);
    const ytop = Math.max(yticks[yticks.length - 1], ymax * 1.02 / unit.div) * unit.div;
    const xticks = niceTicks(t0, t1, Math.max(3, Math.floor(pw / 110)));
    const X = function (v) { return m.l + (v - t0) / (t1 - t0) * pw; };
    const Y = function (v) { return m.t + ph - v / ytop * ph; };

    const svg = sv('svg', {viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img',
                           'aria-label': 'memory over time'});
    const grid = sv('g', {class: 'grid'});
    yticks.forEach(function (v) { grid.appendChild(sv('line', {x1: m.l, x2: m.l + pw, y1: Y(v * unit.div), y2: Y(v * unit.div)})); });
    svg.appendChild(grid);

    const ax = sv('g', {class: 'axis axis-x'});
    ax.appendChild(sv('line', {x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph}));
    xticks.forEach(function (v) {
      ax.appendChild(sv('line', {x1: X(v), x2: X(v), y1: m.t + ph, y2: m.t + ph + 4}));
      ax.appendChild(sv('text', {class: 'tick-label', x: X(v), y: m.t + ph + 16, 'text-anchor': 'middle', text: String(+v.toPrecision(6))}));
    });
    ax.appendChild(sv('text', {class: 'axis-title', x: m.l + pw / 2, y: H - 6, 'text-anchor': 'middle', text: 'time (s)'}));
    svg.appendChild(ax);

    const ay = sv('g', {class: 'axis axis-y'});
    ay.appendChild(sv('line', {x1: m.l, x2: m.l, y1: m.t, y2: m.t + ph}));
    yticks.forEach(function (v) {
      ay.appendChild(sv('line', {x1: m.l - 4, x2: m.l, y1: Y(v * unit.div), y2: Y(v * unit.div)}));
      ay.appendChild(sv('text', {class: 'tick-label', x: m.l - 7, y: Y(v * unit.div) + 4, 'text-anchor': 'end', text: String(+v.toPrecision(6))}));
    });
    ay.appendChild(sv('text', {class: 'axis-title', transform: 'translate(16,' + (m.t + ph / 2) + ') rotate(-90)',
                               'text-anchor': 'middle', text: 'memory (' + unit.name + ')'}));
    svg.appendChild(ay);

    /* snapshot marks */
    const marks = sv('g', {class: 'snapshot-marks'});
    snaps.forEach(function (x, i) {
      if (!markable(x)) return;
      const line = sv('line', {class: 'snapshot-mark', x1: X(x.uptime), x2: X(x.uptime), y1: m.t, y2: m.t + ph,
                               'data-snapshot': i + 1});
      line.appendChild(sv('title', {text: 'snapshot ' + (i + 1) + ': ' + basename(x.file) + ' at ' + fmtSeconds(x.uptime)}));
      marks.appendChild(line);
      marks.appendChild(sv('text', {class: 'snapshot-label', x: X(x.uptime) + 3, y: m.t + 10, text: '#' + (i + 1)}));
    });
    svg.appendChild(marks);

    shown.forEach(function (x) {
      const vals = s[x.key];
      let d = '';
      for (let i = 0; i < t.length; i++) {
        d += (i ? 'L' : 'M') + X(t[i]).toFixed(1) + ' ' + Y(vals[i]).toFixed(1);
      }
      svg.appendChild(sv('path', {class: 'series ' + x.cls, d: d, 'data-series': x.key}));
      if (t.length < 3) { /* too few points for a line to show: mark them */
        for (let i = 0; i < t.length; i++) {
          svg.appendChild(sv('circle', {class: 'series-point ' + x.cls, cx: X(t[i]), cy: Y(vals[i]), r: 4}));
        }
      }
    });

    /* hover */
    const hover = sv('g', {class: 'hover', visibility: 'hidden'});
    const hl = sv('line', {class: 'hover-line', y1: m.t, y2: m.t + ph});
    hover.appendChild(hl);
    const dots = shown.map(function (x) {
      const c = sv('circle', {class: 'hover-dot', r: 3.5});
      c.style.fill = getComputedStyle(document.documentElement).getPropertyValue('--' + x.cls.replace('series-', '')).trim() || '#888';
      hover.appendChild(c);
      return c;
    });
    svg.appendChild(hover);
    const overlay = sv('rect', {class: 'overlay', x: m.l, y: m.t, width: pw, height: ph, fill: 'transparent'});
    svg.appendChild(overlay);
    overlay.addEventListener('mousemove', function (evt) {
      const r = svg.getBoundingClientRect();
      const px = (evt.clientX - r.left) * (W / r.width);
      const tv = t0 + (px - m.l) / pw * (t1 - t0);
      let lo = 0, hi = t.length - 1;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (t[mid] < tv) lo = mid + 1; else hi = mid; }
      if (lo > 0 && Math.abs(t[lo - 1] - tv) < Math.abs(t[lo] - tv)) lo--;
      while (lo + 1 < t.length && t[lo + 1] === t[lo]) lo++; /* the latest of equal times */
      hover.setAttribute('visibility', 'visible');
      hl.setAttribute('x1', X(t[lo])); hl.setAttribute('x2', X(t[lo]));
      shown.forEach(function (x, k) { dots[k].setAttribute('cx', X(t[lo])); dots[k].setAttribute('cy', Y(s[x.key][lo])); });
      const rows = shown.map(function (x) { return [x.label, fmtBytes(s[x.key][lo]), 'swatch ' + x.cls]; });
      snaps.forEach(function (x, i) {
        if (markable(x) && Math.abs(X(x.uptime) - X(t[lo])) < 4) rows.push(['snapshot #' + (i + 1), basename(x.file)]);
      });
      showTooltip(evt, 't = ' + fmtSeconds(t[lo]), rows);
    });
    overlay.addEventListener('mouseleave', function () { hover.setAttribute('visibility', 'hidden'); hideTooltip(); });
    box.appendChild(svg);

    const legend = el('div', {class: 'legend', role: 'list'});
    SERIES.forEach(function (x) {
      const isPresent = present.indexOf(x) >= 0;
      const item = el('span', {class: 'legend-item' + (isPresent ? '' : ' absent') + (hiddenSeries[x.key] ? ' off' : ''),
                               role: 'listitem', 'data-series': x.key,
                               title: isPresent ? 'click to hide or show' : 'not recorded'},
                      [el('span', {class: 'swatch ' + x.cls}), x.label + (isPresent ? '' : ' (not recorded)')]);
      if (isPresent) item.addEventListener('click', function () { hiddenSeries[x.key] = !hiddenSeries[x.key]; renderMemory(); });
      legend.appendChild(item);
    });
    box.appendChild(legend);
    if (s.synthetic) box.appendChild(el('p', {class: 'more', text: 'No series was recorded: one point per snapshot.'}));
    else if (s.points > t.length) box.appendChild(el('p', {class: 'more', text: fmtCount(s.points) + ' points, drawn as ' + fmtCount(t.length) + ' (the peak of each stretch).'}));
  }
  function markable(x) { return x.pid === last.pid; }

  /* ---- flame graph ----------------------------------------------------------------------- */

  const ROW = 18;
  let flameRoot = null, flameZoom = null, flameNodes = [];

  function decodeFlame() {
    const f = data.flame;
    if (!f || !f.root) return null;
    const str = f.strings;
    let id = 0;
    function dec(a, parent, depth) {
      const n = {id: id++, name: str[a[0]], loc: a[1] >= 0 ? str[a[1]] : '', bytes: a[2], count: a[3],
                 parent: parent, depth: depth, children: [], x0: 0, x1: 0, div: null};
      flameNodes.push(n);
      if (a[4]) n.children = a[4].map(function (c) { return dec(c, n, depth + 1); });
      return n;
    }
    return dec(f.root, null, 0);
  }

  function frameColor(n) {
    let h = 0;
    for (let i = 0; i < n.name.length; i++) h = (h * 31 + n.name.charCodeAt(i)) >>> 0;
    const hue = 8 + (h % 44);             /* reds to yellows */
    const light = 58 + ((h >>> 8) % 14);
    return 'hsl(' + hue + ',82%,' + light + '%)';
  }

  function layout(n, x0, x1) {
    n.x0 = x0; n.x1 = x1;
    let x = x0;
    const scale = n.bytes > 0 ? (x1 - x0) / n.bytes : 0;
    n.children.forEach(function (c) { const w = c.bytes * scale; layout(c, x, x + w); x += w; });
  }

  function renderFlame() {
    const box = $('flamegraph');
    flameRoot = decodeFlame();
    if (!flameRoot || !(flameRoot.bytes > 0)) {
      box.appendChild(empty(last.frames ? 'No live traced memory in the last snapshot.' :
        'No traces: tracing was off when the snapshot was taken (REFGC_TRACE=<frames>, or refgc_trace_start).'));
      box.style.border = 'none'; box.style.background = 'none';
      $('flame-reset').disabled = true; $('flame-search').disabled = true;
      return;
    }
    layout(flameRoot, 0, 1);
    let depth = 0;
    flameNodes.forEach(function (n) { if (n.depth > depth) depth = n.depth; });
    box.style.height = ((depth + 1) * ROW + 2) + 'px';
    const frag = document.createDocumentFragment();
    flameNodes.forEach(function (n) {
      const cls = ['frame'];
      if (n === flameRoot) cls.push('root');
      if (n.name === '[other]') cls.push('other');
      const d = el('div', {class: cls.join(' '), 'data-name': n.name, 'data-id': n.id, 'data-depth': n.depth,
                           'data-bytes': n.bytes, role: 'treeitem', text: n.name});
      d.style.top = (n.depth * ROW) + 'px';
      if (n !== flameRoot && n.name !== '[other]') d.style.background = frameColor(n);
      n.div = d;
      frag.appendChild(d);
    });
    box.appendChild(frag);
    box.addEventListener('click', function (evt) {
      const d = evt.target.closest('.frame');
      if (!d) return;
      const n = flameNodes[+d.getAttribute('data-id')];
      zoom(n === flameZoom && n.parent ? n.parent : n);
    });
    box.addEventListener('mousemove', function (evt) {
      const d = evt.target.closest('.frame');
      if (!d) { hideTooltip(); return; }
      const n = flameNodes[+d.getAttribute('data-id')];
      const rows = [
        ['bytes', fmtBytes(n.bytes)],
        ['share of all', fmtPct(n.bytes / flameRoot.bytes)],
      ];
      if (flameZoom !== flameRoot && flameZoom.bytes > 0 && isUnder(n, flameZoom)) rows.push(['share of ' + flameZoom.name, fmtPct(n.bytes / flameZoom.bytes)]);
      rows.push(['blocks', fmtCount(n.count)]);
      if (n.loc) rows.push(['at', n.loc]);
      if (n.name === '[other]') rows.push(['', 'frames under ' + fmtPct(data.flame.min_share) + ' merged']);
      showTooltip(evt, n.name, rows);
    });
    box.addEventListener('mouseleave', hideTooltip);
    $('flame-reset').addEventListener('click', function () { zoom(flameRoot); });
    $('flame-search').addEventListener('input', function () { search(this.value); });
    zoom(flameRoot);
  }

  function isUnder(n, a) { for (let p = n; p; p = p.parent) if (p === a) return true; return false; }

  function zoom(z) {
    flameZoom = z;
    const span = z.x1 - z.x0;
    flameNodes.forEach(function (n) {
      const d = n.div;
      let left, width;
      const ancestor = n.depth < z.depth && isUnder(z, n);
      if (ancestor || n === z) { left = 0; width = 1; }
      else if (n.depth > z.depth && n.x0 >= z.x0 - 1e-12 && n.x1 <= z.x1 + 1e-12) { left = (n.x0 - z.x0) / span; width = (n.x1 - n.x0) / span; }
      else { d.classList.add('hidden'); return; } /* keeps its old geometry */
      d.classList.toggle('ancestor', ancestor);
      /* frames narrower than ~a tenth of a pixel at 1600px are not drawn */
      d.classList.toggle('hidden', width < 0.00006);
      d.style.left = (left * 100) + '%';
      d.style.width = (width * 100) + '%';
    });
    $('flamegraph').setAttribute('data-zoom', z.name);
    $('flamegraph').setAttribute('data-zoom-id', z.id);
    const path = $('flame-path');
    clear(path);
    const chain = [];
    for (let p = z; p; p = p.parent) chain.unshift(p);
    chain.forEach(function (p, i) {
      if (i) path.appendChild(document.createTextNode(' › '));
      const c = el('span', {class: 'crumb', text: p.name, title: fmtBytes(p.bytes)});
      c.addEventListener('click', function () { zoom(p); });
      path.appendChild(c);
    });
    path.appendChild(document.createTextNode('  —  ' + fmtBytes(z.bytes) + ' (' + fmtPct(z.bytes / flameRoot.bytes) + ' of all)'));
  }

  function search(q) {
    const out = $('flame-match');
    let re = null;
    q = q.trim();
    if (q) {
      const m = /^\/(.+)\/([a-z]*)$/.exec(q);
      try {
        re = m ? new RegExp(m[1], m[2].indexOf('i') >= 0 ? m[2] : m[2] + 'i') :
                 new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
      } catch (e) {
        out.textContent = 'bad pattern';
        re = null;
      }
    }
    let matched = 0, frames = 0;
    function walk(n, under) {
      const hit = !!re && n !== flameRoot && re.test(n.name);
      n.div.classList.toggle('match', hit);
      if (hit) frames++;
      if (hit && !under) matched += n.bytes;
      n.children.forEach(function (c) { walk(c, under || hit); });
    }
    walk(flameRoot, false);
    const box = $('flamegraph');
    if (!re) {
      if (!q || out.textContent !== 'bad pattern') out.textContent = '';
      box.removeAttribute('data-matched-bytes');
      return;
    }
    box.setAttribute('data-matched-bytes', matched);
    out.textContent = 'Matched: ' + fmtBytes(matched) + ' (' + fmtPct(matched / flameRoot.bytes) + ' of all) in ' +
      frames + ' frame' + (frames === 1 ? '' : 's');
  }

  /* ---- tables of sites and types --------------------------------------------------------- */

  function renderSites() {
    /* shares of the sum of the traces (the flame graph's root), so that they add up */
    const total = (data.flame && data.flame.root && data.flame.root[2]) || last.traced_current || 0;
    const share = function (r) { return total > 0 ? r.size / total : 0; };
    const note = (data.sites_line || []).length >= data.top ? 'The ' + data.top + ' largest (refgc report --top N for more).' : null;
    const shareCol = {key: 'share', label: 'share', type: 'pct', value: share,
                      render: function (r) { return [fmtPct(share(r)), shareBar(share(r))]; }};
    const avgCol = {key: 'avg', label: 'average', type: 'bytes', value: function (r) { return r.count ? r.size / r.count : 0; }};
    const tracingOff = last.frames ? 'No traces in the last snapshot.' : 'No traces: tracing was off.';
    makeTable($('top-sites'), {
      id: 'top-sites-table', rows: data.sites_line || [], empty: tracingOff, note: note,
      columns: [{key: 'key', label: 'file:line', cls: 'key'}, {key: 'size', label: 'size', type: 'bytes'}, shareCol,
                {key: 'count', label: 'blocks', type: 'count'}, avgCol],
    });
    makeTable($('top-tracebacks'), {
      id: 'top-tracebacks-table', rows: data.sites_traceback || [], empty: tracingOff,
      columns: [{key: 'key', label: 'innermost frame', cls: 'key'},
                {key: 'size', label: 'size', type: 'bytes'}, shareCol,
                {key: 'count', label: 'blocks', type: 'count'},
                {key: 'stack', label: 'traceback', sortable: false, render: function (r) {
                  const top = r.stack && r.stack[0] ? r.stack[0].name : '';
                  return stackDetails(r.stack, top ? top + ' \u2026 (' + r.stack.length + ' frames)' : null);
                }}],
    });
    makeTable($('top-functions'), {
      id: 'top-functions-table', rows: data.sites_function || [], empty: tracingOff,
      columns: [{key: 'key', label: 'function', cls: 'key'}, {key: 'size', label: 'size', type: 'bytes'}, shareCol,
                {key: 'count', label: 'blocks', type: 'count'}, avgCol],
    });
  }

  function renderTypes() {
    makeTable($('top-types'), {
      id: 'top-types-table', rows: data.types || [], empty: 'No live objects.',
      columns: [{key: 'type', label: 'type', cls: 'key', value: function (r) { return r.type || '(raw blocks)'; }},
                {key: 'count', label: 'objects', type: 'count'},
                {key: 'bytes', label: 'bytes', type: 'bytes'},
                {key: 'avg', label: 'average', type: 'bytes', value: function (r) { return r.count ? r.bytes / r.count : 0; }},
                {key: 'traced_size', label: 'traced bytes', type: 'bytes', value: function (r) { return r.traced_size || 0; }},
                {key: 'traced_count', label: 'traced objects', type: 'count', value: function (r) { return r.traced_count || 0; }}],
    });
  }

  /* ---- leak suspects --------------------------------------------------------------------- */

  function hopNode(h, i, n) {
    if (h.elided) return el('li', {class: 'elided', text: '\u2026 ' + fmtCount(h.elided) + ' more hops \u2026'});
    const parts = [el('span', {class: 'type', text: h.type || '(raw block)'}),
                   ' ', el('span', {class: 'mono more', text: h.address})];
    if (h.root_name) parts.push(' ', el('span', {class: 'badge', style: 'background:var(--accent)', text: 'root ' + h.root_name}));
    else if (i === 0 && h.flags && h.flags.indexOf('root') >= 0) parts.push(' ', el('span', {class: 'more', text: '(held from outside the graph)'}));
    parts.push(' ', el('span', {class: 'more', text: fmtBytes(h.size) + ', refcnt ' + h.refcnt}));
    if (h.site) parts.push(el('span', {class: 'via site', text: 'allocated at ' + h.site}));
    if (h.offset !== undefined) {
      const via = [];
      via.push(h.offset >= 0 ? 'field at offset ' + h.offset : 'field not found in its memory');
      if (h.index >= 0) via.push('reference #' + h.index);
      parts.push(el('span', {class: 'via', text: '\u2193 ' + via.join(', ')}));
    }
    return el('li', {class: 'hop' + (i === n - 1 ? ' target' : ''), 'data-type': h.type}, parts);
  }

  /* A chain of more than 8 hops shows its first and last 3 until asked for the rest. */
  function chainList(chain, total) {
    const ol = el('ol', {class: 'chain'});
    const all = chain.map(function (h, i) { return hopNode(h, i, chain.length); });
    if (chain.length <= 8) { appendAll(ol, all); return ol; }
    appendAll(ol, all.slice(0, 3));
    const hidden = total - 6;
    const more = el('li', {class: 'elided'}, [el('button', {type: 'button', class: 'show-hops',
      text: 'show the ' + fmtCount(hidden) + ' hops between'})]);
    more.firstChild.addEventListener('click', function () {
      clear(ol);
      appendAll(ol, all);
    });
    ol.appendChild(more);
    appendAll(ol, all.slice(all.length - 3));
    return ol;
  }

  function renderSuspects() {
    const box = $('suspects');
    const list = data.suspects || [];
    if (data.suspects_snapshot < 0) {
      box.appendChild(empty('No snapshot has the object graph: take one with REFGC_SNAPSHOT_GRAPH ' +
                            '(REFGC_TRACE_FILE snapshots have it) to find lost references and resurrected objects.'));
    } else if (!list.length) {
      box.appendChild(empty('No leak suspects in snapshot #' + (data.suspects_snapshot + 1) + '.'));
    } else {
      if (data.suspects_snapshot !== snaps.length - 1)
        box.appendChild(el('p', {class: 'more', text: 'From snapshot #' + (data.suspects_snapshot + 1) + ', the last one with its object graph.'}));
      list.forEach(function (s, k) {
        const o = s.object || {};
        const a = el('article', {class: 'suspect', 'data-class': s.class, 'data-type': o.type, id: 'suspect-' + (k + 1)});
        a.appendChild(el('header', null, [el('span', {class: 'badge ' + s.class.replace(/\s+/g, '-'), text: s.class}),
                                           el('span', {class: 'type', text: o.type || '(raw block)'}),
                                           el('span', {class: 'mono more', text: o.address})]));
        const facts = [];
        if (s.class === 'lost reference') facts.push(['unexplained references', fmtCount(s.unexplained)]);
        facts.push(['retains', fmtBytes(s.retained) + ' in ' + fmtCount(s.retained_count) + ' object' + (s.retained_count === 1 ? '' : 's')]);
        facts.push(['refcnt', String(o.refcnt)]);
        facts.push(['size', fmtBytes(o.size)]);
        facts.push(['allocated at', o.site || 'untraced']);
        const dl = el('dl', {class: 'facts'});
        facts.forEach(function (f) { dl.appendChild(el('div', null, [el('dt', {text: f[0]}), el('dd', {text: f[1]})])); });
        a.appendChild(dl);
        const chain = s.chain || [];
        if (chain.length) {
          a.appendChild(el('div', {class: 'more', text: 'Retaining chain from its root (' + s.chain_len + ' hop' + (s.chain_len === 1 ? '' : 's') + '):'}));
          a.appendChild(chainList(chain, s.chain_len));
        }
        if (s.stack && s.stack.length) a.appendChild(stackDetails(s.stack, 'allocation traceback (' + s.stack.length + ' frames)'));
        box.appendChild(a);
      });
    }

    const growth = $('growth');
    if (snaps.length < 3) {
      growth.appendChild(empty('Growth needs three snapshots or more (of the same program, in order).'));
    } else {
      makeTable(growth, {
        id: 'growth-table', rows: data.growth || [],
        empty: 'Nothing grew in every interval by ' + fmtBytes(data.min_growth) + ' or more.',
        caption: 'Sites and types whose memory never shrank across the ' + snaps.length + ' snapshots and grew by ' + fmtBytes(data.min_growth) + ' or more',
        columns: [{key: 'group', label: 'by'},
                  {key: 'key', label: 'site or type', cls: 'key', render: function (r) {
                    return r.stack ? [r.key, ' ', stackDetails(r.stack)] : (r.key || '(raw blocks)');
                  }},
                  {key: 'first_size', label: 'first', type: 'bytes'},
                  {key: 'last_size', label: 'last', type: 'bytes'},
                  {key: 'growth', label: 'growth', type: 'sbytes', value: function (r) { return r.last_size - r.first_size; }},
                  {key: 'count_growth', label: 'blocks', type: 'scount', value: function (r) { return r.last_count - r.first_count; }}],
      });
    }
    const changes = $('changes');
    if (snaps.length < 2) {
      changes.appendChild(empty('One snapshot: nothing to compare.'));
    } else {
      makeTable(changes, {
        id: 'changes-table', rows: data.changes || [], empty: 'No change.',
        columns: [{key: 'key', label: 'file:line', cls: 'key'},
                  {key: 'size', label: 'size', type: 'bytes'},
                  {key: 'size_diff', label: 'change', type: 'sbytes'},
                  {key: 'count', label: 'blocks', type: 'count'},
                  {key: 'count_diff', label: 'block change', type: 'scount'}],
      });
    }
  }

  /* ---- collector ------------------------------------------------------------------------- */

  function renderGC() {
    const box = $('gc-stats');
    const g = last.gc;
    if (!g) { box.appendChild(empty('No collector statistics.')); return; }
    const rows = [0, 1, 2].map(function (i) {
      return {generation: i, collections: g.collections[i], collected: g.collected[i], uncollectable: g.uncollectable[i]};
    });
    makeTable(box, {
      id: 'gc-table', rows: rows,
      columns: [{key: 'generation', label: 'generation', type: 'num'},
                {key: 'collections', label: 'collections', type: 'count'},
                {key: 'collected', label: 'objects collected', type: 'count'},
                {key: 'uncollectable', label: 'uncollectable', type: 'count'}],
    });
    const n = g.collections[0] + g.collections[1] + g.collections[2];
    const dl = el('dl', {class: 'facts', id: 'gc-pauses'});
    [['pause total', fmtSeconds(g.pause_total)], ['longest pause', fmtSeconds(g.pause_max)],
     ['mean pause', n ? fmtSeconds(g.pause_total / n) : '—']].forEach(function (f) {
      dl.appendChild(el('div', null, [el('dt', {text: f[0]}), el('dd', {text: f[1]})]));
    });
    box.appendChild(el('div', {class: 'suspect', style: 'border-left-color:var(--accent)'}, dl));
  }

  /* ---- go -------------------------------------------------------------------------------- */

  function guard(name, fn) {
    try { fn(); } catch (e) {
      /* one broken section must not blank the page: say so where it would have been */
      const sec = $(name);
      if (sec) sec.appendChild(el('p', {class: 'empty', text: 'This section could not be drawn: ' + e.message}));
      setTimeout(function () { throw e; }, 0); /* still reported, after the other sections */
    }
  }
  guard('summary', renderSummary);
  guard('memory', renderMemory);
  guard('flame', renderFlame);
  guard('sites', renderSites);
  guard('types', renderTypes);
  guard('leaks', renderSuspects);
  guard('collector', renderGC);

  let resizeTimer = 0;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(renderMemory, 120);
  });
  document.documentElement.setAttribute('data-report-ready', 'true');
})();
