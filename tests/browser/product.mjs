// Helpers for the tests of the product pages (the kiosk at the device
// listener's root, the verifier console after login): they drive the pages
// as a person would, by role and label (Playwright getByRole/getByLabel;
// puppeteer's ::-p-aria() for Firefox), and read figures from window.mdTest /
// window.md (the client library's state) only to check what a person cannot
// see (decoded frames, SHA-256).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as lib from './lib.mjs';

// A copy of the sample registry in which PO-NUKUTA is also designated for a
// procedure awaiting the terminal upgrade (shown disabled on the kiosk).
export function registryWithUpgrade(tmp) {
  const src = path.join(lib.HERE, '..', '..', 'data', 'sample-registry.json');
  const reg = JSON.parse(fs.readFileSync(src, 'utf8'));
  const d = reg.designations.find((x) => x.post_office === 'PO-NUKUTA');
  d.procedures.push('mynumber.renewal');
  // A resolution threshold the test cameras (640x360) never meet: the
  // console highlights the warning.
  reg.municipalities.find((m) => m.code === '204111').security_policy.quality = { min_width: 1280 };
  const out = path.join(tmp, 'registry.json');
  fs.writeFileSync(out, JSON.stringify(reg));
  return { registry: out };
}

// A screenshot into docs/screenshots/ (MD_SCREENSHOTS=0 leaves them alone).
export async function shot(page, name, { fullPage = false } = {}) {
  if (process.env.MD_SCREENSHOTS === '0') return;
  await page.evaluate(() => window.scrollTo(0, 0));
  await lib.screenshot(page, name, { fullPage });
}

// ---- Playwright (Chromium) pages

export async function openKiosk(page, gw, query = { loopback: '1' }) {
  await page.goto(`${gw.deviceOrigin}/?${new URLSearchParams(query)}`);
  await page.getByRole('heading', { name: 'お手続きを選んでください' }).waitFor();
  await page.getByText('温田郵便局').first().waitFor();
}

export async function loginChromium(page, gw, query = { loopback: '1' }, user = 'v-yasuoka') {
  await page.goto(`${gw.origin}/`);
  await page.getByLabel('ユーザー名').fill(user);
  await page.getByLabel('パスワード').fill(gw.password);
  await page.getByLabel('ワンタイムコード').fill(await gw.totp(user));
  await page.getByRole('button', { name: 'ログイン' }).click();
  await page.waitForURL(/\/verifier$/);
  await page.goto(`${gw.origin}/verifier?${new URLSearchParams(query)}`);
  await page.getByRole('heading', { name: /受付待ちの郵便局/ }).waitFor();
  await until(page, () => window.mdTest && window.mdTest.hello, null, 'console: hello');
}

// ---- puppeteer (Firefox) pages

export const aria = (name, role) => `::-p-aria(${role ? `[name="${name}"][role="${role}"]` : name})`;

export async function loginFirefox(page, gw) {
  await page.goto(`${gw.origin}/`);
  console.log('# login page open');
  await page.locator(aria('ユーザー名', 'textbox')).fill('v-yasuoka');
  await page.locator('#password').fill(gw.password); // a password field has no ARIA role to find it by
  await page.locator(aria('ワンタイムコード', 'textbox')).fill(await gw.totp('v-yasuoka'));
  console.log('# login form filled');
  await page.locator(aria('ログイン', 'button')).click();
  await until(page, () => location.pathname === '/verifier' && window.mdTest && window.mdTest.hello,
              null, 'login: the console opens');
  // again with ?loopback=1 (the tests' candidate filter); a navigation the
  // login's redirect was still finishing may abort the first attempt
  for (let i = 0; ; i++) {
    try {
      await page.goto(`${gw.origin}/verifier?loopback=1`);
      break;
    } catch (e) {
      if (i === 2 || !/NS_BINDING_ABORTED/.test(String(e))) throw e;
      await lib.sleep(500);
    }
  }
  await until(page, () => window.mdTest && window.mdTest.hello, null, 'console: hello');
}

// Polls fn in the page (either kind) until truthy.
export async function until(page, fn, arg, what, timeout = 30_000) {
  const deadline = Date.now() + timeout * lib.SLOW;
  for (;;) {
    let v = null;
    try {
      v = await page.evaluate(fn, arg);
    } catch (e) {
      // a navigation in progress (the login's redirect): ask again
      if (Date.now() > deadline) throw e;
    }
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}\n${await lib.describe(page)}`);
    await lib.sleep(250);
  }
}

// Frames decoded from the other leg grow; returns the second sample.
export async function framesGrow(page, name) {
  const first = await until(page, async () => {
    const s = await window.mdTest.stats();
    return s.video && s.video.framesDecoded > 0 && s.audio && s.audio.packetsReceived > 0 ? s : null;
  }, null, `${name}: first frame`, 40_000);
  const second = await until(page, async (f) => {
    const s = await window.mdTest.stats();
    return s.video.framesDecoded > f.video.framesDecoded + 10 ? s : null;
  }, first, `${name}: frames keep coming`);
  console.log(`# ${name}: ${second.video.framesDecoded} frames, ${second.video.frameWidth}x${second.video.frameHeight} ${second.video.codec}`);
  return second;
}

// The picture in `selector` (a <video>) is moving: two canvas samples 600 ms
// apart differ, and neither is blank.  Up to five pairs are taken (3 s), as a
// picture may stand still for a moment (a keyframe awaited on a loaded
// machine); a frozen one stays still through all of them.
export async function pictureMoves(page, selector) {
  const sample = () => page.evaluate((sel) => {
    const v = document.querySelector(sel);
    if (!v || !v.videoWidth) return null;
    const c = document.createElement('canvas');
    c.width = 160;
    c.height = 90;
    const ctx = c.getContext('2d');
    ctx.drawImage(v, 0, 0, c.width, c.height);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const lum = [];
    for (let i = 0; i < d.length; i += 4) lum.push((d[i] + d[i + 1] + d[i + 2]) / 3);
    return lum;
  }, selector);
  const changes = [];
  let a = await sample();
  for (let pair = 0; pair < 5; pair++) {
    await lib.sleep(600);
    const b = await sample();
    assert.ok(a && b, `${selector}: no picture`);
    const mean = a.reduce((x, y) => x + y, 0) / a.length;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff += Math.abs(a[i] - b[i]);
    diff /= a.length;
    changes.push(diff.toFixed(2));
    console.log(`# ${selector}: mean luminance ${mean.toFixed(1)}, mean change ${diff.toFixed(2)}`);
    assert.ok(mean > 5, `${selector}: the picture is black`);
    if (diff > 0.2) return;
    a = b;
  }
  assert.fail(`${selector}: the picture does not move (mean changes ${changes.join(', ')})`);
}

// The test files' generator (web/test/testfiles.js, served with
// web.test_pages) for window.md.sendFile({make}) on a product page, so that
// the tests that move megabytes need not pass them through the automation
// protocol.
export function addTestFiles(page) {
  return page.evaluate(async () => {
    window.md.makeBytes = (await import('/test/testfiles.js')).makeTestFile;
    return true;
  });
}

export const NEW_CARD = 'マイナンバーカードの新規発行に係る事務（申請時来庁方式）';

// axe-core (tests/browser/node_modules, pinned) on the kiosk's screens and the
// console's queue: no serious or critical violation (contrast, labels, names,
// roles). Injected as a script, so these contexts bypass the page's CSP.
export const AXE = path.join(lib.HERE, 'node_modules', 'axe-core', 'axe.min.js');

export async function axe(page, what) {
  await page.addScriptTag({ path: AXE });
  const r = await page.evaluate(async () => {
    const res = await window.axe.run(document, { resultTypes: ['violations'] });
    return res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  });
  console.log(`# axe ${what}: ${r.length ? r.join('; ') : 'no serious violation'}`);
  assert.deepEqual(r, [], `${what}: accessibility violations`);
}

