// Firefox ESR verifier <-> Chromium tablet through a real gateway: each
// browser decodes the other's video and audio (VP8). Firefox is the verifier
// (password + TOTP login, cookie), so it needs no client certificate; it
// trusts the gateway's dev CA through cert9.db in its profile.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as lib from './lib.mjs';

lib.requireBinaries(lib.CHROMIUM, lib.FIREFOX);

let gw;
let chromium;
let firefox;
let tmp;
let failed = false;
const consoleLog = [];

before(async () => {
  try {
    tmp = lib.tempDir('md-br-firefox-');
    gw = await lib.Gateway.start();
    const home = path.join(tmp, 'home');
    lib.nssTrustingCa(path.join(home, '.pki', 'nssdb'), gw.ca);
    const profile = lib.nssTrustingCa(path.join(tmp, 'firefox-profile'), gw.ca);
    [chromium, firefox] = await Promise.all([lib.launchChromium(home), lib.launchFirefox(profile)]);
  } catch (e) {
    failed = true;
    throw e;
  }
});

after(async () => {
  if (failed) {
    console.log(consoleLog.slice(-80).join('\n'));
    if (gw) {
      console.log(gw.logTail(120));
      console.log(`kept ${await gw.keep()}`);
    }
  }
  await firefox?.close().catch(() => {});
  await chromium?.close().catch(() => {});
  try {
    await gw?.stop();
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('Chromium tablet and Firefox ESR verifier, VP8', { timeout: 120_000 * lib.SLOW }, async () => {
  const tabletContext = await lib.tabletContext(chromium, gw);
  const tablet = await tabletContext.newPage();
  try {
    const verifier = await firefox.newPage();
    lib.recordConsole(verifier, 'firefox verifier', consoleLog);
    lib.recordConsole(tablet, 'chromium tablet', consoleLog);
    await lib.openVerifier(verifier, gw, { codec: 'VP8' });
    console.log(`# ${await verifier.browser().version()}`);
    const id = await lib.openTablet(tablet, gw, { codec: 'VP8' });
    await lib.accept(verifier, id);
    await lib.waitLive(verifier, 'verifier');
    await lib.waitLive(tablet, 'tablet');
    const v = await lib.assertMediaFlows(verifier, 'firefox verifier', 'video/VP8');
    const tb = await lib.assertMediaFlows(tablet, 'chromium tablet', 'video/VP8');
    assert.ok(v.video.frameWidth > 0 && tb.video.frameWidth > 0);
    await lib.finish(verifier, tablet);
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    await lib.hangupIfOpen(tablet);
    await tabletContext.close().catch(() => {});
  }
});
