// ICE restart and the network grace period with real browsers
// (docs/internals/browser-tests.md, "ICE restart").
//
// The tablet's Chromium runs in a network namespace of its own (netns.mjs),
// joined to the root namespace by a veth pair; the gateway's device listener
// and ICE are bound to the root end (10.78.X.1), the verifier's Chromium runs
// in the root namespace and reaches the gateway's ICE address locally. Setting
// the tablet's veth end down cuts the tablet's path (media and its WebSocket)
// and nothing else.
//
// Both legs are the product pages: the kiosk (driven over tablet_ns.mjs by
// role and label) and the verifier console, logged in.
//
// - 5 s cut: the kiosk restarts ICE
//   (`restart`, answered at once), media flows again both ways, the session
//   id is the same and nobody got `ended`; chat sent before, during and after
//   the cut by either side arrives once and is acknowledged once; a file each
//   way started after the restart arrives intact; the audit has each chat and
//   file once.
// - a cut longer than the grace period (session.rejoin_grace_seconds 3): the
//   session ends with reason `network`, audited as session_ended.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as dc from './dc.mjs';
import * as lib from './lib.mjs';
import * as p from './product.mjs';
import { Netns, NsTablet, requireNetns } from './netns.mjs';

lib.requireBinaries(lib.CHROMIUM);
requireNetns();

const CUT_MS = 5000;
let ns;
let tmp;
let failed = false;
const consoleLog = [];
const t0 = Date.now();
const log = (text) => console.log(`# [${((Date.now() - t0) / 1000).toFixed(1)} s] ${text}`);

before(() => {
  tmp = lib.tempDir('md-br-ice-');
  ns = new Netns().up();
  log(`namespace ${ns.name}: ${ns.hostIf} ${ns.hostAddr} <-> ${ns.nsIf} ${ns.nsAddr}`);
});

after(() => {
  if (failed) console.log(consoleLog.slice(-120).join('\n'));
  ns?.down();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// A gateway (device listener and ICE on the root end of the veth), the
// verifier's Chromium, the tablet's Chromium in the namespace; one live
// session with media both ways. Calls fn(ctx), then tears everything down.
async function withLiveSession(name, config, fn, query = {}) {
  let gw;
  let browser;
  let tablet;
  let verifier;
  let ok = false;
  try {
    gw = await lib.Gateway.start({
      config: { device_listen: { address: ns.hostAddr }, media: { bind_address: ns.hostAddr },
                ...config },
      deviceHost: ns.hostAddr,
    });
    const home = path.join(tmp, name, 'home');
    lib.nssTrustingCa(path.join(home, '.pki', 'nssdb'), gw.ca);
    browser = await lib.launchChromium(home);
    const tabletHome = path.join(tmp, name, 'tablet-home');
    fs.mkdirSync(tabletHome, { recursive: true });
    tablet = new NsTablet(ns, tabletHome, consoleLog);
    await tablet.ready(60_000 * lib.SLOW);

    const verifierContext = await browser.newContext();
    verifier = await verifierContext.newPage();
    lib.recordConsole(verifier, `verifier ${name}`, consoleLog);
    // The product pages: the verifier console, logged in, and the kiosk,
    // driven by role and label (the kiosk over tablet_ns.mjs's pipe).
    await p.loginChromium(verifier, gw, { allow: ns.net, codec: 'VP8', ...query });
    await p.addTestFiles(verifier);
    const q = new URLSearchParams({ allow: ns.net, codec: 'VP8', ...query });
    await tablet.open(gw, `${gw.deviceOrigin}/?${q}`);
    await lib.waitFor(tablet, () => window.mdTest && window.mdTest.hello, null, 'kiosk hello');
    await p.addTestFiles(tablet);
    await tablet.click('button', p.NEW_CARD);
    await tablet.waitText('映像と音声を確認できました');
    await tablet.click('button', '確認担当者を呼ぶ');
    const id = await lib.waitFor(tablet, () => window.mdTest && window.mdTest.session, null,
                                 'tablet queued');
    await verifier.getByRole('button', { name: '温田郵便局の申請を受け付ける' }).click();
    await lib.waitLive(verifier, 'verifier');
    await lib.waitLive(tablet, 'tablet');
    await lib.assertMediaFlows(verifier, 'verifier', 'video/VP8');
    await lib.assertMediaFlows(tablet, 'tablet', 'video/VP8');
    log(`${name}: session ${id} live, media flows both ways over ${ns.net}`);
    await fn({ gw, verifier, tablet, id });
    ok = true;
  } catch (e) {
    failed = true;
    if (verifier) consoleLog.push(`verifier: ${await lib.describe(verifier)}`);
    if (tablet) consoleLog.push(`tablet: ${await lib.describe(tablet)}`);
    throw e;
  } finally {
    ns.restore();
    if (!ok && gw) {
      console.log(gw.logTail(150));
      console.log(`kept ${await gw.keep().catch(() => '?')}`);
    }
    if (verifier && ok) await lib.hangupIfOpen(verifier);
    await tablet?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await gw?.stop();
  }
}

const iceSummary = (states, since) =>
  states.map((s) => `${s.state}@${((s.at - since) / 1000).toFixed(1)}s`).join(' ');

// The verifier's inbound framesDecoded (the tablet's video through the gateway).
const framesDecoded = async (page) => {
  const s = await page.evaluate(() => window.mdTest.stats());
  return s.video ? s.video.framesDecoded : 0;
};

function auditSummary(entries, since) {
  return entries.map((e) => {
    const when = typeof e.ts === 'number' ? `@${((e.ts - since) / 1000).toFixed(1)}s` : '';
    const leg = detailOf(e).leg ? `(${detailOf(e).leg})` : '';
    return `${e.event}${leg}${when}`;
  }).join(' ');
}

const actionOf = (e) => e.event;
const detailOf = (e) => {
  if (typeof e.detail !== 'string') return e.detail || {};
  try { return JSON.parse(e.detail); } catch { return { text: e.detail }; }
};

// After a cut and its restore: the tablet has restarted ICE (by itself; the
// test hook otherwise, logged), the gateway answered, ICE is connected again
// and signaling stable.
async function awaitRestart(tablet, before, cutAt, restoredAt) {
  // The tablet restarts ICE by itself when its ICE goes disconnected or
  // failed. Should Chromium not notice a cut this short, the test hook
  // restarts (logged); so far it always noticed.
  const noticed = await lib.waitFor(tablet, (b) => window.mdTest.restarts.length > b.restarts,
                                    before, 'tablet: ICE restart', 20_000).catch(() => false);
  if (!noticed) {
    log('the tablet did not restart ICE by itself: restarting through mdTest.restartIce()');
    await tablet.evaluate(() => window.mdTest.restartIce());
  }

  // The tablet restarted ICE, the gateway answered, ICE is connected again.
  const after = await lib.waitFor(tablet, (b) => {
    const t = window.mdTest;
    const ice = t.pc && t.pc.iceConnectionState;
    return t.restarts.length > b.restarts && t.answers > b.answers &&
      (ice === 'connected' || ice === 'completed') && t.pc.signalingState === 'stable'
      ? { restarts: t.restarts, answers: t.answers, iceStates: t.iceStates.slice(b.ice),
          sent: t.sent, connection: t.pc.connectionState }
      : null;
  }, before, 'tablet: ICE restart answered and connected again', 90_000);
  const reconnected = after.iceStates.filter((s) => s.state === 'connected' ||
                                                    s.state === 'completed').pop();
  log(`tablet ICE states since the cut: ${iceSummary(after.iceStates, cutAt)}`);
  log(`tablet restarts: ${after.restarts.slice(before.restarts).map((r) =>
    `${r.reason}@${((r.at - cutAt) / 1000).toFixed(1)}s ufrag=${r.ufrag}`).join(', ')}; ` +
      (reconnected ? `connected again ${((reconnected.at - restoredAt) / 1000).toFixed(1)} s ` +
                     'after the restore' : 'ICE stayed connected throughout'));
  assert.ok(after.sent.includes('restart'), `tablet sent no restart: ${after.sent}`);
}

test('a cut longer than the grace period: the session ends with reason network',
     { timeout: 200_000 * lib.SLOW }, () =>
  withLiveSession('long-cut', { session: { rejoin_grace_seconds: 3 } },
                  async ({ gw, verifier, tablet, id }) => {
    const cutAt = Date.now();
    ns.cut();
    log(`cut ${ns.nsIf} until the session ends (grace 3 s)`);
    const ended = await lib.waitFor(verifier, () => window.mdTest.ended, null, 'ended', 120_000);
    log(`verifier ended ${((Date.now() - cutAt) / 1000).toFixed(1)} s after the cut: ` +
        `${JSON.stringify(ended)}`);
    assert.equal(ended.session, id);
    assert.equal(ended.reason, 'network', `ended: ${JSON.stringify(ended)}`);

    const audit = await gw.audit(id);
    log(`audit for ${id}: ${auditSummary(audit, cutAt)}`);
    const end = audit.filter((e) => actionOf(e) === 'session_ended');
    assert.equal(end.length, 1, `session_ended entries: ${JSON.stringify(end)}`);
    assert.equal(detailOf(end[0]).reason, 'network',
                 `session_ended without reason network: ${JSON.stringify(end[0])}`);

    ns.restore();
    log('restored');
    // The tablet's WebSocket survived the cut (TCP retransmits): it may get
    // its `ended` late. Reported, not asserted.
    const tabletEnded = await lib.waitFor(tablet, () => window.mdTest.ended, null, 'ended', 20_000)
      .then((e) => e, (e) => `not seen: ${e.message.split('\n')[0]}`);
    log(`tablet after the restore: ended ${JSON.stringify(tabletEnded)}; ` +
        `${JSON.stringify(await tablet.evaluate(() => ({
          restarts: window.mdTest.restarts.length, wsOpen: window.mdTest.wsOpen,
          wsClose: window.mdTest.wsClose, errors: window.mdTest.errors.map((e) => e.code) })))}`);
  }));

test('a 5 s cut of the tablet path: ICE restart, same session; media, chat and files again, ' +
     'nothing lost, nothing twice',
     { timeout: 200_000 * lib.SLOW }, () =>
  withLiveSession('dc-cut', {}, async ({ gw, verifier, tablet, id }) => {
    const files = await dc.testFiles();
    const names = { tablet: ['tablet', 'verifier'], verifier: ['verifier', 'tablet'] };
    await dc.waitChannelsOpen(tablet, 'tablet');
    await dc.waitChannelsOpen(verifier, 'verifier');
    await dc.chat(tablet, verifier, 't-before', 'カットの前です。', names.tablet);
    await dc.chat(verifier, tablet, 'v-before', 'before the cut', names.verifier);

    const before = await tablet.evaluate(() => ({ restarts: window.mdTest.restarts.length,
                                                  answers: window.mdTest.answers,
                                                  ice: window.mdTest.iceStates.length }));
    const cutAt = Date.now();
    ns.cut();
    log(`cut ${ns.nsIf} for ${CUT_MS} ms, chat from both sides meanwhile`);
    const during = [];
    for (let i = 1; i <= 3; i++) {
      await lib.sleep(CUT_MS / 4);
      for (const [page, who] of [[tablet, 't'], [verifier, 'v']]) {
        const chatId = `${who}-during-${i}`;
        await page.evaluate(([c, text]) => { window.md.chat(text, c); }, [chatId, `${chatId} 通信断`]);
        during.push(chatId);
      }
    }
    // The clerk is told while the path is gone.
    const banner = await tablet.evaluate(() => document.getElementById('banner').textContent);
    log(`kiosk banner during the cut: ${banner}`);
    assert.match(banner, /再接続しています/, 'the kiosk shows the reconnect banner');
    await lib.sleep(CUT_MS / 4);
    ns.restore();
    const restoredAt = Date.now();
    log('restored');
    await awaitRestart(tablet, before, cutAt, restoredAt);

    // Media through the gateway again, both ways, after the restore.
    const v0 = await framesDecoded(verifier);
    const t0f = await framesDecoded(tablet);
    await lib.waitFor(verifier, async (n) => {
      const s = await window.mdTest.stats();
      return s.video && s.video.framesDecoded > n + 30;
    }, v0, 'verifier decodes the tablet video after the restore', 30_000);
    await lib.waitFor(tablet, async (n) => {
      const s = await window.mdTest.stats();
      return s.video && s.video.framesDecoded > n + 30;
    }, t0f, 'tablet decodes the verifier video after the restore', 30_000);
    const vs = await verifier.evaluate(() => window.mdTest.stats());
    log(`verifier after the restore: ${JSON.stringify(vs.video)}; audio ${JSON.stringify(vs.audio)}`);
    await lib.assertMediaFlows(verifier, 'verifier after restart', 'video/VP8');
    await lib.assertMediaFlows(tablet, 'tablet after restart', 'video/VP8');

    // Same session on both sides, nobody ended, still live.
    for (const [page, name] of [[verifier, 'verifier'], [tablet, 'tablet']]) {
      const s = await page.evaluate(() => ({ session: window.mdTest.session,
                                             ended: window.mdTest.ended,
                                             state: window.mdTest.state,
                                             errors: window.mdTest.errors }));
      assert.equal(s.session, id, `${name}: session id`);
      assert.equal(s.ended, null, `${name}: ended ${JSON.stringify(s.ended)}`);
      assert.equal(s.state, 'live', `${name}: state`);
      assert.deepEqual(s.errors, [], `${name}: errors from the gateway`);
    }

    await dc.chat(tablet, verifier, 't-after', '復旧しました。', names.tablet);
    await dc.chat(verifier, tablet, 'v-after', 'after the restart', names.verifier);

    // Every chat acknowledged to its sender and delivered to the other page.
    const sentBy = {
      tablet: ['t-before', ...during.filter((c) => c.startsWith('t-')), 't-after'],
      verifier: ['v-before', ...during.filter((c) => c.startsWith('v-')), 'v-after'],
    };
    for (const [page, other, who] of [[tablet, verifier, 'tablet'], [verifier, tablet, 'verifier']]) {
      const otherName = who === 'tablet' ? 'verifier' : 'tablet';
      await dc.waitMd(page, (ids) => ids.every((c) => window.md.chatAcked.includes(c)), sentBy[who],
                      `${who}: chat_ack for ${sentBy[who]}`, 60_000);
      await dc.waitMd(other, (ids) => ids.every((c) => window.md.chatReceived.some((m) => m.id === c)),
                      sentBy[who], `${otherName}: chat ${sentBy[who]}`, 60_000);
    }

    // Files each way, started after the restart.
    await dc.transfer(tablet, verifier, { id: 'pdf-after', name: '申請書.pdf', mime: 'application/pdf',
                                          make: { type: 'pdf', size: 4 << 20, seed: 0x5eed0011 } },
                      names.tablet, files);
    await dc.transfer(verifier, tablet, { id: 'png-after', name: '案内.png', mime: 'image/png',
                                          make: { type: 'png', size: 512 << 10, seed: 0x5eed0012 } },
                      names.verifier, files);

    // Exactly once: no chat came twice (the files took a while, so a late
    // repeat would be here by now), none was acknowledged twice.
    for (const [page, who] of [[tablet, 'tablet'], [verifier, 'verifier']]) {
      const otherWho = who === 'tablet' ? 'verifier' : 'tablet';
      const s = await page.evaluate(() => ({ counts: window.md.chatCounts(),
                                             acked: window.md.chatAcked,
                                             sent: window.md.summary().chatSent,
                                             opens: window.md.opens,
                                             errors: window.md.errors }));
      log(`${who}: chat sent ${JSON.stringify(s.sent)}; channels opened ${JSON.stringify(s.opens)}`);
      assert.deepEqual(s.counts, Object.fromEntries(sentBy[otherWho].map((c) => [c, 1])),
                       `${who}: each chat of the ${otherWho} once`);
      assert.deepEqual([...s.acked].sort(), [...sentBy[who]].sort(), `${who}: each chat_ack once`);
      assert.deepEqual(s.errors, [], `${who}: data-channel errors`);
    }

    const audit = await gw.audit(id);
    log(`audit for ${id}: ${auditSummary(audit, cutAt)}`);
    const chats = audit.filter((e) => e.event === 'chat').map((e) => detailOf(e).id).sort();
    assert.deepEqual(chats, [...sentBy.tablet, ...sentBy.verifier].sort(), 'audit: each chat once');
    const fileIds = audit.filter((e) => e.event === 'file').map((e) => detailOf(e).id).sort();
    assert.deepEqual(fileIds, ['pdf-after', 'png-after'], 'audit: the files');
    assert.ok(!audit.some((e) => actionOf(e) === 'session_ended'), 'the session ended in the audit');
    const lost = audit.filter((e) => actionOf(e) === 'leg_media_lost');
    const restored = audit.filter((e) => actionOf(e) === 'leg_media_restored');
    log(`gateway: leg_media_lost ${lost.length}, leg_media_restored ${restored.length}`);
    if (lost.length) assert.ok(restored.length >= lost.length, 'leg_media_lost without restore');

    // The verifier records the outcome in the console; the kiosk shows it.
    await verifier.getByRole('radio', { name: '確認完了' }).check();
    await verifier.getByRole('button', { name: '結果を記録する' }).click();
    await verifier.getByRole('button', { name: '記録して終了する' }).click();
    await verifier.getByRole('heading', { name: 'セッションは終了しました' }).waitFor();
    await tablet.waitText('お手続きが終わりました');
    const ended = await tablet.evaluate(() => window.mdTest.ended);
    assert.equal(ended.outcome, 'verified', JSON.stringify(ended));
  }));
