// ICE-TCP (RFC 6544, docs/internals/media.md "ICE"): a Chromium tablet page
// that keeps only TCP candidates (?transport=tcp drops its own UDP candidates
// and the gateway's) against a Chromium verifier on UDP, through a real
// gateway. The session must go live, both pages must decode media, and the
// tablet's selected candidate pair must be TCP to the gateway's passive
// candidate.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as lib from './lib.mjs';

lib.requireBinaries(lib.CHROMIUM);

const env = lib.browserFixture('md-br-chromium-tcp-');

// The tablet's selected pair as seen by Chromium: local and remote protocol
// and the remote candidate's tcpType.
async function selectedPair(page) {
  return page.evaluate(async () => {
    const report = await window.mdTest.pc.getStats();
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
    });
    if (!pair) return null;
    const local = report.get(pair.localCandidateId);
    const remote = report.get(pair.remoteCandidateId);
    return { local: local.protocol, localTcpType: local.tcpType || null,
             remote: remote.protocol, remotePort: remote.port, state: pair.state };
  });
}

test('Chromium tablet over ICE-TCP only, Chromium verifier over UDP',
     { timeout: 120_000 * lib.SLOW }, async () => {
  await lib.withChromiumPair(env, '', async ({ verifier, tablet }) => {
    await lib.openVerifier(verifier, env.gw, { codec: 'VP8' });
    const id = await lib.openTablet(tablet, env.gw, { codec: 'VP8', transport: 'tcp' });
    await lib.accept(verifier, id);
    await lib.waitLive(verifier, 'verifier');
    await lib.waitLive(tablet, 'tablet');
    const answer = await tablet.evaluate(() => window.mdTest.answerSdp);
    assert.match(answer, /a=candidate:\S+ 1 TCP \d+ 127\.0\.0\.1 \d+ typ host tcptype passive/i);
    const pair = await selectedPair(tablet);
    console.log(`# tablet selected pair: ${JSON.stringify(pair)}`);
    assert.ok(pair, 'tablet has a selected candidate pair');
    assert.equal(pair.local, 'tcp');
    assert.equal(pair.remote, 'tcp');
    await lib.assertMediaFlows(verifier, 'verifier (tablet on TCP)', 'video/VP8');
    await lib.assertMediaFlows(tablet, 'tablet (on TCP)', 'video/VP8');
    await lib.finish(verifier, tablet);
  });
});
