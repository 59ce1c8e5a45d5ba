// Open every page of the docs site in headless Chromium and report what a reader would hit.
// Usage: node check_pages.mjs BASE_URL OUT_JSON SHOT_DIR page1.html page2.html ...
// Driven by docs/check_site.py, which serves _docs/ on 127.0.0.1 and judges the JSON this writes.
import { chromium } from 'playwright-core';
import { writeFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, outJson, shotDir, ...pages] = process.argv.slice(2);
const host = new URL(base).host;
const exe = process.env.CHROMIUM || '/usr/bin/chromium';
const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
              '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'];

const browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'docs-chromium-')),
  { executablePath: exe, headless: true, args, viewport: { width: 1280, height: 900 } });
const res = { pages: {}, external: [], search: null, screenshots: [] };

// Anything not served by our local server is a failure (and is never fetched).
await browser.route('**/*', route => {
  const u = new URL(route.request().url());
  if (u.protocol === 'data:' || u.protocol === 'blob:' || u.host === host) return route.continue();
  res.external.push(route.request().url());
  return route.abort();
});

async function visit(page, name) {
  const r = { status: null, failed: [], http_errors: [], js_errors: [], console_errors: [],
              broken_images: [], audio: [], ids: [], links: [], math: 0, math_errors: 0 };
  const onFail = q => r.failed.push(`${q.url().slice(0, 200)} (${q.failure()?.errorText})`);
  const onResp = s => { if (s.status() >= 400) r.http_errors.push(`${s.status()} ${s.url()}`); };
  page.on('requestfailed', onFail); page.on('response', onResp);
  page.on('pageerror', e => r.js_errors.push(String(e).slice(0, 300)));
  page.on('console', m => { if (m.type() === 'error') r.console_errors.push(m.text().slice(0, 300)); });
  try {
    const resp = await page.goto(base + name, { waitUntil: 'load', timeout: 30000 });
    r.status = resp ? resp.status() : null;
    await page.waitForLoadState('networkidle', { timeout: 15000 }).catch(() => {});
    // MathJax typesets asynchronously
    await page.evaluate(() => window.MathJax?.startup?.promise).catch(() => {});
    Object.assign(r, await page.evaluate(async () => {
      const imgs = [...document.images];
      await Promise.all(imgs.map(i => i.complete ? 0 : new Promise(ok => { i.onload = i.onerror = ok; })));
      const audios = [...document.querySelectorAll('audio')];
      const audio = await Promise.all(audios.map(a => new Promise(ok => {
        const done = () => ok({ readyState: a.readyState, duration: a.duration, error: a.error ? a.error.code : null });
        if (a.readyState >= 1) return done();
        a.addEventListener('loadedmetadata', done); a.addEventListener('error', done, true);
        a.load(); setTimeout(done, 5000);
      })));
      return {
        broken_images: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src').slice(0, 200)),
        audio,
        ids: [...document.querySelectorAll('[id]')].map(e => e.id),
        links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
        math: document.querySelectorAll('mjx-container').length,
        math_spans: document.querySelectorAll('.math').length,
        math_errors: document.querySelectorAll('mjx-merror').length,
        title: document.title,
        nav_links: document.querySelectorAll('.sidebar-tree a.reference').length,
      };
    }));
  } catch (e) { r.js_errors.push('navigation: ' + String(e).slice(0, 300)); }
  page.off('requestfailed', onFail); page.off('response', onResp);
  return r;
}

const page = await browser.newPage();
for (const name of pages) {
  res.pages[name] = await visit(page, name);
  process.stdout.write(`  opened ${name}\n`);
}

// Screenshots: the home page and a component page (top of page, plus the first plot/audio on that page)
mkdirSync(shotDir, { recursive: true });
for (const [name, file] of [['index.html', 'home.png'], ['00_audio.html', '00_audio.png']]) {
  if (!pages.includes(name)) continue;
  await page.goto(base + name, { waitUntil: 'load' });
  await page.evaluate(() => window.MathJax?.startup?.promise).catch(() => {});
  await page.screenshot({ path: join(shotDir, file) });
  res.screenshots.push(join(shotDir, file));
  // a close-up of the first plot and the first audio player below it (or whichever the page has)
  const clip = await page.evaluate(() => {
    const el = [document.querySelector('div.cell_output img'), document.querySelector('div.cell_output audio')].filter(Boolean);
    if (!el.length) return null;
    const r = el.map(e => e.getBoundingClientRect());
    const top = Math.min(...r.map(b => b.top)) + window.scrollY, bottom = Math.max(...r.map(b => b.bottom)) + window.scrollY;
    const left = Math.min(...r.map(b => b.left)), right = Math.max(...r.map(b => b.right));
    if (bottom - top > 1600) { const b = r[0]; return { x: b.left, y: b.top + window.scrollY, width: b.width, height: b.height }; }
    return { x: Math.max(0, left - 8), y: Math.max(0, top - 8), width: right - left + 16, height: bottom - top + 16 };
  });
  if (clip && name !== 'index.html') {
    const f = join(shotDir, file.replace('.png', '_output.png'));
    await page.screenshot({ path: f, fullPage: true, clip }); res.screenshots.push(f);
  }
  // a close-up of the first API entry with a parameter table (heading, signature, docstring, docments)
  const api = await page.evaluate(() => {
    const box = [...document.querySelectorAll('.nbdocs-api')].find(b => b.querySelector('table'));
    const h = box && box.previousElementSibling;
    if (!box) return null;
    const a = (h || box).getBoundingClientRect(), b = box.getBoundingClientRect();
    return { x: Math.max(0, b.left - 12), y: a.top + window.scrollY - 8, width: b.width + 24, height: b.bottom - a.top + 16 };
  });
  if (api && name !== 'index.html') {
    const f = join(shotDir, file.replace('.png', '_api.png'));
    await page.screenshot({ path: f, fullPage: true, clip: api }); res.screenshots.push(f);
  }
}
// Search: the index is built offline by Sphinx; ask it for a documented function and for a word of prose.
res.search = {};
for (const q of (process.env.DOCS_SEARCH || 'load_audio spectrogram').split(' ')) {
  await page.goto(`${base}search.html?q=${encodeURIComponent(q)}`, { waitUntil: 'load' });
  // results are appended one by one; Sphinx writes 'Search finished, found N pages' when it is done
  const n = await page.waitForFunction(() => {
    const st = document.querySelector('#search-results p.search-summary');
    if (!st || !/finished|did not match/i.test(st.textContent)) return false;
    return document.querySelectorAll('#search-results ul.search li').length;
  }, null, { timeout: 30000 }).then(h => h.jsonValue()).catch(() => 0);
  const first = await page.$$eval('#search-results ul.search li a', as => as.slice(0, 3).map(a => a.getAttribute('href'))).catch(() => []);
  res.search[q] = { results: n, first };
}

await browser.close();
writeFileSync(outJson, JSON.stringify(res, null, 1));
