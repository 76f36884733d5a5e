// The web page of `upres serve`, driven in Debian's chromium: upload an image, watch progress,
// compare before/after, download; then a video with live progress and download; then cancel a
// long video. Writes screenshots next to the test's scratch folder.
//
//   node tests/web/web_page.test.mjs path/to/upres [screenshot-dir]
//
// Exits 77 (skipped) when chromium or playwright-core is not installed; `make test` installs both.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';

const SKIP = 77;
const chromiumPath = process.env.UPRES_CHROMIUM || '/usr/bin/chromium';
const [upresArg, screenshotDir = os.tmpdir()] = process.argv.slice(2);
const upres = upresArg && path.resolve(upresArg);
if (!upresArg) {
  console.error('usage: web_page.test.mjs path/to/upres [screenshot-dir]');
  process.exit(2);
}
if (!fs.existsSync(chromiumPath)) {
  console.log(`skipped: no chromium at ${chromiumPath} (make test installs it)`);
  process.exit(SKIP);
}
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch {
  console.log('skipped: playwright-core is not installed (make test runs npm ci in tests/web)');
  process.exit(SKIP);
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'upres-web-'));
const run = (...args) => execFileSync(upres, args, { cwd: root, stdio: 'pipe' });
run('sample', '-o', 'pic.png', '--size', '48x32');
run('sample', '-o', 'clip.mp4', '--size', '96x64', '--frames', '20');
run('sample', '-o', 'long.mp4', '--size', '320x180', '--frames', '120');

// Width and height from a PNG's IHDR chunk.
function pngSize(bytes) {
  assert.equal(bytes.subarray(1, 4).toString(), 'PNG', 'the download is not a PNG');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

// One job at a time, so a second one shows its place in the queue.
const server = spawn(upres, ['serve', '--port', '0', '--root', root, '--quiet', '--max-jobs', '1'],
                     { stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((resolve, reject) => {
  let text = '';
  server.stdout.on('data', (d) => {
    text += d;
    const m = text.match(/listening on (http:\/\/\S+)/);
    if (m) resolve(m[1]);
  });
  server.on('exit', (code) => reject(new Error(`upres serve exited with ${code}`)));
  setTimeout(() => reject(new Error('upres serve did not start')), 20000);
});

const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] });
let failed = false;
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1000, height: 900 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(url);
  await page.waitForSelector('#model option[value="upres-compact-x2"]', { state: 'attached' });
  await page.selectOption('#model', 'upres-compact-x2');

  // --- an image: progress, before/after slider, download ---
  await page.setInputFiles('#file', path.join(root, 'pic.png'));
  assert.match(await page.textContent('#chosen'), /pic\.png/);
  await page.click('#start');
  await page.waitForSelector('#download', { state: 'visible', timeout: 60000 });
  assert.equal(await page.$eval('#progress', (p) => p.value), 100, 'progress did not reach 100');
  assert.match(await page.textContent('#status'), /Done: 96x64/);
  await page.waitForFunction(() => document.getElementById('after').naturalWidth === 96);
  assert.equal(await page.$eval('#before', (img) => img.naturalWidth), 48);
  await page.$eval('#slider', (s) => { s.value = '25'; s.dispatchEvent(new Event('input')); });
  assert.equal(await page.$eval('#before-clip', (d) => d.style.width), '25%');
  await page.screenshot({ path: path.join(screenshotDir, 'upres-web-image.png'), fullPage: true });
  const [imageDownload] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  assert.equal(imageDownload.suggestedFilename(), 'pic-upres-x2.png');
  const imagePath = path.join(root, 'downloaded.png');
  await imageDownload.saveAs(imagePath);
  assert.deepEqual(pngSize(fs.readFileSync(imagePath)), { width: 96, height: 64 });

  // --- a video: live progress from server-sent events, then the download ---
  const seenStatus = new Set();
  await page.exposeFunction('reportStatus', (t) => seenStatus.add(t));
  await page.evaluate(() => {
    new MutationObserver(() => window.reportStatus(document.getElementById('status').textContent))
      .observe(document.getElementById('status'), { childList: true, characterData: true, subtree: true });
  });
  await page.setInputFiles('#file', path.join(root, 'clip.mp4'));
  await page.click('#start');
  await page.waitForFunction(() => /^Done: 192x128, 20 frames/.test(document.getElementById('status').textContent),
                             null, { timeout: 120000 });
  assert.ok([...seenStatus].some((t) => /^Started: 192x128/.test(t)), `no start status in ${[...seenStatus]}`);
  assert.equal(await page.$eval('#progress', (p) => p.value), 100);
  assert.equal(await page.isVisible('#image-result'), false);
  const [videoDownload] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  assert.equal(videoDownload.suggestedFilename(), 'clip-upres-x2.mp4');
  const videoPath = path.join(root, 'downloaded.mp4');
  await videoDownload.saveAs(videoPath);
  assert.equal(fs.readFileSync(videoPath).subarray(4, 8).toString(), 'ftyp', 'the download is not an mp4');
  await page.screenshot({ path: path.join(screenshotDir, 'upres-web-video.png'), fullPage: true });

  // --- a video that waits its turn: the page shows its place in the queue ---
  const blocker = await (await fetch(url + '/v1/video/upscale', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ input: 'long.mp4', model: 'upres-compact-x2' }),
  })).json();
  assert.equal(blocker.state, 'running');
  seenStatus.clear();
  await page.setInputFiles('#file', path.join(root, 'clip.mp4'));
  await page.click('#start');
  await page.waitForFunction(() => /^Queued, position 1/.test(document.getElementById('status').textContent),
                             null, { timeout: 120000 });
  await page.screenshot({ path: path.join(screenshotDir, 'upres-web-queued.png'), fullPage: true });
  await fetch(url + '/v1/jobs/' + blocker.id, { method: 'DELETE' });
  await page.waitForFunction(() => /^Done: 192x128, 20 frames/.test(document.getElementById('status').textContent),
                             null, { timeout: 120000 });

  // --- cancel a long video while it runs ---
  seenStatus.clear();
  await page.setInputFiles('#file', path.join(root, 'long.mp4'));
  await page.click('#start');
  await page.waitForFunction(() => /^upscaling: frame/.test(document.getElementById('status').textContent),
                             null, { timeout: 120000 });
  const midway = await page.$eval('#progress', (p) => p.value);
  assert.ok(midway > 0 && midway < 100, `progress mid-job was ${midway}`);
  await page.click('#cancel');
  await page.waitForFunction(() => document.getElementById('status').textContent === 'Cancelled.', null,
                             { timeout: 120000 });
  assert.equal(await page.isDisabled('#start'), false, 'start stays disabled after cancel');
  const jobs = await (await fetch(url + '/v1/jobs')).json();
  assert.equal(jobs.jobs.at(-1).state, 'cancelled');

  assert.deepEqual(pageErrors, [], 'the page threw errors');
  console.log('web page: image, video and cancel flows passed; screenshots in ' + screenshotDir);
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
  server.kill('SIGTERM');
  await new Promise((r) => server.on('exit', r));
  fs.rmSync(root, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
