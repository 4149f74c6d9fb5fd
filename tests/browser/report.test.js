/* refgc report — headless-browser test of the page `refgc report` writes.
 *
 *   node report.test.js --report FILE.html --screenshot OUT.png
 *        [--expect-function NAME] [--expect-leak TYPE] [--expect-snapshots N]
 *        [--expect-path TEXT] [--chromium /usr/bin/chromium]
 *
 * How: Debian's chromium, driven by playwright-core (never a browser that playwright
 * downloads), opens the page from a file:// URL in a fresh profile with the network off, and
 * checks what a person would look at: no console or page errors and no request leaving the
 * file; the memory plot's four series paths, axis titles, legend and snapshot marks, and its
 * hover tooltip; the flame graph's frames, the expected function among them, a click that zooms
 * a frame to the full width (measured with getBoundingClientRect) and the reset that undoes it;
 * the search box highlighting matches and telling their share; the sortable tables; the planted
 * leak among the suspects with its retaining chain; growth and collector sections; snapshot
 * paths shown intact (with --expect-path, text the path holds, such as "</script>"). It saves a
 * full-page screenshot. Prints one line per check and "N passed, N failed" at the end; exits 1
 * on any failure. */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

function parseArgs(argv) {
  const o = {
    report: null, screenshot: null, expectFunction: 'cache_add', expectLeak: 'Node',
    expectSnapshots: 3, expectPath: null, chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i], v = argv[i + 1];
    switch (a) {
      case '--report': o.report = v; i++; break;
      case '--screenshot': o.screenshot = v; i++; break;
      case '--expect-function': o.expectFunction = v; i++; break;
      case '--expect-leak': o.expectLeak = v; i++; break;
      case '--expect-snapshots': o.expectSnapshots = +v; i++; break;
      case '--expect-path': o.expectPath = v; i++; break;
      case '--chromium': o.chromium = v; i++; break;
      default: throw new Error('unknown argument ' + a);
    }
  }
  if (!o.report) throw new Error('--report FILE is required');
  return o;
}

let passed = 0, failed = 0;
function check(name, ok, detail) {
  if (ok) { passed++; console.log('ok   ' + name); }
  else { failed++; console.log('FAIL ' + name + (detail !== undefined ? ': ' + detail : '')); }
}

async function main() {
  const o = parseArgs(process.argv);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'refgc-browser-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: o.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 900 },
    offline: true,
    timeout: 30000,
  });
  const errors = [], requests = [];
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(10000);
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push('console ' + m.type() + ': ' + m.text()); });
    page.on('pageerror', (e) => errors.push('page error: ' + e.message));
    page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url()); });

    const url = 'file://' + path.resolve(o.report).split('/').map(encodeURIComponent).join('/');
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('html[data-report-ready="true"]', { timeout: 10000 });

    /* summary */
    const facts = await page.$$eval('#summary-facts dd', (d) => d.map((x) => x.textContent));
    check('summary shows the facts', facts.length >= 10, facts.length);
    const snapRows = await page.$$eval('#snapshot-table tbody tr', (r) => r.length).catch(() => 0);
    check('summary lists the ' + o.expectSnapshots + ' snapshots', snapRows === o.expectSnapshots, snapRows);

    /* memory plot */
    const plot = await page.evaluate(() => {
      const svg = document.querySelector('#memory-plot svg');
      if (!svg) return null;
      const series = {};
      svg.querySelectorAll('path.series').forEach((p) => {
        series[p.getAttribute('data-series')] = (p.getAttribute('d').match(/[ML]/g) || []).length;
      });
      return {
        series,
        titles: Array.from(svg.querySelectorAll('text.axis-title')).map((t) => t.textContent),
        xticks: svg.querySelectorAll('.axis-x text.tick-label').length,
        yticks: svg.querySelectorAll('.axis-y text.tick-label').length,
        marks: svg.querySelectorAll('line.snapshot-mark').length,
        legend: Array.from(document.querySelectorAll('#memory-plot .legend-item')).map((l) => l.getAttribute('data-series')),
        width: svg.getBoundingClientRect().width,
      };
    });
    check('memory plot is drawn', plot !== null && plot.width > 300, plot && plot.width);
    if (plot) {
      for (const s of ['rss', 'traced', 'in_use', 'committed']) {
        const cls = 'series-' + s.replace('_', '-');
        const n = await page.$$eval('#memory-plot svg path.' + cls, (p) => p.length);
        check('memory plot has path.' + cls + ' with points', n === 1 && plot.series[s] >= 2, JSON.stringify(plot.series));
      }
      check('memory plot has axis titles with units', plot.titles.includes('time (s)') && plot.titles.some((t) => /^memory \((B|KiB|MiB|GiB)\)$/.test(t)), JSON.stringify(plot.titles));
      check('memory plot has tick labels on both axes', plot.xticks >= 2 && plot.yticks >= 2, plot.xticks + ' ' + plot.yticks);
      check('memory plot marks each snapshot', plot.marks === o.expectSnapshots, plot.marks);
      check('memory plot has a legend of four series', plot.legend.length === 4, JSON.stringify(plot.legend));
      const box = await page.locator('#memory-plot svg rect.overlay').boundingBox();
      await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
      const tip = await page.evaluate(() => ({ hidden: document.getElementById('tooltip').hidden, text: document.getElementById('tooltip').textContent }));
      check('hovering the plot shows the values', !tip.hidden && /traced/.test(tip.text) && /(B|KiB|MiB)/.test(tip.text), tip.text);
      await page.mouse.move(5, 5);
      await page.locator('#memory-plot .legend-item[data-series="rss"]').click();
      const rssHidden = await page.$$eval('#memory-plot svg path.series-rss', (p) => p.length);
      await page.locator('#memory-plot .legend-item[data-series="rss"]').click();
      const rssBack = await page.$$eval('#memory-plot svg path.series-rss', (p) => p.length);
      check('clicking a legend entry hides and shows its series', rssHidden === 0 && rssBack === 1, rssHidden + ' ' + rssBack);
    }

    /* flame graph */
    const graphWidth = await page.$eval('#flamegraph', (g) => g.getBoundingClientRect().width);
    const frames = await page.$$eval('#flamegraph .frame', (f) => f.map((x) => x.getAttribute('data-name')));
    check('flame graph has frames', frames.length >= 5, frames.length);
    check('flame graph contains ' + o.expectFunction, frames.includes(o.expectFunction), frames.slice(0, 40).join(' '));
    const root = await page.$eval('#flamegraph .frame.root', (r) => r.getBoundingClientRect().width);
    check('flame graph root spans the graph', Math.abs(root - graphWidth) < 3, root + ' vs ' + graphWidth);
    const target = page.locator('#flamegraph .frame[data-name="' + o.expectFunction + '"]').first();
    const before = (await target.boundingBox()).width;
    check(o.expectFunction + ' is narrower than the graph before zooming', before < graphWidth * 0.98, before + ' of ' + graphWidth);
    await target.click();
    const afterZoom = await page.evaluate((name) => {
      const g = document.getElementById('flamegraph');
      const f = g.querySelector('.frame[data-name="' + name + '"]:not(.hidden)');
      const gw = g.getBoundingClientRect().width;
      const hidden = g.querySelectorAll('.frame.hidden').length;
      return { zoom: g.getAttribute('data-zoom'), width: f ? f.getBoundingClientRect().width : -1, gw, hidden };
    }, o.expectFunction);
    check('clicking a frame zooms into it (full width)', afterZoom.zoom === o.expectFunction && Math.abs(afterZoom.width - afterZoom.gw) < 3,
          JSON.stringify(afterZoom));
    check('zooming hides the frames outside it', afterZoom.hidden > 0, afterZoom.hidden);
    await page.locator('#flame-reset').click();
    const afterReset = await page.evaluate(() => ({
      zoom: document.getElementById('flamegraph').getAttribute('data-zoom'),
      hidden: document.querySelectorAll('#flamegraph .frame.hidden').length,
    }));
    const back = (await target.boundingBox()).width;
    check('reset zooms out to the root', afterReset.zoom === 'all' && Math.abs(back - before) < 1.5, JSON.stringify(afterReset) + ' ' + back + ' vs ' + before);
    await target.click();
    await page.locator('#flamegraph .frame.root').click();
    const rootAgain = await page.$eval('#flamegraph', (g) => g.getAttribute('data-zoom'));
    check('clicking the root zooms out', rootAgain === 'all', rootAgain);
    await target.hover();
    const ftip = await page.evaluate(() => ({ hidden: document.getElementById('tooltip').hidden, text: document.getElementById('tooltip').textContent }));
    check('frame tooltip shows bytes, share and count', !ftip.hidden && /bytes/.test(ftip.text) && /share of all/.test(ftip.text) && /blocks/.test(ftip.text) && /%/.test(ftip.text), ftip.text);

    /* search */
    await page.locator('#flame-search').fill(o.expectFunction);
    const search = await page.evaluate(() => ({
      matches: Array.from(document.querySelectorAll('#flamegraph .frame.match')).map((f) => f.getAttribute('data-name')),
      text: document.getElementById('flame-match').textContent,
      bytes: +document.getElementById('flamegraph').getAttribute('data-matched-bytes'),
      color: (document.querySelector('#flamegraph .frame.match') || document.body).style.background,
      bg: document.querySelector('#flamegraph .frame.match') ? getComputedStyle(document.querySelector('#flamegraph .frame.match')).backgroundColor : '',
    }));
    check('search highlights the matching frames', search.matches.length >= 1 && search.matches.every((n) => n.toLowerCase().includes(o.expectFunction.toLowerCase())),
          JSON.stringify(search.matches));
    check('search shows the matched share', /Matched: .*\d.*%/.test(search.text) && search.bytes > 0, search.text);
    check('matched frames are drawn in the match colour', search.bg === 'rgb(214, 63, 214)', search.bg);
    await page.locator('#flame-search').fill('');
    const cleared = await page.$$eval('#flamegraph .frame.match', (m) => m.length);
    check('clearing the search removes the highlight', cleared === 0, cleared);

    /* tables */
    const sites = await page.$$eval('#top-sites table tbody tr', (r) => r.length);
    check('top sites by line has rows', sites >= 1, sites);
    const tbs = await page.$$eval('#top-tracebacks table tbody tr', (r) => r.length);
    check('top sites by traceback has rows', tbs >= 1, tbs);
    const types = await page.$$eval('#top-types table tbody tr td:first-child', (r) => r.map((x) => x.textContent));
    check('top types lists ' + o.expectLeak, types.includes(o.expectLeak), JSON.stringify(types));
    await page.locator('#top-types table th[data-key="count"]').click();
    const sorted = await page.evaluate(() => {
      const th = document.querySelector('#top-types table th[data-key="count"]');
      const idx = Array.prototype.indexOf.call(th.parentNode.children, th);
      const vals = Array.from(document.querySelectorAll('#top-types table tbody tr')).map((r) => +r.children[idx].textContent.replace(/,/g, ''));
      return { sort: th.getAttribute('aria-sort'), vals };
    });
    const desc = sorted.vals.every((v, i) => i === 0 || sorted.vals[i - 1] >= v);
    check('clicking a header sorts the table', sorted.sort === 'descending' && desc, JSON.stringify(sorted));
    await page.locator('#top-types table th[data-key="count"]').click();
    const asc = await page.$eval('#top-types table th[data-key="count"]', (t) => t.getAttribute('aria-sort'));
    check('clicking it again reverses the order', asc === 'ascending', asc);

    /* suspects */
    const suspects = await page.evaluate(() => Array.from(document.querySelectorAll('#suspects .suspect')).map((s) => ({
      cls: s.getAttribute('data-class'), type: s.getAttribute('data-type'), text: s.textContent,
      hops: s.querySelectorAll('ol.chain li.hop').length,
    })));
    const leak = suspects.find((s) => s.cls === 'lost reference' && s.type === o.expectLeak);
    check('suspects list the planted leak (' + o.expectLeak + ', lost reference)', !!leak, JSON.stringify(suspects.map((s) => [s.cls, s.type])));
    if (leak) {
      check('the leak shows its unexplained references and retained size', /unexplained references/.test(leak.text) && /retains/.test(leak.text), leak.text.slice(0, 300));
      check('the leak shows its retaining chain and allocation site', leak.hops >= 1 && /allocated at \S+/.test(leak.text), leak.hops);
    }
    const longest = suspects.reduce((m, s) => Math.max(m, s.hops), 0);
    const viaText = await page.$$eval('#suspects li.hop .via', (v) => v.map((x) => x.textContent).join(' | '));
    check('chains name the field of each hop', longest < 2 || /offset \d+/.test(viaText), viaText.slice(0, 300));

    /* growth, changes, collector */
    if (o.expectSnapshots >= 3) {
      const growth = await page.$$eval('#growth table tbody tr', (r) => r.length).catch(() => 0);
      check('growth across snapshots has rows', growth >= 1, growth);
    }
    if (o.expectSnapshots >= 2) {
      const changes = await page.$$eval('#changes table tbody tr', (r) => r.length).catch(() => 0);
      check('changes from the first snapshot have rows', changes >= 1, changes);
    }
    const gc = await page.$$eval('#gc-table tbody tr', (r) => r.length).catch(() => 0);
    const pauses = await page.$$eval('#gc-pauses dd', (d) => d.length).catch(() => 0);
    check('collector statistics: three generations and pauses', gc === 3 && pauses >= 2, gc + ' ' + pauses);

    /* the data block: the snapshot paths survive escaping */
    const files = await page.$$eval('#snapshot-table tbody tr td:nth-child(2)', (t) => t.map((x) => x.textContent)).catch(() => []);
    check('snapshot paths are shown as text, escaped in the data',
          files.length === o.expectSnapshots && files.every((f) => f.length > 0 && (!o.expectPath || f.includes(o.expectPath))), JSON.stringify(files));

    if (o.screenshot) {
      await page.locator('#flame-search').fill(o.expectFunction);
      await page.mouse.move(1, 1);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: o.screenshot, fullPage: true });
      check('screenshot saved to ' + o.screenshot, fs.existsSync(o.screenshot) && fs.statSync(o.screenshot).size > 10000);
    }
  } finally {
    await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  check('no console errors or page errors', errors.length === 0, errors.join(' | '));
  check('no request leaves the file', requests.length === 0, requests.join(' '));
  console.log(passed + ' passed, ' + failed + ' failed');
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  console.log('FAIL ' + (e && e.stack ? e.stack : e));
  console.log(passed + ' passed, ' + (failed + 1) + ' failed');
  process.exitCode = 1;
});
