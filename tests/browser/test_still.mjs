// Still capture through a real gateway (DESIGN 4; docs/protocol.md, "Data
// channels"; docs/internals/browser-tests.md): Chromium tablet and Chromium
// verifier with data channels (?dc=1). The verifier sends `still`; the
// gateway audits it and sends `still` {session, id} to the tablet (and back
// to the verifier); the tablet photographs its camera track
// (web/test/still.js) and offers the photo on `file` as kind "still" with
// that id, its width and height. Asserted for a photo by ImageCapture and
// one drawn from the track to a canvas:
//
// - the verifier receives the same bytes the tablet sent (compared in Node,
//   SHA-256 too), offered as kind "still" with the camera's resolution, and
//   decodes (createImageBitmap) to that size: for ImageCapture the photo
//   size the camera reports (getPhotoSettings()), for the canvas the
//   tablet's camera track's (track.getSettings());
// - the audit has the verifier's `still` {id} and a `file` entry of kind
//   "still" with that SHA-256, width and height; the `evidence` row records
//   them too; the evidence file is encrypted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as dc from './dc.mjs';
import * as lib from './lib.mjs';

lib.requireBinaries(lib.CHROMIUM);

const env = lib.browserFixture('md-br-still-');

// Asks for a still, waits for it at the verifier and checks everything the
// pages and the gateway say about it. Returns the still's id.
async function still(verifier, tablet, session, track, method) {
  const before = await verifier.evaluate(() => window.mdTest.stillMessages.length);
  await verifier.evaluate((m) => { window.md.stillMethod = m; }, method);
  await tablet.evaluate((m) => { window.md.stillMethod = m; }, method);
  await verifier.evaluate(() => window.mdTest.requestStill());
  const ack = await lib.waitFor(verifier, (n) => window.mdTest.stillMessages[n], before,
                                'verifier: `still` acknowledged');
  assert.equal(ack.session, session, `verifier: ${JSON.stringify(ack)}`);
  assert.match(ack.id, /^[A-Za-z0-9_-]{1,64}$/, `still id: ${JSON.stringify(ack)}`);
  const id = ack.id;
  const asked = await lib.waitFor(tablet, (i) => window.mdTest.stillMessages.find((m) => m.id === i),
                                  id, `tablet: \`still\` ${id}`);
  assert.equal(asked.session, session);

  const taken = await dc.waitMd(tablet, (i) => {
    const s = window.md.stills.find((x) => x.id === i);
    return s && (s.error || s.size) ? s : null;
  }, id, `tablet: photo ${id} taken`);
  assert.equal(taken.error, null, `tablet: ${JSON.stringify(taken)}`);
  console.log(`# ${id}: ${JSON.stringify(taken)}`);
  // Chromium has ImageCapture: its photo has the camera's photo resolution
  // (getPhotoSettings()), which may differ from the video track's (the fake
  // camera shoots 640x480, its track is 640x360); the canvas photo has the
  // track's.
  let expected;
  if (method === 'canvas') {
    assert.equal(taken.method, 'canvas');
    expected = track;
  } else {
    assert.equal(taken.method, 'ImageCapture', `tablet: ${JSON.stringify(taken)}`);
    assert.ok(taken.camera && taken.camera.width > 0 && taken.camera.height > 0,
              `tablet: the camera's photo size: ${JSON.stringify(taken)}`);
    expected = taken.camera;
  }

  const sent = await dc.waitMd(tablet, (i) => {
    const o = window.md.sent[i];
    return o && !['hashing', 'offered', 'sending', 'done'].includes(o.state) &&
      { state: o.state, code: o.code, sha256: o.sha256, verifiedSha256: o.verifiedSha256,
        kind: o.kind, mime: o.mime, width: o.width, height: o.height, size: o.size };
  }, id, `tablet: still ${id} verified by the gateway`, 60_000);
  assert.equal(sent.state, 'verified', `tablet: ${JSON.stringify(sent)}`);
  const received = await dc.waitMd(verifier, (i) => {
    const r = window.md.received.find((x) => x.id === i);
    if (!r || r.state === 'receiving') return null;
    const { chunks, ...rest } = r;
    return rest;
  }, id, `verifier: still ${id} received`, 60_000);
  assert.equal(received.state, 'verified', `verifier: ${JSON.stringify(received)}`);

  // byte-identical, compared here
  const [sentBytes, gotBytes] = await Promise.all([
    tablet.evaluate((i) => window.md.slice(i), id),
    verifier.evaluate((i) => window.md.slice(i), id)].map(async (p) => Buffer.from(await p, 'base64')));
  assert.ok(sentBytes.length > 0 && sentBytes.equals(gotBytes),
            `still ${id}: ${sentBytes.length} bytes sent, ${gotBytes.length} received, not equal`);
  const digest = dc.sha256(sentBytes);
  assert.equal(sent.sha256, digest, 'tablet: SHA-256 of the photo');
  assert.equal(sent.verifiedSha256, digest, "gateway's file_verified sha256");
  assert.equal(received.sha256, digest, 'verifier: SHA-256 of the bytes received');

  // an image of the camera's resolution, offered as a still of that size
  assert.ok(['image/jpeg', 'image/png'].includes(received.mime), `mime ${received.mime}`);
  const magic = received.mime === 'image/png' ? '89504e470d0a1a0a' : 'ffd8ff';
  assert.equal(gotBytes.subarray(0, magic.length / 2).toString('hex'), magic, 'magic bytes');
  assert.equal(received.kind, 'still', `verifier: offer kind: ${JSON.stringify(received)}`);
  assert.deepEqual([received.width, received.height], [expected.width, expected.height],
                   'verifier: width and height offered');
  const decoded = await verifier.evaluate((i) => window.md.decode(i), id);
  assert.deepEqual(decoded, { width: expected.width, height: expected.height },
                   `verifier: decoded size = the tablet camera's (${method})`);

  // audited, recorded, encrypted
  const entries = await env.gw.audit(session);
  const asks = entries.filter((e) => e.event === 'still' && e.detail?.id === id);
  assert.equal(asks.length, 1, `audit: \`still\` ${id}: ${JSON.stringify(entries)}`);
  assert.match(asks[0].actor || '', /v-yasuoka/, `audit: who asked for ${id}`);
  const file = entries.find((e) => e.event === 'file' && e.detail?.id === id);
  assert.ok(file, `audit: file ${id}: ${JSON.stringify(entries)}`);
  assert.deepEqual(
    { sha256: file.detail.sha256, size: file.detail.size, mime: file.detail.mime,
      leg: file.detail.leg, kind: file.detail.kind, width: file.detail.width,
      height: file.detail.height },
    { sha256: digest, size: sentBytes.length, mime: received.mime, leg: 'tablet', kind: 'still',
      width: expected.width, height: expected.height }, `audit: file ${id}`);
  const rows = await dc.evidenceRows(env.gw, session);
  assert.ok(rows, 'the gateway database has no `evidence` table');
  const row = rows.find((r) => r.file_id === id);
  assert.ok(row, `evidence row ${id}: ${JSON.stringify(rows)}`);
  assert.deepEqual(
    { leg: row.leg, kind: row.kind, mime: row.mime, size: row.size, sha256: row.sha256,
      width: row.width, height: row.height },
    { leg: 'tablet', kind: 'still', mime: received.mime, size: sentBytes.length, sha256: digest,
      width: expected.width, height: expected.height }, `evidence row ${id}`);
  dc.assertEncryptedEvidence(env.gw, session, id, sentBytes);
  return id;
}

test('still capture: Chromium tablet, Chromium verifier', { timeout: 150_000 * lib.SLOW },
     () => lib.withChromiumPair(env, '', async ({ verifier, tablet }) => {
  try {
    const session = await lib.goLive(verifier, tablet, env.gw, { codec: 'VP8', dc: '1' });
    await dc.waitChannelsOpen(tablet, 'tablet');
    await dc.waitChannelsOpen(verifier, 'verifier');
    const track = await tablet.evaluate(() => {
      const s = window.mdTest.leg.localStream.getVideoTracks()[0].getSettings();
      return { width: s.width, height: s.height };
    });
    assert.ok(track.width > 0 && track.height > 0, `camera track ${JSON.stringify(track)}`);
    console.log(`# tablet camera track ${track.width}x${track.height}`);
    const ids = [await still(verifier, tablet, session, track, 'auto'),
                 await still(verifier, tablet, session, track, 'canvas')];
    assert.equal(new Set(ids).size, 2, `two stills, two ids: ${ids}`);
    for (const [page, name] of [[tablet, 'tablet'], [verifier, 'verifier']]) {
      assert.deepEqual(await page.evaluate(() => window.md.errors), [], `${name}: errors`);
    }
    await lib.finish(verifier, tablet);
  } catch (e) {
    for (const [page, name] of [[tablet, 'tablet'], [verifier, 'verifier']]) {
      env.consoleLog.push(`[${name}] window.md: ${await dc.summary(page)}`);
    }
    throw e;
  }
}));
