// Chat and files over data channels between a Chromium tablet and a Firefox
// ESR verifier through a real gateway (docs/protocol.md, "Data channels";
// docs/internals/browser-tests.md): each page opens `chat` and `file`
// (?dc=1, web/test/datachannels.js).
//
// - chat both ways, each acknowledged to its sender by the gateway and
//   delivered once to the other page;
// - a 20 MB PDF tablet -> verifier and a 2 MB PNG verifier -> tablet,
//   byte-identical (the SHA-256 of what each page received equals the
//   SHA-256 Node computes over the bytes sent);
// - what the gateway kept: `file` audit entries with those SHA-256 values and
//   no file name (nor chat text), the evidence files encrypted
//   ("MDEVFIL1", no plaintext fragment), and the `evidence` rows.
//
// The test municipality's policy allows 20 MiB files; the registry here
// raises it to 25 so that the PDF is not at the cap.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import * as dc from './dc.mjs';
import * as lib from './lib.mjs';

lib.requireBinaries(lib.CHROMIUM, lib.FIREFOX);

const MUNICIPALITY = '204111'; // v-yasuoka's, and TAB-NUKUTA-1's post office's
const env = lib.browserFixture('md-br-dc-', {
  firefox: true,
  gateway: (tmp) => ({
    registry: dc.registryWithPolicy(path.join(tmp, 'registry'), MUNICIPALITY, { max_file_mb: 25 }),
  }),
});

const TEXTS = {
  tablet: 'マイナンバーカードの表面をカメラに向けています。',
  verifier: 'ありがとうございます。裏面もお願いします。',
};
const PDF = { id: 'pdf-1', name: '交付申請書 記入例.pdf', mime: 'application/pdf',
              make: { type: 'pdf', size: 20 * 1024 * 1024, seed: 0x5eed0001 } };
const PNG = { id: 'png-1', name: '本人確認書類 写し.png', mime: 'image/png',
              make: { type: 'png', size: 2 * 1024 * 1024, seed: 0x5eed0002 } };

test('chat and files between a Chromium tablet and a Firefox verifier',
     { timeout: 300_000 * lib.SLOW }, async () => {
  const files = await dc.testFiles();
  const tabletContext = await lib.tabletContext(env.chromium, env.gw);
  const tablet = await tabletContext.newPage();
  const verifier = await env.firefox.newPage();
  try {
    lib.recordConsole(verifier, 'firefox verifier', env.consoleLog);
    lib.recordConsole(tablet, 'chromium tablet', env.consoleLog);
    const session = await lib.goLive(verifier, tablet, env.gw, { codec: 'VP8', dc: '1' });
    await dc.waitChannelsOpen(tablet, 'tablet');
    await dc.waitChannelsOpen(verifier, 'verifier');

    // chat both ways, acknowledged by the gateway
    await dc.chat(tablet, verifier, 't-1', TEXTS.tablet, ['tablet', 'verifier']);
    await dc.chat(verifier, tablet, 'v-1', TEXTS.verifier, ['verifier', 'tablet']);

    // files both ways, one after the other (one file at a time per leg)
    const pdf = await dc.transfer(tablet, verifier, PDF, ['tablet', 'verifier'], files);
    const png = await dc.transfer(verifier, tablet, PNG, ['verifier', 'tablet'], files);

    // each chat and file arrived exactly once, and nothing went wrong
    for (const [page, name, other] of [[tablet, 'tablet', 'v-1'], [verifier, 'verifier', 't-1']]) {
      const s = await page.evaluate(() => ({ counts: window.md.chatCounts(),
                                             acked: window.md.chatAcked,
                                             received: window.md.received.map((r) => r.id),
                                             errors: window.md.errors }));
      assert.deepEqual(s.counts, { [other]: 1 }, `${name}: chat received`);
      assert.deepEqual(s.acked, [name === 'tablet' ? 't-1' : 'v-1'], `${name}: chat_ack`);
      assert.deepEqual(s.received, [name === 'tablet' ? 'png-1' : 'pdf-1'], `${name}: files`);
      assert.deepEqual(s.errors, [], `${name}: data-channel errors`);
    }

    // the audit: chat and file entries with the hashes, never a text or name
    const entries = await env.gw.audit(session);
    const fileEntries = Object.fromEntries(entries.filter((e) => e.event === 'file')
                                           .map((e) => [e.detail.id, e.detail]));
    assert.deepEqual(Object.keys(fileEntries).sort(), ['pdf-1', 'png-1'],
                     `file audit entries: ${JSON.stringify(entries)}`);
    for (const [f, spec, leg] of [[pdf, PDF, 'tablet'], [png, PNG, 'verifier']]) {
      const d = fileEntries[spec.id];
      assert.equal(d.sha256, f.sha256, `audit: sha256 of ${spec.id}`);
      assert.equal(d.size, f.bytes.length, `audit: size of ${spec.id}`);
      assert.equal(d.mime, spec.mime, `audit: mime of ${spec.id}`);
      assert.equal(d.leg, leg, `audit: leg of ${spec.id}`);
    }
    const chats = Object.fromEntries(entries.filter((e) => e.event === 'chat')
                                     .map((e) => [e.detail.id, e.detail]));
    assert.equal(chats['t-1']?.sha256, dc.sha256(Buffer.from(TEXTS.tablet)), 'audit: chat t-1');
    assert.equal(chats['v-1']?.sha256, dc.sha256(Buffer.from(TEXTS.verifier)), 'audit: chat v-1');
    const dump = JSON.stringify(entries);
    for (const secret of [PDF.name, PNG.name, '交付申請書', '本人確認書類', TEXTS.tablet,
                          TEXTS.verifier]) {
      assert.ok(!dump.includes(secret), `the audit holds "${secret}"`);
    }

    // the evidence files: encrypted, no plaintext
    dc.assertEncryptedEvidence(env.gw, session, PDF.id, pdf.bytes);
    dc.assertEncryptedEvidence(env.gw, session, PNG.id, png.bytes);

    // the evidence rows
    const rows = await dc.evidenceRows(env.gw, session);
    assert.ok(rows, 'the gateway database has no `evidence` table');
    assert.equal(rows.length, 2, `evidence rows: ${JSON.stringify(rows)}`);
    const byId = Object.fromEntries(rows.map((r) => [r.file_id, r]));
    for (const [f, spec, leg] of [[pdf, PDF, 'tablet'], [png, PNG, 'verifier']]) {
      const r = byId[spec.id];
      assert.ok(r, `no evidence row for ${spec.id}: ${JSON.stringify(rows)}`);
      assert.equal(r.sha256, f.sha256, `evidence row: sha256 of ${spec.id}`);
      assert.equal(r.size, f.bytes.length, `evidence row: size of ${spec.id}`);
      assert.equal(r.mime, spec.mime, `evidence row: mime of ${spec.id}`);
      assert.equal(r.leg, leg, `evidence row: leg of ${spec.id}`);
      assert.equal(r.kind, 'file', `evidence row: kind of ${spec.id}`);
      assert.equal(r.width, null, `evidence row: width of ${spec.id}`);
      assert.equal(r.height, null, `evidence row: height of ${spec.id}`);
      assert.ok(r.created_at > 0, `evidence row: created_at of ${spec.id}`);
    }

    await lib.finish(verifier, tablet);
  } catch (e) {
    env.failed = true;
    for (const [page, name] of [[tablet, 'tablet'], [verifier, 'verifier']]) {
      env.consoleLog.push(`[${name}] window.md: ${await dc.summary(page)}`);
    }
    throw e;
  } finally {
    await lib.hangupIfOpen(tablet);
    await tabletContext.close().catch(() => {});
    await verifier.close().catch(() => {});
  }
});
