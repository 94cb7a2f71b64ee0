// Recording with consent in real browsers (docs/protocol.md "Recording";
// docs/internals/browser-tests.md): Chromium verifier and Chromium tablet on
// the test pages (web/test/recording.js), municipality 204111 (policy
// optional). The verifier presses 録画開始; the tablet shows the consent
// question in Japanese and the test presses 同意する as the clerk would;
// both pages show 録画中 while the gateway records; 録画停止 stops it. The
// gateway audits consent and recording, and stores the recording (row
// `complete`, `recording_stored` with the SHA-256 of the ciphertext).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as lib from './lib.mjs';

lib.requireBinaries(lib.CHROMIUM);

const env = lib.browserFixture('md-br-recording-');

async function recordingState(page, name, state) {
  await lib.waitFor(page, (s) => window.mdTest.recording && window.mdTest.recording.state === s,
                    state, `${name}: recording ${state}`);
  return page.evaluate(() => {
    const e = document.getElementById('recording');
    return e ? e.textContent : null;
  });
}

test('recording: consent on the tablet page, indicator on both', { timeout: 150_000 * lib.SLOW },
     () => lib.withChromiumPair(env, '', async ({ verifier, tablet }) => {
  const session = await lib.goLive(verifier, tablet, env.gw, { codec: 'VP8' });
  assert.equal(await verifier.evaluate(() => window.mdTest.assigned.recording), 'optional');

  await verifier.click('button.record-start');
  await lib.waitFor(tablet, () => !!document.getElementById('consent'), null,
                    'tablet: the consent question');
  const question = await tablet.evaluate(() => document.getElementById('consent').textContent);
  assert.match(question, /録画/, question);
  assert.match(question, /同意する/, question);
  assert.match(question, /同意しない/, question);
  await tablet.evaluate(() => {
    const yes = [...document.querySelectorAll('#consent button')].find((b) => b.textContent === '同意する');
    yes.click();
  });
  for (const [page, name] of [[verifier, 'verifier'], [tablet, 'tablet']]) {
    assert.equal(await recordingState(page, name, 'on'), '● 録画中', `${name}: indicator`);
  }
  assert.equal(await tablet.evaluate(() => document.getElementById('consent')), null,
               'tablet: the question is gone');
  await lib.sleep(3000);
  await verifier.click('button.record-stop');
  for (const [page, name] of [[verifier, 'verifier'], [tablet, 'tablet']]) {
    assert.equal(await recordingState(page, name, 'stopped'), '録画停止', `${name}: indicator`);
  }

  let stored = [];
  for (let i = 0; i < 100 && stored.length === 0; i++) {
    stored = (await env.gw.audit(session)).filter((e) => e.event === 'recording_stored');
    if (stored.length === 0) await lib.sleep(200);
  }
  assert.equal(stored.length, 1, 'audit: recording_stored');
  const entries = await env.gw.audit(session);
  for (const event of ['consent_asked', 'consent_given', 'record_start', 'record_stop']) {
    assert.ok(entries.some((e) => e.event === event), `audit: ${event}`);
  }
  const rows = await env.gw.sql(`SELECT id, state, codec FROM recording WHERE session_id = '${session}'`);
  assert.equal(rows.length, 1, JSON.stringify(rows));
  assert.deepEqual([rows[0].state, rows[0].codec], ['complete', 'VP8']);
  assert.equal(stored[0].detail.recording, rows[0].id);
  assert.ok(stored[0].detail.duration_ms > 2000, JSON.stringify(stored[0].detail));
  await lib.finish(verifier, tablet);
}));
