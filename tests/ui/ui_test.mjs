// The web UI in a real browser: Debian's headless Chromium, driven with
// puppeteer-core, against the real daemons tests/e2e/test_ui.sh started.
// It logs in with the one-time link, searches, downloads (to 100 %),
// pauses and resumes, cancels, reads every page, saves a screenshot of
// each, and tries what an attacker would: hostile file names, a reused
// link, a foreign Host, a request without the session or its CSRF token.
// Any failure, a browser that cannot start included, exits non-zero.
//
// Environment: SOVA_UI_BASE (http://127.0.0.1:PORT), SOVA_UI_LINK (the
// login link), SOVA_UI_SHOTS (folder for
// screenshots), SOVA_UI_WORD (the keyword every shared name holds),
// SOVA_UI_DONE, SOVA_UI_PAUSE, SOVA_UI_CANCEL (file IDs), CHROMIUM.
import puppeteer from 'puppeteer-core';
import fs from 'node:fs';
import http from 'node:http';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const BASE = env('SOVA_UI_BASE');
const SHOTS = env('SOVA_UI_SHOTS');
const WORD = env('SOVA_UI_WORD');
const ID = { done: env('SOVA_UI_DONE'), pause: env('SOVA_UI_PAUSE'), cancel: env('SOVA_UI_CANCEL') };
const PORT = new URL(BASE).port;
let checks = 0;
const ok = (what) => console.log(`ok ${++checks} - ${what}`);
const fail = (what) => { throw new Error(what); };

// A raw request, outside the browser: [status, headers, body].
function raw(method, path, headers = {}, body = null) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: PORT, method, path,
                               headers: { Host: `127.0.0.1:${PORT}`, ...headers } }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve([res.statusCode, res.headers, data]));
    });
    req.on('error', reject);
    if (body !== null) req.write(body);
    req.end();
  });
}

async function shot(page, name) {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function show(page, route, ready) {
  await page.evaluate((r) => { location.hash = r; }, route);
  await page.waitForSelector(ready, { visible: true, timeout: 15000 });
}

// The text of a download row's cell, or null when the row is gone.
const cell = (page, id, sel) => page.evaluate((i, s) => {
  const row = document.querySelector(`#downloads tbody tr[data-id="${i}"]`);
  const c = row && row.querySelector(s);
  return c ? c.textContent.trim() : null;
}, id, sel);

async function waitCell(page, id, sel, want, secs, what) {
  const end = Date.now() + secs * 1000;
  let got;
  while (Date.now() < end) {
    got = await cell(page, id, sel);
    if (want(got)) return got;
    await new Promise((r) => setTimeout(r, 200));
  }
  fail(`${what}: ${sel} of ${id.slice(0, 16)} is ${JSON.stringify(got)} after ${secs} s`);
}

async function click(page, id, action) {
  const sel = `#downloads tbody tr[data-id="${id}"] [data-action="${action}"]`;
  await page.waitForSelector(sel, { visible: true, timeout: 15000 });
  await page.click(sel);
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  let browser;
  try {
    browser = await puppeteer.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'],
    });
  } catch (e) {
    fail(`the browser cannot start (${e.message}): this test never skips`);
  }
  ok(`headless ${await browser.version()} started`);
  try {
    await run(browser);
  } finally {
    await browser.close();
  }
}

async function run(browser) {
  // ---- refused without a session, a reused link, a foreign Host --------------------------
  let [st, hd, body] = await raw('GET', '/api/v1/status');
  if (st !== 401) fail(`the API without key or session: ${st} ${body}`);
  [st] = await raw('GET', '/api/v1/status', { Host: `evil.example:${PORT}` });
  if (st !== 403) fail(`a foreign Host: ${st}`);
  [st] = await raw('GET', '/', { Host: `rebind.example:${PORT}` });
  if (st !== 403) fail(`the page with a foreign Host: ${st}`);
  [st, hd] = await raw('GET', '/');
  if (st !== 303 || hd.location !== '/login') fail(`/ without a session: ${st} ${hd.location}`);
  [st] = await raw('POST', '/login', { 'Content-Type': 'application/x-www-form-urlencoded' }, 'key=00');
  if (st !== 401) fail(`a wrong key at the login form: ${st}`);
  ok('without a session: the API 401, / goes to /login, a wrong key 401; a foreign Host 403');

  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 800 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('dialog', (d) => d.accept());
  const apiCalls = {};
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.host !== new URL(BASE).host) errors.push(`a request outside the daemon: ${r.url()}`);
    if (u.pathname.startsWith('/api/')) apiCalls[u.pathname] = (apiCalls[u.pathname] || 0) + 1;
  });

  await page.goto(`${BASE}/`, { waitUntil: 'load' });
  if (!page.url().endsWith('/login')) fail(`not sent to the login page: ${page.url()}`);
  await page.waitForSelector('#login-form #api-key');
  await shot(page, 'login');

  // ---- log in with the one-time link ------------------------------------------------------
  const resp = await page.goto(env('SOVA_UI_LINK'), { waitUntil: 'load' });
  if (new URL(page.url()).pathname !== '/') fail(`the link did not log in: ${page.url()} ${resp.status()}`);
  const cookies = await page.cookies();
  const c = cookies.find((k) => k.name === `sova_session_${PORT}`);
  if (!c || !c.httpOnly || c.sameSite !== 'Strict') fail(`the session cookie: ${JSON.stringify(cookies)}`);
  const other = await browser.createBrowserContext();
  const p2 = await other.newPage();
  const again = await p2.goto(env('SOVA_UI_LINK'));
  if (again.status() !== 403) fail(`the link worked twice: ${again.status()} at ${p2.url()}`);
  await other.close();
  ok('the one-time link logs in (cookie HttpOnly, SameSite=Strict) and works once only');

  // ---- the page: CSP, size, first paint ------------------------------------------------------
  const doc = await page.reload({ waitUntil: 'load' });
  if (!doc) fail('no response to a reload of the page');
  const csp = doc.headers()['content-security-policy'] || '';
  if (!/script-src 'self'/.test(csp) || /unsafe-inline/.test(csp) || !/frame-ancestors 'none'/.test(csp))
    fail(`Content-Security-Policy: ${csp}`);
  if (Object.keys(doc.headers()).some((h) => h.startsWith('access-control')))
    fail('a CORS header on the page');
  const size = await page.evaluate(() => performance.getEntriesByType('resource')
    .concat(performance.getEntriesByType('navigation'))
    .reduce((n, e) => n + (e.decodedBodySize || 0), 0));
  if (size <= 0 || size > 200 * 1024) fail(`the page and its files are ${size} bytes`);
  // The paint entry may come after 'load' on a busy machine: wait for it.
  const fcp = await page.evaluate(() => new Promise((resolve) => {
    const e = performance.getEntriesByName('first-contentful-paint')[0];
    if (e) return resolve(e.startTime);
    new PerformanceObserver((l) => resolve(l.getEntries()[0].startTime))
      .observe({ type: 'paint', buffered: true });
    setTimeout(() => resolve(null), 5000);
  }));
  // Speed is a benchmark's (bench/bench_ui.sh: the 200 ms target against a
  // static server in the same run); here only a page that takes seconds is
  // wrong, whatever else the machine runs.
  if (fcp === null || fcp > 2000) fail(`first paint after ${fcp} ms`);
  ok(`strict CSP, no CORS; page and files ${size} bytes (< 200 KB); first paint ${fcp.toFixed(0)} ms`);

  // a session's POST without the CSRF token is refused, with it accepted
  const csrf = await page.evaluate(() => {
    const m = document.querySelector('meta[name="sova-csrf"]');
    return m ? m.content : '';
  });
  if (!/^[0-9a-f]{64}$/.test(csrf)) fail(`no CSRF token in the page: ${csrf}`);
  const cookieHdr = `sova_session_${PORT}=${c.value}`;
  [st, , body] = await raw('POST', '/api/v1/limits', { Cookie: cookieHdr, 'Content-Type': 'application/json' }, '{}');
  if (st !== 403) fail(`a session POST without X-Sova-CSRF: ${st} ${body}`);
  [st, , body] = await raw('POST', '/api/v1/limits',
    { Cookie: cookieHdr, 'Content-Type': 'application/json', 'X-Sova-CSRF': '0'.repeat(64) }, '{}');
  if (st !== 403) fail(`a session POST with a wrong X-Sova-CSRF: ${st} ${body}`);
  [st, , body] = await raw('POST', '/api/v1/limits',
    { Cookie: cookieHdr, 'Content-Type': 'application/json', 'X-Sova-CSRF': csrf }, '{}');
  if (st !== 200) fail(`a session POST with its X-Sova-CSRF: ${st} ${body}`);
  [st, , body] = await raw('POST', '/api/v1/limits', { Cookie: cookieHdr, 'Content-Type': 'application/json',
    'X-Sova-CSRF': csrf, Origin: 'http://evil.example' }, '{}');
  if (st !== 403) fail(`a session POST from a foreign Origin: ${st} ${body}`);
  ok('a session POST needs its CSRF token (none or a wrong one 403) and a same Origin');

  // ---- keyboard: a skip link first, then the navigation ----------------------------------
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement && document.activeElement.textContent.trim());
  let inNav = false;
  for (let i = 0; i < 8 && !inNav; i++) {
    await page.keyboard.press('Tab');
    inNav = await page.evaluate(() => !!(document.activeElement && document.activeElement.closest('nav')));
  }
  if (!inNav) fail(`Tab does not reach the navigation (first focus: ${first})`);
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select')]
    .filter((e) => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
    .map((e) => e.id || e.name));
  if (unlabelled.length) fail(`inputs without a label: ${unlabelled.join(', ')}`);
  ok(`keyboard: Tab reaches the navigation (first stop: "${first}"); every input has a label`);

  // ---- search, and hostile names shown as text --------------------------------------------
  await show(page, '#/search', '#search-q');
  await page.type('#search-q', WORD);
  await page.keyboard.press('Enter');
  await page.waitForFunction((n) => document.querySelectorAll('#search-results tbody tr[data-id]').length >= n,
    { timeout: 20000 }, 3);
  const names = await page.$$eval('#search-results tbody tr[data-id] .name', (els) => els.map((e) => e.textContent));
  const pwned = await page.evaluate(() => window.__pwned);
  if (pwned !== undefined) fail(`a file name ran script: window.__pwned = ${pwned}`);
  const injected = await page.evaluate(() => document.querySelectorAll('#search-results img, #search-results svg, #search-results script').length);
  if (injected) fail(`a file name became ${injected} element(s)`);
  if (!names.some((n) => n.includes('<img src=x onerror=')))
    fail(`the <img> name is not shown as text: ${JSON.stringify(names)}`);
  if (!names.some((n) => n.includes('"><svg onload=')))
    fail(`the <svg> name is not shown as text: ${JSON.stringify(names)}`);
  await shot(page, 'search');
  ok(`search finds ${names.length} files; hostile names are text: no element, no script`);

  // ---- one click downloads; progress from the event stream ---------------------------------
  const before = apiCalls['/api/v1/downloads'] || 0;
  for (const id of [ID.done, ID.pause]) {
    const sel = `#search-results tbody tr[data-id="${id}"] [data-action="get"]`;
    await page.waitForSelector(sel, { timeout: 10000 });
    await page.click(sel);
    await new Promise((r) => setTimeout(r, 300));
  }
  // The third under a name of the user's choosing (the supernode refuses
  // such names from sharers): a right-to-left override and a control
  // character must show as marks, not reorder or hide the row.
  [st, , body] = await raw('POST', '/api/v1/get', { Cookie: cookieHdr, 'Content-Type': 'application/json',
    'X-Sova-CSRF': csrf }, JSON.stringify({ id: ID.cancel, name: `${WORD} evil\u202egnp\u0007.exe` }));
  if (st !== 200) fail(`get with a name: ${st} ${body}`);
  await show(page, '#/downloads', '#downloads');
  const shown = await waitCell(page, ID.cancel, '.name', (t) => t !== null, 20, 'the third download');
  if (!shown.includes('⟨U+202E⟩') || !shown.includes('⟨U+0007⟩') || /[\u202e\u0007]/.test(shown))
    fail(`a right-to-left override and a control character are not shown as marks: ${JSON.stringify(shown)}`);
  // Cancelled while it runs: now, not after the first one completes (the
  // source's upload limit is shared, and which file it serves first is its
  // scheduler's choice).
  await waitCell(page, ID.cancel, '.state', (t) => t && /running|queued/.test(t), 30, 'the third download running');
  await click(page, ID.cancel, 'cancel');
  await waitCell(page, ID.cancel, '.state', (t) => t === null, 20, 'cancel (its row gone)');
  await waitCell(page, ID.done, '.percent', (t) => t === '100 %', 120, 'a download reaching 100 %');
  await waitCell(page, ID.done, '.state', (t) => t && t.includes('complete'), 30, 'the finished download');
  ok(`one click on Download starts it; the downloads page shows it reach 100 % and complete; a name with a right-to-left override shows as "${shown}"`);

  // ---- pause and resume one (the third was cancelled above) -----------------------------------
  await waitCell(page, ID.pause, '.state', (t) => t && /running|queued/.test(t), 30, 'the second download running');
  await click(page, ID.pause, 'pause');
  await waitCell(page, ID.pause, '.state', (t) => t && t.includes('paused'), 20, 'pause');
  const held = await cell(page, ID.pause, '.percent');
  await shot(page, 'downloads-paused');
  await click(page, ID.pause, 'resume');
  await waitCell(page, ID.pause, '.state', (t) => t && /running|queued|complete/.test(t), 20, 'resume');
  await shot(page, 'downloads');
  await page.setViewport({ width: 360, height: 740 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  await shot(page, 'downloads-360px');
  if (wide > 360) fail(`at 360 px the page is ${wide} px wide`);
  await page.setViewport({ width: 1100, height: 800 });
  await waitCell(page, ID.pause, '.percent', (t) => t === '100 %', 180, 'the resumed download finishing');
  const polled = (apiCalls['/api/v1/downloads'] || 0) - before;
  if (polled > 5) fail(`the page asked /api/v1/downloads ${polled} times: poll loops, not the event stream`);
  if (!apiCalls['/api/v1/events']) fail('the page never opened the event stream');
  ok(`pause (held at ${held}), resume to 100 %, cancel removes the row; ${polled} reads of /downloads, updates from the event stream; at 360 px no wider than the screen`);

  // ---- the other pages -------------------------------------------------------------------------
  await show(page, '#/shares', '#folders');
  await shot(page, 'shares');
  await show(page, '#/status', '#status');
  await page.waitForFunction(() => {
    const p = document.querySelector('#why-relayed');
    return p && p.textContent.trim().length > 20;
  }, { timeout: 10000 });
  const why = await page.$eval('#why-relayed', (e) => e.textContent.trim());
  await shot(page, 'status');
  await show(page, '#/credit', '#credit');
  await shot(page, 'credit');
  await show(page, '#/settings', '#limits-form');
  await page.waitForFunction(() => document.querySelector('#upload-kbps').value !== '', { timeout: 10000 });
  await page.$eval('#download-kbps', (e) => { e.value = ''; });
  await page.type('#download-kbps', '4321');
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/limits') && r.request().method() === 'POST'),
    page.$eval('#limits-form', (f) => f.requestSubmit()),
  ]);
  [st, , body] = await raw('GET', '/api/v1/limits', { Cookie: cookieHdr });
  if (st !== 200 || JSON.parse(body).limits.download_kbps !== 4321) fail(`limits after the settings form: ${st} ${body}`);
  await shot(page, 'settings');
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
  const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
  const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  if (dark === light) fail(`the same background in dark and light: ${dark}`);
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
  await show(page, '#/downloads', '#downloads');
  await shot(page, 'downloads-dark');
  ok(`shares, status ("${why.slice(0, 60)}…"), credit and settings pages; the settings form set the limit; dark (${dark}) and light (${light})`);

  // ---- log out -----------------------------------------------------------------------------------
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
  await page.click('#logout');
  await page.waitForFunction(() => location.pathname === '/login', { timeout: 10000 });
  [st] = await raw('GET', '/api/v1/status', { Cookie: cookieHdr });
  if (st !== 401) fail(`the session still works after logging out: ${st}`);
  ok('log out ends the session');

  if (errors.length) fail(`the page logged errors: ${errors.join(' | ')}`);
  ok('no script errors, and no request left the daemon');
}

main().then(() => {
  console.log(`ui checks: ${checks} passed`);
}, (e) => {
  console.error(`FAIL: ${e.message}`);
  process.exit(1);
});
