// Data-channel helpers of the browser tests (docs/internals/browser-tests.md,
// "Data channels"): the pages opened with ?dc=1 expose window.md
// (web/test/datachannels.js); these helpers drive it and check what the
// gateway kept: audit entries, the `evidence` table, the encrypted files.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as lib from './lib.mjs';

export const SOURCE_ROOT = process.env.MD_SOURCE_ROOT || path.join(lib.HERE, '..', '..');

// web/test/testfiles.js, the same module the pages use to make file
// contents. It is an ES module without a package.json saying so, hence the
// data: URL.
export async function testFiles() {
  const text = fs.readFileSync(path.join(SOURCE_ROOT, 'web', 'test', 'testfiles.js'));
  return import(`data:text/javascript;base64,${text.toString('base64')}`);
}

export const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

// A copy of data/sample-registry.json in `dir` with `policy` merged into the
// security_policy of `municipality`; returns its path.
export function registryWithPolicy(dir, municipality, policy) {
  const registry = JSON.parse(fs.readFileSync(
    path.join(SOURCE_ROOT, 'data', 'sample-registry.json'), 'utf8'));
  const m = registry.municipalities.find((x) => x.code === municipality);
  assert.ok(m, `municipality ${municipality} not in the sample registry`);
  Object.assign(m.security_policy, policy);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'registry.json');
  fs.writeFileSync(file, JSON.stringify(registry, null, 2));
  return file;
}

// What window.md says, for failure messages.
export async function summary(page) {
  try {
    return JSON.stringify(await page.evaluate(() => window.md && window.md.summary()));
  } catch (e) {
    return `(page not readable: ${e.message})`;
  }
}

// Waits until fn(arg) is truthy in the page; on a timeout the message has
// window.md's summary too.
export async function waitMd(page, fn, arg, what, timeout = 30_000) {
  try {
    return await lib.waitFor(page, fn, arg, what, timeout);
  } catch (e) {
    e.message += `\nwindow.md: ${await summary(page)}`;
    throw e;
  }
}

export async function waitChannelsOpen(page, name) {
  await waitMd(page, () => window.md.channels.chat === 'open' && window.md.channels.file === 'open',
               null, `${name}: chat and file channels open`, 40_000);
}

/*
 * `from` sends `text` as chat `id`; waits for the gateway's chat_ack on
 * `from` and the message on `to`. Returns the message as `to` got it.
 */
export async function chat(from, to, id, text, names) {
  const ts = await from.evaluate(([i, t]) => {
    window.md.chat(t, i);
    return window.md.chatSent.find((m) => m.id === i).ts;
  }, [id, text]);
  await waitMd(from, (i) => window.md.chatAcked.includes(i), id, `${names[0]}: chat_ack ${id}`);
  const got = await waitMd(to, (i) => window.md.chatReceived.find((m) => m.id === i), id,
                           `${names[1]}: chat ${id}`);
  assert.equal(got.text, text, `${names[1]}: text of chat ${id}`);
  assert.equal(got.ts, ts, `${names[1]}: ts of chat ${id}`);
  return got;
}

/*
 * `from` sends the file `spec` ({id, name, mime, make: {type, size, seed}});
 * Node makes the same bytes. Waits until the sender has the gateway's
 * file_verified and the receiver verified the file itself; asserts both
 * SHA-256 values equal Node's, and compares a few slices of the received
 * bytes with Node's. Returns {bytes, sha256, sent, received}.
 */
export async function transfer(from, to, spec, names, files) {
  const bytes = files.makeTestFile(spec.make);
  const digest = sha256(bytes);
  await from.evaluate((s) => { window.md.sendFile(s); }, spec);
  // 20 MB through two SCTP associations: generous, nothing asserts speed
  const timeout = 60_000 + spec.make.size / 50;
  const sent = await waitMd(from, (id) => {
    const o = window.md.sent[id];
    return o && !['hashing', 'offered', 'sending', 'done'].includes(o.state) &&
      { state: o.state, code: o.code, sha256: o.sha256, verifiedSha256: o.verifiedSha256,
        size: o.size };
  }, spec.id, `${names[0]}: ${spec.id} sent and verified by the gateway`, timeout);
  assert.equal(sent.state, 'verified', `${names[0]}: ${spec.id}: ${JSON.stringify(sent)}`);
  assert.equal(sent.sha256, digest, `${names[0]}: SHA-256 of what the page sent`);
  assert.equal(sent.verifiedSha256, digest, `${names[0]}: the gateway's file_verified sha256`);
  const received = await waitMd(to, (id) => {
    const r = window.md.received.find((x) => x.id === id);
    if (!r || r.state === 'receiving') return null;
    const { chunks, ...rest } = r;
    return rest;
  }, spec.id, `${names[1]}: ${spec.id} received`, timeout);
  assert.equal(received.state, 'verified', `${names[1]}: ${spec.id}: ${JSON.stringify(received)}`);
  assert.equal(received.size, bytes.length, `${names[1]}: size offered`);
  assert.equal(received.bytes, bytes.length, `${names[1]}: bytes received`);
  assert.equal(received.sha256, digest, `${names[1]}: SHA-256 of the bytes received`);
  assert.equal(received.offerSha256, digest, `${names[1]}: sha256 of the gateway's file_offer`);
  assert.equal(received.name, spec.name, `${names[1]}: file name`);
  assert.equal(received.mime, spec.mime, `${names[1]}: MIME type`);
  for (const [offset, length] of [[0, 64], [1000, 64], [bytes.length >> 1, 4096],
                                  [bytes.length - 100, 100]]) {
    const b64 = await to.evaluate(([id, o, l]) => window.md.slice(id, o, l),
                                  [spec.id, offset, length]);
    assert.ok(Buffer.from(b64, 'base64').equals(Buffer.from(bytes.subarray(offset, offset + length))),
              `${names[1]}: bytes ${offset}..${offset + length} of ${spec.id}`);
  }
  // progress on both sides, up to the whole file
  const [out, inn] = await Promise.all([
    from.evaluate((id) => window.md.progress[id] && window.md.progress[id].out, spec.id),
    to.evaluate((id) => window.md.progress[id] && window.md.progress[id].in, spec.id)]);
  for (const [p, name] of [[out, names[0]], [inn, names[1]]]) {
    assert.ok(p && p.bytes === bytes.length && p.size === bytes.length,
              `${name}: last progress of ${spec.id}: ${JSON.stringify(p)}`);
    if (bytes.length > 2 << 20) assert.ok(p.events > 1, `${name}: progress events of ${spec.id}`);
  }
  // the gateway's file_progress to the sender: growing, never past the size
  const confirmed = await from.evaluate((id) => window.md.progress[id].confirmed, spec.id);
  if (bytes.length >= 2 << 20) {
    assert.ok(confirmed && confirmed.events >= 1 && confirmed.bytes <= bytes.length,
              `${names[0]}: file_progress from the gateway for ${spec.id}: ${JSON.stringify(confirmed)}`);
  }
  console.log(`# ${spec.id}: ${bytes.length} bytes ${names[0]} -> ${names[1]}, sha256 ${digest}`);
  return { bytes, sha256: digest, sent, received };
}

// The session's evidence directory (evidence.dir defaults to <data>/evidence).
export function evidenceDir(gw, session) {
  return path.join(gw.data, 'evidence', 'sessions', session);
}

/*
 * The evidence file of `fileId` exists, starts with "MDEVFIL1" and holds no
 * 64-byte fragment of the plaintext `bytes` (several places are tried).
 */
export function assertEncryptedEvidence(gw, session, fileId, bytes) {
  const file = path.join(evidenceDir(gw, session), `${fileId}.ev`);
  assert.ok(fs.existsSync(file), `evidence file ${file} missing`);
  const disk = fs.readFileSync(file);
  assert.equal(disk.subarray(0, 8).toString('latin1'), 'MDEVFIL1', `${file}: magic`);
  assert.ok(disk.length >= bytes.length, `${file}: ${disk.length} bytes for a ${bytes.length}-byte file`);
  for (const at of [0, 1000, bytes.length >> 1, bytes.length - 64]) {
    const fragment = bytes.subarray(at, at + 64);
    assert.equal(disk.indexOf(fragment), -1, `${file}: plaintext bytes ${at}..${at + 64} on disk`);
  }
}

/*
 * Rows of the `evidence` table for `session`, or null when the gateway has
 * no such table (yet): the caller decides whether that fails.
 */
export async function evidenceRows(gw, session) {
  assert.match(session, /^[A-Za-z0-9_-]+$/);
  try {
    return await gw.sql(`SELECT session_id, file_id, leg, kind, mime, size, sha256, width, height,
                         created_at FROM evidence WHERE session_id = '${session}'`);
  } catch (e) {
    if (/no such table: evidence/.test(e.message)) return null;
    throw e;
  }
}
