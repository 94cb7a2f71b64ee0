// The product pages the other way round (issue 8): the counter kiosk in
// Firefox ESR (the tablet's client certificate in its profile) and the
// verifier console in Chromium, through a call to the outcome; mid-call the
// verifier reloads the console, which resumes the same session with video
// both ways (the gateway's rejoin; a new PeerConnection on the same leg).
// The console is worked by keyboard alone (accept, outcome, confirmation);
// the verifier records with the clerk's consent on the kiosk.
// Then the gateway is full (media.max_sessions 1: one call at a time): a
// second verifier's accept is refused with the console's banner, the request
// keeps its place, and once the first call ends the same button works.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as lib from './lib.mjs';
import * as p from './product.mjs';
import { errorText } from '../../web/js/lib/errors.js';

lib.requireBinaries(lib.CHROMIUM, lib.FIREFOX);

// A second verifier and a second tablet (the aiortc one) at the same office.
process.env.MD_BR_USERS = JSON.stringify({ 'v-kanda': ['verifier', '204111'] });
process.env.MD_BR_DEVICES = JSON.stringify({ 'TAB-NUKUTA-2': 'PO-NUKUTA' });

const env = lib.browserFixture('md-br-reload-', {
  firefox: true, firefoxProfile: lib.firefoxClientCert,
  gateway: (tmp) => ({ ...p.registryWithUpgrade(tmp), config: { media: { max_sessions: 1 } } }),
});
const t0 = Date.now();
const log = (text) => console.log(`# [${((Date.now() - t0) / 1000).toFixed(1)} s] ${text}`);

// The Firefox kiosk opens and asks for a new card (camera check, 確認担当者を呼ぶ)
// until it waits for a verifier.
async function kioskRequests(kiosk) {
  await kiosk.goto(`${env.gw.deviceOrigin}/?loopback=1`);
  await p.until(kiosk, () => window.mdTest && window.mdTest.hello, null, 'kiosk: hello');
  await kiosk.locator(p.aria(p.NEW_CARD, 'button')).click();
  await kiosk.locator('::-p-text(映像と音声を確認できました)').wait();
  await kiosk.locator(p.aria('確認担当者を呼ぶ', 'button')).click();
  await kiosk.locator(p.aria('確認担当者をお待ちください', 'heading')).wait();
}

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
    await kioskRequests(kiosk);
    log(`kiosk in ${await kiosk.browser().version()}`);

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

// The console's outcome form, by mouse: 確認完了, submit, confirm.
async function recordVerified(page) {
  await page.getByRole('radio', { name: '確認完了' }).check();
  await page.getByRole('button', { name: '結果を記録する' }).click();
  await page.getByRole('button', { name: '記録して終了する' }).click();
  await page.getByRole('heading', { name: 'セッションは終了しました' }).waitFor();
}

test('the gateway full: the console says so, the request waits, accepting again works',
     { timeout: 180_000 * lib.SLOW }, async () => {
  const ctxA = await env.chromium.newContext({ viewport: { width: 1440, height: 900 } });
  const ctxB = await env.chromium.newContext({ viewport: { width: 1440, height: 900 } });
  const first = await ctxA.newPage();
  const second = await ctxB.newPage();
  const kiosk = await env.firefox.newPage();
  lib.recordConsole(first, 'console v-yasuoka', env.consoleLog);
  lib.recordConsole(second, 'console v-kanda', env.consoleLog);
  lib.recordConsole(kiosk, 'kiosk', env.consoleLog);
  try {
    await p.loginChromium(first, env.gw);
    await p.loginChromium(second, env.gw, undefined, 'v-kanda');

    // The one call the gateway carries: the aiortc tablet and the first verifier
    const tablet = lib.startAiortcTablet(env, { id: 'TAB-NUKUTA-2' });
    await tablet.until((m) => m.session, 'aiortc tablet: queued');
    await first.getByRole('button', { name: '温田郵便局の申請を受け付ける' }).click();
    await p.until(first, () => window.mdTest.state === 'live', null, 'first console live', 40_000);
    log('the first call is live');

    // The kiosk asks; the second verifier's accept is refused, and says why
    await kiosk.setViewport({ width: 1024, height: 768 });
    await kioskRequests(kiosk);
    const accept = second.getByRole('button', { name: '温田郵便局の申請を受け付ける' });
    await accept.click();
    const alert = second.getByRole('alert');
    await alert.filter({ hasText: errorText('media_capacity') }).waitFor();
    await p.shot(second, 'verifier-capacity.png');
    // nothing changed: the request is still queued, its button usable again,
    // the kiosk still waiting, the first call still live
    assert.equal(await accept.isEnabled(), true, 'the accept button is usable again');
    assert.equal(await second.evaluate(() => window.mdTest.session || null), null);
    assert.equal(await kiosk.evaluate(() => window.mdTest.state || null), 'requested');
    assert.equal(await first.evaluate(() => window.mdTest.state), 'live');
    const refused = (await env.gw.audit()).filter((e) => e.event === 'accept_refused');
    assert.equal(refused.length, 1, JSON.stringify(refused));
    assert.equal(refused[0].actor, 'staff:v-kanda');
    assert.deepEqual(refused[0].detail, { code: 'media_capacity' });
    log('refused with media_capacity; the request waits');

    // The first call ends; the same button now connects the kiosk
    await recordVerified(first);
    await tablet.until((m) => m.ended !== undefined, 'aiortc tablet: ended');
    await accept.click();
    await p.until(second, () => window.mdTest.state === 'live', null, 'second console live', 40_000);
    await p.until(kiosk, () => window.mdTest.state === 'live', null, 'kiosk live', 40_000);
    await p.framesGrow(second, 'second console (from Firefox kiosk)');
    await p.until(second, () => document.getElementById('banner').classList.contains('hidden'),
                  null, 'the refusal banner cleared');
    await recordVerified(second);
    await kiosk.locator(p.aria('お手続きが終わりました', 'heading')).wait();
    log('after the first call ended, the same accept connected the kiosk');
  } catch (e) {
    env.failed = true;
    throw e;
  } finally {
    await kiosk.close().catch(() => {});
    await ctxA.close().catch(() => {});
    await ctxB.close().catch(() => {});
  }
});
