// Chromium tablet <-> Chromium verifier through a real gateway: both browsers
// decode the other's video and audio, relayed by the gateway, first with VP8,
// then with H.264 (constrained baseline, packetization-mode 1) forced on both
// legs. Each leg is its own browser context of one Chromium: the tablet's with
// the device's client certificate, the verifier's logged in with a cookie.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as lib from './lib.mjs';

lib.requireBinaries(lib.CHROMIUM);

const env = lib.browserFixture('md-br-chromium-');

// One session: tablet requests, verifier accepts, both offer with `codec`,
// both see `live`, both decode media, the verifier records the outcome.
async function session(codec, expectedMime, t) {
  await lib.withChromiumPair(env, ` ${codec}`, async ({ verifier, tablet }) => {

    await lib.openVerifier(verifier, env.gw, { codec });
    if (codec === 'H264') {
      const caps = await verifier.evaluate(() => window.mdTest.videoCodecs());
      const baseline = (c) => /^video\/H264 .*packetization-mode=1.*profile-level-id=42e0/i.test(c) ||
                              /^video\/H264 .*profile-level-id=42e0.*packetization-mode=1/i.test(c);
      if (!caps.send.some(baseline) || !caps.receive.some(baseline)) {
        t.skip(`this chromium cannot send/receive H.264 constrained baseline, ` +
               `packetization-mode 1: send ${JSON.stringify(caps.send)}`);
        return;
      }
    }
    const id = await lib.openTablet(tablet, env.gw, { codec });
    await lib.accept(verifier, id);
    await lib.waitLive(verifier, 'verifier');
    await lib.waitLive(tablet, 'tablet');
    const v = await lib.assertMediaFlows(verifier, `verifier (${codec})`, expectedMime);
    const tb = await lib.assertMediaFlows(tablet, `tablet (${codec})`, expectedMime);
    assert.ok(v.video.frameWidth > 0 && tb.video.frameWidth > 0);
    const outVideo = (await tablet.evaluate(() => window.mdTest.stats())).outVideo;
    console.log(`# tablet encoder: ${JSON.stringify(outVideo)}`);
    await lib.finish(verifier, tablet);
  });
}

test('Chromium tablet and Chromium verifier, VP8', { timeout: 120_000 * lib.SLOW },
     (t) => session('VP8', 'video/VP8', t));

test('Chromium tablet and Chromium verifier, H.264', { timeout: 120_000 * lib.SLOW },
     (t) => session('H264', 'video/H264', t));
