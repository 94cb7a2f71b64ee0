// aiortc tablet -> gateway -> Chromium verifier with real content: the
// tablet (tests/browser/aiortc_tablet.py) paints its frame number into each
// video frame as black and white blocks; the verifier page draws the remote
// <video> into a canvas on every frame and reads the number back
// (web/test/counter.js). The numbers read must be many, distinct and strictly
// increasing: the gateway forwards the real pictures, in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as lib from './lib.mjs';

lib.requireBinaries(lib.CHROMIUM);

const WANTED_READS = 40; // distinct counter values read back (30 frames/s are sent)

const env = lib.browserFixture('md-br-aiortc-');

test('aiortc tablet frame counter read back in a Chromium verifier', { timeout: 120_000 * lib.SLOW },
     async () => {
  try {
    const context = await env.chromium.newContext();
    const verifier = await context.newPage();
    lib.recordConsole(verifier, 'verifier', env.consoleLog);
    await lib.openVerifier(verifier, env.gw, { counter: '1' });

    const tablet = lib.startAiortcTablet(env);
    const { session } = await tablet.until((m) => m.session, 'aiortc tablet: queued');
    await lib.accept(verifier, session);
    await tablet.until((m) => m.answer, 'aiortc tablet: answer', 60_000 * lib.SLOW);
    await lib.waitLive(verifier, 'verifier');
    await lib.assertMediaFlows(verifier, 'verifier', 'video/VP8');

    const counter = await lib.waitFor(verifier, (n) => {
      const c = window.mdTest.counter;
      return c.reads.length >= n ? c : null;
    }, WANTED_READS, `${WANTED_READS} frame counters read from the remote video`, 60_000);
    // Every number read was sent: the tablet's own count catches up with the
    // highest one (a misread, e.g. a stray high bit, would never be reached).
    const highest = counter.reads[counter.reads.length - 1];
    const { frames } = await tablet.until((m) => m.frames > highest,
                                          `aiortc tablet: ${highest} frames sent`);
    console.log(`# read ${counter.reads.length} counters in ${counter.samples} samples ` +
                `(${counter.unreadable} unreadable): ${counter.reads.slice(0, 12).join(' ')} ... ` +
                `${counter.reads.slice(-5).join(' ')}; the tablet had sent ${frames} frames`);
    const reads = counter.reads;
    assert.equal(counter.decreases, 0, `counters read out of order: ${reads.join(' ')}`);
    for (let i = 1; i < reads.length; i++) {
      assert.ok(reads[i] > reads[i - 1], `read ${reads[i]} after ${reads[i - 1]}: ${reads.join(' ')}`);
    }
    assert.ok(new Set(reads).size >= WANTED_READS);

    await verifier.evaluate(() => window.mdTest.outcome('verified'));
    const ended = await lib.waitFor(verifier, () => window.mdTest.ended, null, 'ended');
    assert.equal(ended.outcome, 'verified');
    await tablet.until((m) => m.ended !== undefined, 'aiortc tablet: ended');
    await context.close();
  } catch (e) {
    env.failed = true;
    throw e;
  }
});
