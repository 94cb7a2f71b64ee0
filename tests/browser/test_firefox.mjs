// Firefox ESR verifier <-> Chromium tablet through a real gateway: each
// browser decodes the other's video and audio (VP8). Firefox is the verifier
// (password + TOTP login, cookie), so it needs no client certificate; it
// trusts the gateway's dev CA through cert9.db in its profile.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as lib from './lib.mjs';

lib.requireBinaries(lib.CHROMIUM, lib.FIREFOX);

const env = lib.browserFixture('md-br-firefox-', { firefox: true });

test('Chromium tablet and Firefox ESR verifier, VP8', { timeout: 120_000 * lib.SLOW }, async () => {
  const tabletContext = await lib.tabletContext(env.chromium, env.gw);
  const tablet = await tabletContext.newPage();
  try {
    const verifier = await env.firefox.newPage();
    lib.recordConsole(verifier, 'firefox verifier', env.consoleLog);
    lib.recordConsole(tablet, 'chromium tablet', env.consoleLog);
    await lib.openVerifier(verifier, env.gw, { codec: 'VP8' });
    console.log(`# ${await verifier.browser().version()}`);
    const id = await lib.openTablet(tablet, env.gw, { codec: 'VP8' });
    await lib.accept(verifier, id);
    await lib.waitLive(verifier, 'verifier');
    await lib.waitLive(tablet, 'tablet');
    const v = await lib.assertMediaFlows(verifier, 'firefox verifier', 'video/VP8');
    const tb = await lib.assertMediaFlows(tablet, 'chromium tablet', 'video/VP8');
    assert.ok(v.video.frameWidth > 0 && tb.video.frameWidth > 0);
    await lib.finish(verifier, tablet);
  } catch (e) {
    env.failed = true;
    throw e;
  } finally {
    await lib.hangupIfOpen(tablet);
    await tabletContext.close().catch(() => {});
  }
});
