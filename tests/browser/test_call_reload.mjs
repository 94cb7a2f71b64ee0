// The product pages the other way round (issue 8): the counter kiosk in
// Firefox ESR (the tablet's client certificate in its profile) and the
// verifier console in Chromium, through a call to the outcome; mid-call the
// verifier reloads the console, which resumes the same session with video
// both ways (the gateway's rejoin; a new PeerConnection on the same leg).
// The console is worked by keyboard alone (accept, outcome, confirmation);
// the verifier records with the clerk's consent on the kiosk.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as lib from './lib.mjs';
import * as p from './product.mjs';

lib.requireBinaries(lib.CHROMIUM, lib.FIREFOX);

const env = lib.browserFixture('md-br-reload-', { firefox: true, firefoxProfile: lib.firefoxClientCert,
                                                          gateway: p.registryWithUpgrade });
const t0 = Date.now();
const log = (text) => console.log(`# [${((Date.now() - t0) / 1000).toFixed(1)} s] ${text}`);
const NEW_CARD = 'マイナンバーカードの新規発行に係る事務（申請時来庁方式）';

test('Firefox kiosk and Chromium console; the console reloads mid-call',
     { timeout: 240_000 * lib.SLOW }, async () => {
  // bypassCSP: only for injecting axe-core (p.axe) into the console
  const ctx = await env.chromium.newContext({ viewport: { width: 1440, height: 900 }, bypassCSP: true });
  const verifier = await ctx.newPage();
  const kiosk = await env.firefox.newPage();
  lib.recordConsole(verifier, 'console', env.consoleLog);
  lib.recordConsole(kiosk, 'kiosk', env.consoleLog);
  try {
    await kiosk.setViewport({ width: 1024, height: 768 });
    await p.loginChromium(verifier, env.gw);
    await kiosk.goto(`${env.gw.deviceOrigin}/?loopback=1`);
    await p.until(kiosk, () => window.mdTest && window.mdTest.hello, null, 'kiosk: hello');
    log(`kiosk in ${await kiosk.browser().version()}`);
    await kiosk.locator(p.aria(NEW_CARD, 'button')).click();
    await kiosk.locator('::-p-text(映像と音声を確認できました)').wait();
    await kiosk.locator(p.aria('確認担当者を呼ぶ', 'button')).click();
    await kiosk.locator(p.aria('確認担当者をお待ちください', 'heading')).wait();

    // The console by keyboard alone: accept, later the outcome and its confirmation
    await verifier.getByRole('button', { name: '温田郵便局の申請を受け付ける' }).focus();
    await verifier.keyboard.press('Enter');
    await p.until(kiosk, () => window.mdTest.state === 'live', null, 'kiosk live', 40_000);
    await p.until(verifier, () => window.mdTest.state === 'live', null, 'console live', 40_000);
    const session = await verifier.evaluate(() => window.mdTest.session);
    await p.framesGrow(verifier, 'console (from Firefox kiosk)');
    await p.framesGrow(kiosk, 'kiosk (from Chromium console)');
    await p.pictureMoves(verifier, '#remote-video');
    log('live, video both ways');

    // The verifier reloads: the same session comes back, with video both ways
    await verifier.reload();
    await p.until(verifier, () => window.mdTest && window.mdTest.session, null, 'console: rejoined');
    assert.equal(await verifier.evaluate(() => window.mdTest.session), session, 'the same session');
    await verifier.getByRole('heading', { name: /温田郵便局/ }).waitFor();
    const before = await kiosk.evaluate(async () => (await window.mdTest.stats()).video.framesDecoded);
    await p.framesGrow(verifier, 'console after its reload');
    await p.until(kiosk, async (n) => (await window.mdTest.stats()).video.framesDecoded > n + 30,
                  before, 'kiosk: video from the reloaded console');
    await p.pictureMoves(verifier, '#remote-video');
    assert.equal(await kiosk.evaluate(() => window.mdTest.ended), null, 'nobody saw ended');
    log('console reloaded: same session, video both ways');

    // Recording (policy "optional"): the verifier starts it, the clerk is asked
    // and consents, both pages show 録画中; then the verifier stops it
    await verifier.getByRole('button', { name: '録画を開始' }).click();
    await kiosk.locator(p.aria('録画への同意', 'dialog')).wait();
    await kiosk.locator(p.aria('同意する', 'button')).click();
    await verifier.getByText('● 録画中').waitFor({ timeout: 30_000 * lib.SLOW });
    await p.until(kiosk, () => document.getElementById('recording').textContent === '● 録画中',
                  null, 'kiosk: 録画中');
    await verifier.getByRole('button', { name: '録画を停止' }).click();
    await verifier.getByText('録画停止').waitFor();
    log('recording: consent on the kiosk, 録画中 on both, stopped');

    // Chat still works on the new connection
    await verifier.getByLabel('メッセージを入力').fill('再接続しました。');
    await verifier.getByRole('button', { name: '送信', exact: true }).click();
    await kiosk.locator('::-p-text(再接続しました。)').wait();
    await verifier.locator('.bubble.out .meta', { hasText: '✓ 届きました' }).waitFor();

    // Quality warnings of the policy are highlighted; then the outcome
    await verifier.locator('#quality-warnings li', { hasText: '解像度が不足' }).first().waitFor();
    await p.axe(verifier, 'console in a call');

    // Reading a card: digital zoom by keyboard, full screen, own microphone off
    await verifier.getByRole('slider', { name: '拡大' }).focus();
    for (let i = 0; i < 4; i++) await verifier.keyboard.press('ArrowRight');
    const zoom = await verifier.evaluate(() => document.getElementById('remote-video').style.transform);
    assert.equal(zoom, 'scale(2)', 'four steps of 0.25 zoom the applicant to 2x');
    await verifier.getByRole('button', { name: '等倍' }).click();
    await verifier.getByRole('button', { name: '全画面' }).click();
    await p.until(verifier, () => document.fullscreenElement && document.fullscreenElement.id === 'viewer',
                  null, 'the applicant video full screen');
    await verifier.keyboard.press('Escape');
    await verifier.evaluate(() => document.fullscreenElement && document.exitFullscreen());
    await verifier.getByRole('button', { name: 'マイクを切る' }).click();
    assert.equal(await verifier.evaluate(() => window.mdTest.leg.localStream.getAudioTracks()[0].enabled), false);
    await verifier.getByRole('button', { name: 'マイクを入れる' }).click();
    await verifier.getByRole('radio', { name: '確認完了' }).focus();
    await verifier.keyboard.press('Space');
    await verifier.keyboard.press('Tab'); // the reason
    await verifier.keyboard.press('Tab'); // the submit button
    await verifier.keyboard.press('Enter');
    await verifier.getByRole('dialog', { name: '結果を記録しますか?' }).waitFor();
    // the confirmation takes the focus: Enter records
    assert.equal(await verifier.evaluate(() => document.activeElement.textContent), '記録して終了する');
    await verifier.keyboard.press('Enter');
    await verifier.getByRole('heading', { name: 'セッションは終了しました' }).waitFor();
    await p.axe(verifier, 'console ended');
    await kiosk.locator(p.aria('お手続きが終わりました', 'heading')).wait();
    assert.equal(await kiosk.evaluate(() => document.querySelector('#end-result').textContent), '確認完了');
    log('outcome verified, both end screens');
  } catch (e) {
    env.failed = true;
    throw e;
  } finally {
    await kiosk.close().catch(() => {});
    await ctx.close().catch(() => {});
  }
});
