// bench_ui.mjs - first paint of the web UI in headless Chromium (bench_ui.sh
// starts the daemons and the reference server). Not a test: nothing fails.
// Env: SOVA_UI_LINK (login link), SOVA_UI_BASE, REF_BASE (the same files
// from a static file server), RUNS, CHROMIUM, NODE_PATH (tests/ui/node_modules).
import { createRequire } from 'node:module';

// from tests/ui/node_modules (ESM imports do not read NODE_PATH)
const puppeteer = createRequire(`${process.env.NODE_PATH}/`)('puppeteer-core');

const runs = Number(process.env.RUNS || 30);
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const p95 = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.ceil(s.length * 0.95) - 1)]; };

const pageBytes = (page) => page.evaluate(() => performance.getEntriesByType('resource')
  .concat(performance.getEntriesByType('navigation'))
  .reduce((n, e) => n + (e.decodedBodySize || 0), 0));

async function paints(page, url) {
  const out = [];
  for (let i = 0; i < runs; i++) {
    // a new document each time (a query the servers ignore), not a hash change
    await page.goto(url.replace('?', `?run=${i}&`), { waitUntil: 'load' });
    const fcp = await page.evaluate(() => new Promise((resolve) => {
      const e = performance.getEntriesByName('first-contentful-paint')[0];
      if (e) return resolve(e.startTime);
      new PerformanceObserver((l) => resolve(l.getEntries()[0].startTime))
        .observe({ type: 'paint', buffered: true });
    }));
    out.push(fcp);
  }
  return out;
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'],
});
const page = await browser.newPage();
await page.setViewport({ width: 1100, height: 800 });
await page.goto(process.env.SOVA_UI_LINK, { waitUntil: 'load' });
const sova = await paints(page, `${process.env.SOVA_UI_BASE}/?#/downloads`);
const sovaBytes = await pageBytes(page);
const ref = await paints(page, `${process.env.REF_BASE}/index.html?`);
const refBytes = await pageBytes(page);
await browser.close();
const f = (x) => x.toFixed(0).padStart(5);
console.log(`first contentful paint over ${runs} loads, ms      median   p95`);
console.log(`  Sova's daemon (the app, logged in)            ${f(median(sova))} ${f(p95(sova))}`);
console.log(`  the same files from python3 -m http.server    ${f(median(ref))} ${f(p95(ref))}`);
console.log(`  ratio Sova / static server (median)           ${(median(sova) / median(ref)).toFixed(2)}`);
console.log(`  target: first paint < 200 ms: ${p95(sova) < 200 ? 'PASS' : 'MISS'} (p95 ${p95(sova).toFixed(0)} ms)`);
console.log(`  the page and its files: ${sovaBytes} bytes from Sova, ${refBytes} from the static server (target < 200 KB: ${sovaBytes < 204800 ? 'PASS' : 'MISS'})`);
