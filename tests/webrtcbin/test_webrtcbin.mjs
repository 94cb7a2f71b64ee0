// GStreamer webrtcbin as the tablet (issue 12, item 5) with a browser
// verifier, through the real daemon (docs/internals/resilience.md).
//
// The tablet is tests/webrtcbin/webrtcbin_tablet (C: webrtcbin, libsoup's
// WebSocket client with the device certificate), the path a managed tablet
// app would take; it requests a session at once and reports what happens as
// JSON lines. The verifier is a person at the product console `/verifier` in
// Chromium (playwright-core, /usr/bin/chromium), who logs in with password and
// TOTP, accepts the post office's request, reads the tablet's chat, answers
// it, and records the outcome, all by role and label (tests/browser/product.mjs).
//
// Asserted:
// - the console decodes the tablet's VP8 (getStats framesDecoded grows, 320x240)
//   and shows it moving in its <video>, and its quality panel has the tablet
//   leg's figures;
// - webrtcbin decodes the verifier's audio and video (the tablet's counters);
// - chat both ways: the tablet's message appears in the console's chat log,
//   the one the verifier types reaches the tablet; each is acknowledged by the
//   gateway and audited with its leg;
// - the outcome recorded at the console ends the session on both sides
//   (`verified`, reason `outcome`) and the tablet exits 0.
// Loopback only (the console with ?loopback=1, the tablet keeps only the
// gateway's 127.0.0.1 candidates).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as lib from '../browser/lib.mjs';
import * as p from '../browser/product.mjs';

const TABLET = process.env.MD_WEBRTCBIN_TABLET;
const TABLET_CHAT = 'webrtcbin の窓口端末です。'; // webrtcbin_tablet.c's CHAT_TEXT
const VERIFIER_CHAT = 'カードを見せてください。';
const DECODED = 10; // video frames and audio buffers the tablet must decode

lib.requireBinaries(lib.CHROMIUM);
if (!TABLET) {
  console.error('error: set MD_WEBRTCBIN_TABLET (meson test does)');
  process.exit(1);
}

let tablet;
const env = lib.browserFixture('md-webrtcbin-');
env.onFailure = () => {
  if (tablet) console.log(`webrtcbin tablet said: ${JSON.stringify(tablet.history.slice(-20))}`);
};
env.cleanup = async () => {
  if (tablet && tablet.proc.exitCode === null) {
    tablet.proc.kill();
    await tablet.exited;
  }
};
const t0 = Date.now();
const log = (text) => console.log(`# [${((Date.now() - t0) / 1000).toFixed(1)} s] ${text}`);

// The tablet's first line with event `kind`, printed already or within the
// timeout (its lines come in any order); throws on its `error` line or exit.
function tabletEvent(kind, pred = () => true, timeout = 30_000 * lib.SLOW) {
  const seen = tablet.history.find((m) => m.event === kind && pred(m));
  if (seen) return Promise.resolve(seen);
  return tablet.until((m) => m.event === kind && pred(m), `webrtcbin tablet: ${kind}`, timeout);
}

test('webrtcbin tablet and the verifier console in Chromium: media both ways, chat, outcome',
     { timeout: 90_000 * lib.SLOW }, async () => {
  const ctx = await env.chromium.newContext({ viewport: { width: 1440, height: 900 } });
  const verifier = await ctx.newPage();
  lib.recordConsole(verifier, 'console', env.consoleLog);
  try {
    await p.loginChromium(verifier, env.gw);
    log('console logged in');
    // GStreamer's own allocations outlive main(); the gateway's run checks ours.
    tablet = new lib.JsonLines(TABLET, [env.gw.deviceWs, env.gw.ca, env.gw.device.cert,
                                        env.gw.device.key], { ASAN_OPTIONS: 'detect_leaks=0' });
    const { session } = await tabletEvent('queued');
    log(`webrtcbin tablet queued: ${session}`);

    // The request in the console's queue; the verifier accepts it
    const accept = verifier.getByRole('button', { name: '温田郵便局の申請を受け付ける' });
    await accept.waitFor();
    await verifier.getByRole('cell', { name: /マイナンバーカードの新規発行/ }).waitFor();
    await accept.click();
    await verifier.getByRole('heading', { name: /温田郵便局/ }).waitFor();
    await verifier.getByRole('status').filter({ hasText: '通話中' })
      .waitFor({ timeout: 40_000 * lib.SLOW });
    assert.equal(await verifier.evaluate(() => window.mdTest.session), session);
    await tabletEvent('live');
    log('live');

    // The tablet's picture in the console: decoded, VP8 at 320x240, moving
    const seen = await p.framesGrow(verifier, 'console (from webrtcbin)');
    assert.equal(seen.video.codec, 'video/VP8');
    assert.deepEqual([seen.video.frameWidth, seen.video.frameHeight], [320, 240]);
    assert.ok(seen.audio && seen.audio.packetsReceived > 0, 'the console receives the tablet\'s audio');
    await p.pictureMoves(verifier, '#remote-video');
    // the quality panel's first column: the tablet leg, as the gateway measures it
    await verifier.getByRole('region', { name: '通信品質' })
      .getByRole('row', { name: /^映像ビットレート \d+ kbps/ }).waitFor();

    // Chat both ways: the tablet's message in the console's log, the verifier's at the tablet
    const chatLog = verifier.getByRole('log', { name: 'チャット' });
    await chatLog.getByText(TABLET_CHAT).waitFor();
    await tabletEvent('chat_ack');
    await verifier.getByLabel('メッセージを入力').fill(VERIFIER_CHAT);
    await verifier.getByRole('button', { name: '送信', exact: true }).click();
    const got = await tabletEvent('chat');
    assert.equal(got.text, VERIFIER_CHAT);
    await chatLog.locator('.bubble.out .meta', { hasText: '✓ 届きました' }).waitFor();
    log('chat both ways, acknowledged');

    // webrtcbin decodes the verifier's camera and microphone
    const media = await tabletEvent('media', (m) => m.video_frames > DECODED && m.audio_buffers > DECODED);
    log(`webrtcbin decoded ${media.video_frames} video frames, ${media.audio_buffers} audio buffers`);

    // The outcome, recorded as a person does: result, submit, confirm
    await verifier.getByRole('radio', { name: '確認完了' }).check();
    await verifier.getByRole('button', { name: '結果を記録する' }).click();
    await verifier.getByRole('dialog', { name: '結果を記録しますか?' })
      .getByRole('button', { name: '記録して終了する' }).click();
    await verifier.getByRole('heading', { name: 'セッションは終了しました' }).waitFor();
    assert.equal(await verifier.locator('#ended-result').textContent(), '結果: 確認完了');
    const ended = await tabletEvent('ended');
    assert.deepEqual([ended.outcome, ended.reason], ['verified', 'outcome'], JSON.stringify(ended));
    assert.equal(ended.chat_acked, true);
    assert.equal(ended.chat_received, VERIFIER_CHAT);
    assert.ok(ended.video_frames > DECODED && ended.audio_buffers > DECODED, JSON.stringify(ended));
    assert.equal(await tablet.exited, 0, 'the webrtcbin tablet exits 0');
    log(`ended: ${JSON.stringify(ended)}`);

    const entries = await env.gw.audit(session);
    const chats = entries.filter((e) => e.event === 'chat').map((e) => e.detail.leg).sort();
    assert.deepEqual(chats, ['tablet', 'verifier'], `chat audit entries: ${JSON.stringify(entries)}`);
  } catch (e) {
    env.failed = true;
    await lib.hangupIfOpen(verifier);
    throw e;
  } finally {
    await ctx.close().catch(() => {});
  }
});
