// The call as its people see it (issue 8): the counter kiosk in Chromium (the
// device listener's root, the tablet's client certificate) and the verifier
// console in Firefox ESR (login with password and TOTP), driven by role and
// label. One long happy path, then the kiosk's refusals on the same gateway.
// Each screen is written to docs/screenshots/ (kiosk at 1024x768 and
// 768x1024, console at 1440x900).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import * as lib from './lib.mjs';
import * as p from './product.mjs';
import { makeTestFile } from '../../web/test/testfiles.js';

lib.requireBinaries(lib.CHROMIUM, lib.FIREFOX);

const env = lib.browserFixture('md-br-call-', { firefox: true, gateway: p.registryWithUpgrade });
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const t0 = Date.now();
const log = (text) => console.log(`# [${((Date.now() - t0) / 1000).toFixed(1)} s] ${text}`);

async function kioskContext(viewport = { width: 1024, height: 768 }) {
  return env.chromium.newContext({
    ignoreHTTPSErrors: true, viewport,
    clientCertificates: [{ origin: env.gw.deviceOrigin, certPath: env.gw.device.cert,
                           keyPath: env.gw.device.key }],
  });
}

test('Chromium kiosk and Firefox verifier console: a whole verification',
     { timeout: 240_000 * lib.SLOW }, async () => {
  const ctx = await kioskContext();
  const kiosk = await ctx.newPage();
  const verifier = await env.firefox.newPage();
  lib.recordConsole(kiosk, 'kiosk', env.consoleLog);
  lib.recordConsole(verifier, 'console', env.consoleLog);
  try {
    await verifier.setViewport({ width: 1440, height: 900 });
    // Start screen: office name, procedures in Japanese, one awaiting the upgrade
    await p.openKiosk(kiosk, env.gw);
    const renewal = kiosk.getByRole('button', { name: /マイナンバーカードの更新/ });
    assert.equal(await renewal.isDisabled(), true, 'a procedure awaiting the upgrade is disabled');
    await kiosk.getByText('統合端末の改修後に開始します').first().waitFor();
    await p.shot(kiosk, 'kiosk-start.png', { fullPage: true });
    await kiosk.setViewportSize({ width: 768, height: 1024 });
    await p.shot(kiosk, 'kiosk-start-portrait.png', { fullPage: true });
    await kiosk.setViewportSize({ width: 1024, height: 768 });

    await p.loginFirefox(verifier, env.gw);
    log(`console in ${await verifier.browser().version()}`);
    await p.shot(verifier, 'verifier-queue-empty.png');

    // Camera check, then the request
    await kiosk.getByRole('button', { name: /マイナンバーカードの新規発行/ }).click();
    await kiosk.getByRole('heading', { name: 'カメラとマイクの確認' }).waitFor();
    await kiosk.getByText('映像と音声を確認できました').waitFor();
    assert.ok(await kiosk.getByLabel('カメラ', { exact: true }).isVisible());
    await p.shot(kiosk, 'kiosk-check.png');
    await kiosk.getByRole('button', { name: '確認担当者を呼ぶ' }).click();
    await kiosk.getByRole('heading', { name: '確認担当者をお待ちください' }).waitFor();
    await kiosk.getByText('1番目').waitFor();
    const e1 = await kiosk.locator('#waiting-elapsed').textContent();
    await lib.sleep(2100);
    assert.notEqual(await kiosk.locator('#waiting-elapsed').textContent(), e1, 'the wait ticks');
    await p.shot(kiosk, 'kiosk-waiting.png');
    await kiosk.setViewportSize({ width: 768, height: 1024 });
    await p.shot(kiosk, 'kiosk-waiting-portrait.png');
    await kiosk.setViewportSize({ width: 1024, height: 768 });

    // The queue at the verifier: the post office's name, the procedure in Japanese, a ticking wait
    const accept = verifier.locator(p.aria('温田郵便局の申請を受け付ける', 'button'));
    await accept.wait();
    const row = await verifier.evaluate(() => document.querySelector('#queue tr').innerText);
    assert.match(row, /温田郵便局/);
    assert.match(row, /マイナンバーカードの新規発行/);
    const w1 = await verifier.evaluate(() => document.querySelector('#queue td.wait').textContent);
    await lib.sleep(1500);
    assert.notEqual(await verifier.evaluate(() => document.querySelector('#queue td.wait').textContent), w1);
    assert.match(await verifier.title(), /^\(1\) 受付待ち/, 'the title tells of the request');
    const notice = await verifier.evaluate(() => window.mdConsole.lastNotice);
    assert.ok(notice && notice.sound, `a sound for the new request: ${JSON.stringify(notice)}`);
    await p.shot(verifier, 'verifier-queue.png');
    const acceptButton = await verifier.$(p.aria('温田郵便局の申請を受け付ける', 'button'));
    await acceptButton.click();
    await p.until(verifier, () => window.mdTest.sent.includes('accept') || window.mdTest.session, null, 'accept sent');

    // Live, video both ways; the console shows the tablet's moving picture
    await p.until(kiosk, () => window.mdTest.state === 'live', null, 'kiosk live', 40_000);
    await p.until(verifier, () => window.mdTest.state === 'live', null, 'console live', 40_000);
    await p.framesGrow(verifier, 'console (from Chromium kiosk)');
    await p.framesGrow(kiosk, 'kiosk (from Firefox console)');
    await p.pictureMoves(verifier, '#remote-video');
    log('live, video both ways');

    // The clerk's microphone off and on again
    await kiosk.getByRole('button', { name: 'マイクを切る' }).click();
    assert.equal(await kiosk.getByRole('button', { name: /マイクを入れる/ }).getAttribute('aria-pressed'), 'true');
    assert.equal(await kiosk.evaluate(() => window.mdTest.leg.localStream.getAudioTracks()[0].enabled), false);
    await kiosk.getByRole('button', { name: /マイクを入れる/ }).click();

    // Chat both ways with delivery marks
    await kiosk.getByLabel('メッセージを入力').fill('本人確認書類を準備しました。');
    await kiosk.getByRole('button', { name: '送信', exact: true }).click();
    await kiosk.locator('.bubble.out .meta', { hasText: '✓ 届きました' }).waitFor();
    await verifier.locator('::-p-text(本人確認書類を準備しました。)').wait();
    await verifier.locator(p.aria('メッセージを入力', 'textbox')).fill('カードの表面をカメラに向けてください。');
    await verifier.locator(p.aria('送信', 'button')).click();
    await kiosk.getByText('カードの表面をカメラに向けてください。').waitFor();
    await p.until(verifier, () => [...document.querySelectorAll('.bubble.out .meta')]
      .some((e) => e.textContent.includes('✓ 届きました')), null, 'console chat delivered');
    log('chat both ways, delivered');

    // A file each way with progress, identical SHA-256
    const pdf = makeTestFile({ type: 'pdf', size: 3 * 1024 * 1024 + 123, seed: 8 });
    await kiosk.getByLabel('ファイルを送る').setInputFiles({ name: '申請書.pdf', mimeType: 'application/pdf', buffer: Buffer.from(pdf) });
    const got = await p.until(verifier, () => {
      const r = window.md.received.find((x) => x.name === '申請書.pdf' && x.state === 'verified');
      return r && { sha256: r.sha256, size: r.size, progress: window.md.progress[r.id] };
    }, null, 'console received the PDF', 60_000);
    assert.equal(got.sha256, sha(pdf));
    assert.ok(got.progress && got.progress.in && got.progress.in.events >= 3, JSON.stringify(got.progress));
    const kSent = await kiosk.evaluate(() => {
      const o = Object.values(window.md.sent).find((x) => x.name === '申請書.pdf');
      return { state: o.state, confirmed: window.md.progress[o.id].confirmed, out: window.md.progress[o.id].out };
    });
    assert.equal(kSent.state, 'verified');
    assert.ok(kSent.confirmed && kSent.confirmed.events >= 2, JSON.stringify(kSent));
    await verifier.locator('::-p-text(✓ 完了)').wait();
    const png = makeTestFile({ type: 'png', size: 900 * 1024, seed: 9 });
    const pngPath = path.join(env.tmp, '案内.png');
    fs.writeFileSync(pngPath, png);
    const input = await verifier.$('#file-input');
    await input.uploadFile(pngPath);
    await kiosk.getByText('✓ 受信しました').waitFor({ timeout: 60_000 * lib.SLOW });
    const kGot = await kiosk.evaluate(() => {
      const r = window.md.received.find((x) => x.name === '案内.png');
      return { sha256: r.sha256, state: r.state, progress: window.md.progress[r.id] };
    });
    assert.equal(kGot.sha256, sha(png));
    assert.ok(kGot.progress.in.events >= 1);
    log('a file each way, SHA-256 identical');

    // A still: requested at the console, answered by the kiosk, in the gallery with its resolution
    await verifier.locator(p.aria('書類の写真を依頼', 'button')).click();
    await kiosk.getByText(/確認担当者の依頼で、カメラの写真を撮影して/).waitFor();
    const photoButton = verifier.locator('::-p-aria([name^="写真1を拡大"])');
    await p.until(verifier, () => document.querySelectorAll('#gallery img').length === 1, null, 'still in the gallery', 60_000);
    const cap = await verifier.evaluate(() => document.querySelector('#gallery .cap').textContent);
    const [, sw, sh] = /(\d+)×(\d+)/.exec(cap);
    const still = await kiosk.evaluate(() => window.md.stills[0]);
    assert.equal(Number(sw), still.width);
    assert.equal(Number(sh), still.height);
    log(`still ${sw}x${sh} (${still.method})`);
    await p.shot(kiosk, 'kiosk-call.png');
    await kiosk.setViewportSize({ width: 768, height: 1024 });
    await p.shot(kiosk, 'kiosk-call-portrait.png');
    await kiosk.setViewportSize({ width: 1024, height: 768 });

    // Quality panel with figures
    await p.until(verifier, () => /kbps/.test(document.querySelector('#quality-body').textContent),
                  null, 'quality figures');
    await p.shot(verifier, 'verifier-call.png');
    await verifier.evaluate(() => document.querySelector('#gallery button').click());
    await verifier.locator(p.aria('閉じる', 'button')).wait();
    await p.shot(verifier, 'verifier-still.png');
    await verifier.locator(p.aria('閉じる', 'button')).click();
    void photoButton;

    // Outcome: a reason is required for not_verified; verified with confirmation
    await verifier.locator(p.aria('確認できなかった', 'radio')).click();
    await verifier.locator(p.aria('結果を記録する', 'button')).click();
    await verifier.locator('::-p-text(理由を入力してください)').wait();
    await verifier.locator(p.aria('確認完了', 'radio')).click();
    await verifier.locator(p.aria('結果を記録する', 'button')).click();
    await verifier.locator(p.aria('記録して終了する', 'button')).wait();
    await p.shot(verifier, 'verifier-confirm.png');
    await kiosk.evaluate(() => { window.mdKioskHoldEnd = true; });
    await verifier.locator(p.aria('記録して終了する', 'button')).click();
    await verifier.locator(p.aria('セッションは終了しました', 'heading')).wait();
    const ended = await verifier.evaluate(() => document.querySelector('#ended').innerText);
    assert.match(ended, /確認完了/);
    assert.match(ended, /確認担当者が結果を記録しました/);
    await kiosk.getByRole('heading', { name: 'お手続きが終わりました' }).waitFor();
    assert.equal(await kiosk.locator('#end-result').textContent(), '確認完了');
    await p.shot(kiosk, 'kiosk-end.png');
    await p.shot(verifier, 'verifier-ended.png');
    log('outcome verified, both end screens');
  } catch (e) {
    env.failed = true;
    throw e;
  } finally {
    await lib.hangupIfOpen(kiosk);
    await verifier.close().catch(() => {});
    await ctx.close().catch(() => {});
  }
});

test('kiosk: camera denied, a refused request, and the designations page',
     { timeout: 120_000 * lib.SLOW }, async () => {
  const ctx = await kioskContext();
  const denied = await kioskContext();
  try {
    // Camera permission denied: the browser's own refusal, as a denied prompt gives it
    await denied.addInitScript(() => {
      navigator.mediaDevices.getUserMedia = () =>
        Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
    });
    const d = await denied.newPage();
    lib.recordConsole(d, 'kiosk denied', env.consoleLog);
    await p.openKiosk(d, env.gw);
    await d.getByRole('button', { name: /マイナンバーカードの新規発行/ }).click();
    await d.getByRole('alert').filter({ hasText: 'カメラとマイクの使用が許可されていません' }).waitFor();
    await p.shot(d, 'kiosk-camera-denied.png');
    await d.close();

    // Two kiosks of one device: the second request is refused (request_pending)
    const a = await ctx.newPage();
    const b = await ctx.newPage();
    lib.recordConsole(a, 'kiosk A', env.consoleLog);
    lib.recordConsole(b, 'kiosk B', env.consoleLog);
    for (const k of [a, b]) await p.openKiosk(k, env.gw);
    await a.getByRole('button', { name: /マイナンバーカードの新規発行/ }).click();
    await a.getByRole('button', { name: '確認担当者を呼ぶ' }).click();
    await a.getByRole('heading', { name: '確認担当者をお待ちください' }).waitFor();
    await b.getByRole('button', { name: /住民票の写し/ }).click();
    await b.getByText('映像と音声を確認できました').waitFor();
    await b.getByRole('button', { name: '確認担当者を呼ぶ' }).click();
    await b.getByRole('alert').filter({ hasText: 'この端末にはすでに受付中の申請があります。' }).waitFor();
    await p.shot(b, 'kiosk-refused.png');
    await a.getByRole('button', { name: '申込みを取り消す' }).click();
    await a.getByText('申込みを取り消しました。').waitFor();
    assert.equal(await a.locator('#end-result').textContent(), '中止');

    // The public designations page: styled under the gateway's CSP, readable at 375 px
    const pub = await env.chromium.newContext({ viewport: { width: 375, height: 740 } });
    const page = await pub.newPage();
    const blocked = [];
    page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) blocked.push(m.text()); });
    await page.goto(`${env.gw.origin}/designations`);
    const style = await page.evaluate(() => {
      const th = document.querySelector('th');
      return { bg: getComputedStyle(th).backgroundColor, scroll: document.documentElement.scrollWidth };
    });
    assert.deepEqual(blocked, []);
    assert.notEqual(style.bg, 'rgba(0, 0, 0, 0)', 'the stylesheet applies');
    assert.ok(style.scroll <= 376, `no sideways page scroll at 375 px (${style.scroll})`);
    await p.shot(page, 'designations-375.png');
    await pub.close();
  } catch (e) {
    env.failed = true;
    throw e;
  } finally {
    await ctx.close().catch(() => {});
    await denied.close().catch(() => {});
  }
});

test('every error code of core/md_err.h has its Japanese message', () => {
  const header = fs.readFileSync(path.join(lib.HERE, '..', '..', 'core', 'md_err.h'), 'utf8');
  const codes = [...header.matchAll(/^\s*X\(\s*[A-Z]\w*,\s*"([a-z0-9_]+)"/gm)].map((m) => m[1]);
  assert.ok(codes.length > 60, `codes read from md_err.h: ${codes.length}`);
  return import('../../web/js/lib/errors.js').then(({ ERROR_MESSAGES, errorText }) => {
    const missing = codes.filter((c) => !ERROR_MESSAGES[c]);
    assert.deepEqual(missing, [], 'codes without a Japanese message');
    for (const c of codes) assert.match(errorText(c), /[ぁ-んァ-ン一-龯]/, c);
    assert.match(errorText('some_future_code'), /some_future_code/, 'the fallback shows the code');
  });
});

test('accessibility: the kiosk screens and the console queue pass axe-core',
     { timeout: 120_000 * lib.SLOW }, async () => {
  const kctx = await env.chromium.newContext({
    ignoreHTTPSErrors: true, viewport: { width: 1024, height: 768 }, bypassCSP: true,
    clientCertificates: [{ origin: env.gw.deviceOrigin, certPath: env.gw.device.cert,
                           keyPath: env.gw.device.key }],
  });
  const vctx = await env.chromium.newContext({ viewport: { width: 1440, height: 900 }, bypassCSP: true });
  try {
    const kiosk = await kctx.newPage();
    const verifier = await vctx.newPage();
    await verifier.goto(`${env.gw.origin}/`);
    await p.axe(verifier, 'staff login');
    await p.loginChromium(verifier, env.gw);
    await p.openKiosk(kiosk, env.gw);
    await p.axe(kiosk, 'kiosk start');
    await kiosk.getByRole('button', { name: /マイナンバーカードの新規発行/ }).click();
    await kiosk.getByText('映像と音声を確認できました').waitFor();
    await p.axe(kiosk, 'kiosk check');
    await kiosk.getByRole('button', { name: '確認担当者を呼ぶ' }).click();
    await kiosk.getByRole('heading', { name: '確認担当者をお待ちください' }).waitFor();
    await p.axe(kiosk, 'kiosk waiting');
    await verifier.getByRole('button', { name: '温田郵便局の申請を受け付ける' }).waitFor();
    await p.axe(verifier, 'console queue');
    await kiosk.getByRole('button', { name: '申込みを取り消す' }).click();
    await kiosk.getByRole('heading', { name: 'お手続きが終わりました' }).waitFor();
    await p.axe(kiosk, 'kiosk end');
  } catch (e) {
    env.failed = true;
    throw e;
  } finally {
    await kctx.close().catch(() => {});
    await vctx.close().catch(() => {});
  }
});
