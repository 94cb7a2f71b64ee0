// Bandwidth estimation end to end (DESIGN.md 4), Chromium tablet <-> Chromium
// verifier through a real gateway: the answer negotiates abs-send-time on
// video with each leg's own id, the relay keeps that element (re-numbered) so
// each receiving Chromium runs its receive-side estimator and sends REMB, and
// the gateway re-addresses the REMB to the other leg's video sender. Proven
// from the gateway's own counters (the `quality` messages the verifier page
// receives: counters.remb_forwarded counts REMB *from* that leg passed to the
// other, docs/internals/media.md) and from the sending browsers' getStats().
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as lib from './lib.mjs';

lib.requireBinaries(lib.CHROMIUM);

const ABS_SEND_TIME = 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time';

const env = lib.browserFixture('md-br-bwe-');

// The id a description gives abs-send-time in its video m-section, or null.
function absSendTimeId(sdp) {
  const video = (sdp || '').split(/\r?\nm=/).find((s) => s.startsWith('video'));
  const m = video && new RegExp(`a=extmap:(\\d+)(?:/\\w+)? ${ABS_SEND_TIME}\\r?\\n`).exec(video);
  return m ? Number(m[1]) : null;
}

// The nominated candidate pair's availableOutgoingBitrate (bit/s), or null.
async function availableOutgoingBitrate(page) {
  return page.evaluate(async () => {
    const report = await window.mdTest.pc.getStats();
    let best = null;
    report.forEach((s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' &&
          typeof s.availableOutgoingBitrate === 'number')
        best = s.availableOutgoingBitrate;
    });
    return best;
  });
}

test('REMB reaches the sender through the gateway (Chromium <-> Chromium, VP8)',
     { timeout: 120_000 * lib.SLOW }, async () => {
  await lib.withChromiumPair(env, '', async ({ verifier, tablet }) => {
    await lib.goLive(verifier, tablet, env.gw, { codec: 'VP8' });
    await lib.assertMediaFlows(verifier, 'verifier', 'video/VP8');
    await lib.assertMediaFlows(tablet, 'tablet', 'video/VP8');

    // Each answer carries abs-send-time with the id that leg offered.
    for (const page of [tablet, verifier]) {
      const { offer, answer } = await page.evaluate(() => ({
        offer: window.mdTest.pc.localDescription.sdp,
        answer: window.mdTest.pc.remoteDescription.sdp,
      }));
      const offered = absSendTimeId(offer);
      assert.ok(offered, 'Chromium offers abs-send-time on video');
      assert.equal(absSendTimeId(answer), offered, 'answered with the offered id');
      assert.equal((answer.match(/a=extmap:/g) || []).length, 1, 'no other extension answered');
    }

    // The verifier's Chromium estimates the tablet's video and sends REMB; the
    // gateway passes it to the tablet (counted on the verifier's leg), and the
    // other way round (counted on the tablet's leg).
    let q = null;
    await lib.waitFor(verifier, () => {
      const t = window.mdTest.quality.tablet, v = window.mdTest.quality.verifier;
      return t && v && t.counters.remb_forwarded > 0 && v.counters.remb_forwarded > 0;
    }, null, 'remb_forwarded > 0 on both legs', 30_000).catch(async (e) => {
      q = await verifier.evaluate(() => window.mdTest.quality);
      console.log(`# quality: ${JSON.stringify(q)}`);
      throw e;
    });
    q = await verifier.evaluate(() => window.mdTest.quality);
    console.log(`# remb_forwarded: from verifier (to tablet) ${q.verifier.counters.remb_forwarded}, ` +
                `from tablet (to verifier) ${q.tablet.counters.remb_forwarded}`);
    assert.ok(q.verifier.counters.remb_forwarded > 0);
    assert.ok(q.tablet.counters.remb_forwarded > 0);
    assert.equal(q.tablet.counters.dropped_malformed, 0);
    assert.equal(q.verifier.counters.dropped_malformed, 0);

    // The tablet's sender sees an outgoing estimate.
    const tabletRate = await availableOutgoingBitrate(tablet);
    const verifierRate = await availableOutgoingBitrate(verifier);
    console.log(`# availableOutgoingBitrate: tablet ${tabletRate}, verifier ${verifierRate}`);
    assert.ok(tabletRate > 0, `tablet availableOutgoingBitrate ${tabletRate}`);
    await lib.finish(verifier, tablet);
  });
});
