// Drive the sampling interface in JupyterLab with headless Debian Chromium (playwright-core).
// Usage: PLAYWRIGHT_FROM=<a package.json whose node_modules has playwright-core> node widgets.mjs NOTEBOOK_URL OUT_DIR
// Started by tests/browser/check_widgets.py, which serves the notebook with a tiny model set beside it.
// Exit status 0 when every check passed; OUT_DIR gets result.json and PNG screenshots.
import { createRequire } from 'node:module';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(process.env.PLAYWRIGHT_FROM || import.meta.url);
const { chromium } = require('playwright-core');
const [nbUrl, outDir] = process.argv.slice(2);
mkdirSync(outDir, { recursive: true });
const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
              '--disable-component-update', '--disable-sync'];
const res = { url: nbUrl, checks: {}, timings: {}, screenshots: [], js_errors: [], console_errors: [] };
const t0 = Date.now();
const lap = name => { res.timings[name] = (Date.now() - t0) / 1000; console.log(`widgets.mjs: ${name} at ${res.timings[name].toFixed(1)} s`); };
const check = (name, ok, detail = '') => { res.checks[name] = { ok: !!ok, detail }; console.log(`${ok ? 'ok  ' : 'FAIL'} ${name} ${detail}`); };

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args });
const page = await browser.newPage({ viewport: { width: 1400, height: 2300 } });
page.on('pageerror', e => res.js_errors.push(String(e).slice(0, 300)));
page.on('console', m => { if (m.type() === 'error') res.console_errors.push(m.text().slice(0, 300)); });
const shot = async (name, target = page) => {
  const path = join(outDir, name);
  await target.screenshot({ path }); res.screenshots.push(path);
};
// Counts inside the sampler: players, images that decoded, sample panels, the slider's readout, the progress text.
const state = () => page.evaluate(() => {
  const root = document.querySelector('.vgsg-sampler');
  if (!root) return null;
  const loaded = el => [...el.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0).length;
  const samples = root.querySelector('.vgsg-samples');
  return {
    audio: root.querySelectorAll('audio').length, img: loaded(root),
    sample_audio: samples.querySelectorAll('audio').length, sample_img: loaded(samples),
    panels: samples.querySelectorAll('.vgsg-sample').length,
    titles: [...samples.querySelectorAll('.vgsg-sample b')].map(b => b.textContent),
    readout: root.querySelector('.vgsg-topx .widget-readout')?.textContent?.trim(),
    progress: [...root.querySelectorAll('.widget-label')].map(l => l.textContent).filter(t => /samples in|sample \d/.test(t)),
    status: root.querySelector('.widget-html-content span')?.textContent || '',
  };
});
const waitFor = async (what, fn, timeout) => {
  const end = Date.now() + timeout;
  for (;;) {
    const s = await state().catch(() => null);
    if (s && fn(s)) return s;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s)}`);
    await page.waitForTimeout(500);
  }
};

let failed = false;
try {
  await page.goto(nbUrl, { waitUntil: 'domcontentloaded', timeout: 120000 });
  await page.waitForFunction(() => window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel?.status === 'idle',
                             null, { timeout: 180000, polling: 500 });
  lap('notebook open, kernel idle');
  await page.evaluate(() => window.jupyterapp.commands.execute('notebook:run-all-cells'));
  // the sampler is there once its frames, ground truth and reconstruction images have decoded
  let before = await waitFor('the sampler', s => s.img >= 3 && s.audio >= 2, 240000);
  lap('sampler shown');
  check('sampler rendered', before.img >= 3 && before.audio >= 2, JSON.stringify({ img: before.img, audio: before.audio }));
  await page.locator('.vgsg-sampler').scrollIntoViewIfNeeded();
  await shot('1_sampler.png');

  // move the top-X slider: drag its handle to the left, then check the readout moved down
  const handle = page.locator('.vgsg-topx .noUi-handle').first();
  const box = await handle.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 - 90, box.y + box.height / 2, { steps: 10 });
  await page.mouse.up();
  const moved = await waitFor('the slider readout', s => s.readout !== before.readout, 10000).catch(() => null);
  const topX = moved ? Number(moved.readout) : NaN;
  check('top-X slider moved', moved && topX < Number(before.readout), `${before.readout} -> ${moved?.readout}`);
  lap('slider moved');

  await page.locator('.vgsg-attention input[type=checkbox]').check();
  await page.locator('.vgsg-generate').click();
  const after = await waitFor('two samples', s => s.panels >= 2 && s.sample_audio >= 2 && s.sample_img >= 4 &&
                              s.progress.some(t => /2 of 2 samples/.test(t)), 240000);
  lap('samples shown');
  check('new <audio> players', after.audio >= before.audio + 2, `${before.audio} -> ${after.audio}`);
  check('new spectrogram and attention <img>s', after.sample_img === 4 && after.img === before.img + 4, `${before.img} -> ${after.img}`);
  check('samples drawn with the moved top-X', after.titles.length === 2 && after.titles.every(t => t.includes(`top-X ${topX}`)),
        JSON.stringify(after.titles));
  check('Melception opinion shown', await page.locator('.vgsg-samples .vgsg-opinion').count() === 2);
  // the players hold real sound: wait for their metadata and read the duration (848 frames * 256 / 22050 s)
  const durations = await page.evaluate(() => Promise.all([...document.querySelectorAll('.vgsg-samples audio')].map(a =>
    new Promise(ok => { const done = () => ok(a.duration); if (a.readyState >= 1) return done();
      a.addEventListener('loadedmetadata', done); a.addEventListener('error', () => ok(-1)); a.load(); setTimeout(done, 5000); }))));
  check('players load ~9.85 s of sound', durations.every(d => Math.abs(d - 848 * 256 / 22050) < 0.05), JSON.stringify(durations));
  check('no JavaScript errors', res.js_errors.length === 0, res.js_errors.join(' | '));
  res.state_before = before; res.state_after = after;
  await page.locator('.vgsg-samples').scrollIntoViewIfNeeded();
  await shot('2_generated.png');
  await shot('3_sampler_widget.png', page.locator('.vgsg-sampler'));

  // a strip of frames: the slider and the samples drawn at the current top-X, then at the smallest and the largest X
  const frame = async name => {
    const a = await page.locator('.vgsg-topx').boundingBox(), b = await page.locator('.vgsg-samples').boundingBox();
    const clip = { x: b.x, y: a.y - 8, width: b.width, height: b.y + b.height - a.y + 8 };
    await page.screenshot({ path: join(outDir, name), clip }); res.screenshots.push(join(outDir, name));
  };
  await frame('strip_1.png');
  const xs = [topX];
  for (const [k, dx] of [[2, -600], [3, 1200]]) {
    const h = await page.locator('.vgsg-topx .noUi-handle').first().boundingBox();
    await page.mouse.move(h.x + h.width / 2, h.y + h.height / 2); await page.mouse.down();
    await page.mouse.move(h.x + h.width / 2 + dx, h.y + h.height / 2, { steps: 10 }); await page.mouse.up();
    const x = Number((await waitFor('the slider readout', s => Number(s.readout) !== xs[xs.length - 1], 10000)).readout);
    await page.locator('.vgsg-generate').click();
    await waitFor(`samples at top-X ${x}`, s => s.titles.length === 2 && s.titles.every(t => t.includes(`top-X ${x} `)) &&
                  s.sample_img >= 4 && s.progress.some(t => /2 of 2 samples/.test(t)), 240000);
    await page.waitForTimeout(500);
    await frame(`strip_${k}.png`); xs.push(x);
  }
  check('strip: samples redrawn at each top-X', xs.length === 3 && xs[1] < xs[0] && xs[2] > xs[0], JSON.stringify(xs));
  res.strip_top_x = xs;
  lap('strip frames');
} catch (e) {
  failed = true; res.error = String(e).slice(0, 1000); console.log(`FAIL ${res.error}`);
  await shot('error.png').catch(() => {});
}
await browser.close();
failed ||= Object.values(res.checks).some(c => !c.ok);
res.passed = !failed;
writeFileSync(join(outDir, 'result.json'), JSON.stringify(res, null, 2));
console.log(`widgets.mjs: ${failed ? 'FAILED' : 'passed'} (${Object.keys(res.checks).length} checks, ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
process.exit(failed ? 1 : 0);
