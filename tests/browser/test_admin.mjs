// The admin console (web/admin.html; issue #10, "what it must show"), driven
// by role and label in Chromium:
// - a simplified post office cannot be designated for a council procedure
//   from the page either, with the command line's very words;
// - a procedure awaiting the terminal upgrade is enabled from the page;
// - the admin issues a device and downloads its .p12; a tablet (Node's TLS
//   client with that .p12) connects; the admin revokes it and the tablet's
//   next TLS handshake is refused;
// - the admin adds a verifier; the QR code on the page, read back with
//   zbarimg, gives an otpauth:// URI whose TOTP logs that verifier in.
// Saves docs/screenshots/admin-*.png (1366x900) and checks 1024x768.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { test } from 'node:test';
import * as lib from './lib.mjs';

lib.requireBinaries(lib.CHROMIUM);

process.env.MD_BR_USERS = JSON.stringify({ adm: ['admin', null] });

const env = lib.browserFixture('md-br-admin-');
const SOURCE = path.join(lib.HERE, '..', '..');

function cli(...args) {
  const r = spawnSync(process.env.MADOGUCHI, ['-c', path.join(env.gw.data, 'config.json'), ...args],
                      { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

// RFC 6238 TOTP (SHA-1, 6 digits, 30 s) from a base32 secret, written here.
function totp(secret, step = Math.floor(Date.now() / 30000)) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', key).update(counter).digest();
  const off = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(off) & 0x7fffffff) % 1e6).padStart(6, '0');
}

// One TLS handshake to the device listener with the tablet's .p12, then
// GET /healthz: resolves {status} or rejects with the handshake's error.
function tabletRequest(p12, passphrase) {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: env.gw.device_port, path: '/healthz', method: 'GET',
      pfx: p12, passphrase, ca: fs.readFileSync(env.gw.ca), servername: 'localhost',
      checkServerIdentity: () => undefined, agent: false,
    }, (res) => { res.resume(); res.on('end', () => resolve({ status: res.statusCode })); });
    req.on('error', reject);
    req.setTimeout(10_000 * lib.SLOW, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

async function noSidewaysScroll(page, what) {
  const w = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(w[0] <= w[1], `${what}: page is ${w[0]} px wide in a ${w[1]} px window`);
}

test('admin: registry rules, a device from issue to revocation, a verifier with a TOTP QR', async () => {
  try {
    const context = await env.chromium.newContext({
      viewport: { width: 1366, height: 900 }, acceptDownloads: true, locale: 'ja-JP',
      timezoneId: 'Asia/Tokyo',
    });
    const page = await context.newPage();
    lib.recordConsole(page, 'admin', env.consoleLog);
    page.on('dialog', (d) => d.accept());
    await page.goto(`${env.gw.origin}/`);
    await page.getByLabel('ユーザー名').fill('adm');
    await page.getByLabel('パスワード').fill(env.gw.password);
    await page.getByLabel('ワンタイムコード').fill(await env.gw.totp('adm'));
    await page.getByRole('button', { name: 'ログイン' }).click();
    await page.waitForURL('**/admin.html');

    // the demo data's procedure awaiting the terminal upgrade, enabled here
    const procs = page.getByRole('table', { name: '手続' });
    const renewal = procs.getByRole('row').filter({ hasText: 'マイナンバーカードの更新' });
    await renewal.getByText('端末更改待ち').waitFor();
    await page.getByRole('table', { name: '指定' }).getByRole('row').filter({ hasText: '清滝郵便局' })
      .getByText('マイナンバーカードの更新').waitFor();
    await lib.screenshot(page, 'admin-registry.png');
    await renewal.getByRole('button', { name: /利用開始/ }).click();
    await renewal.getByText('利用中').waitFor();

    // a municipality's policy, edited through the same import (and its rules)
    await page.getByRole('button', { name: '泰阜村 のポリシーを編集' }).click();
    const policy = page.getByRole('form', { name: /ポリシーの編集/ });
    await policy.getByLabel(/端末の接続元ネットワーク/).fill('10.0.0.0/33');
    await policy.getByRole('button', { name: 'ポリシーを保存' }).click();
    const results = page.getByRole('list', { name: '取り込みの結果' });
    await results.getByText(/refused municipality 204111: /).waitFor();
    await policy.getByLabel(/端末の接続元ネットワーク/).fill('');
    await policy.getByLabel('ファイル上限 (MB)').fill('15');
    await policy.getByLabel('保存期間 (日)').fill('1826');
    await policy.getByLabel('往復遅延の上限 (ms)').fill('400');
    await lib.screenshot(page, 'admin-policy.png');
    await policy.getByRole('button', { name: 'ポリシーを保存' }).click();
    await results.getByText('imported 1 municipalities, 0 post offices, 0 designations; refused 0').waitFor();
    const yasuoka = page.getByRole('table', { name: '自治体' }).getByRole('row').filter({ hasText: '泰阜村' });
    await yasuoka.getByText('1826 日').waitFor();
    await yasuoka.getByText('15 MB').waitFor();

    // a council procedure for the simplified office: refused, in the CLI's words
    const form = page.getByRole('form', { name: '指定の追加・更新' });
    await form.getByLabel('郵便局').selectOption({ label: '見本簡易郵便局 (簡易局)' });
    await form.getByLabel('指定の開始日').fill('2024-04-01');
    await form.getByLabel('指定の終了日').fill('2029-03-31');
    await form.getByLabel('議会の議決日').fill('2024-03-15');
    await form.getByLabel('議案番号').fill('議案第7号 (test)');
    await form.getByLabel('日本郵便との協議日').fill('2024-01-15');
    await form.getByLabel('マイナンバーカードの申請サポート', { exact: false }).check();
    await form.getByLabel('マイナンバーカードの新規発行に係る事務（申請時来庁方式）').check();
    await form.getByRole('button', { name: '指定を登録' }).click();
    const report = page.getByRole('list', { name: '取り込みの結果' });
    await report.getByText('拒否: 簡易郵便局は指定できません').waitFor();
    const pageLines = (await report.getByRole('code').allInnerTexts()).map((l) => l.trim());
    const r = cli('registry', 'import', path.join(SOURCE, 'tests', 'data', 'registry-simplified-council.json'));
    assert.equal(r.status, 2, r.out);
    const cliRefusal = r.out.split('\n').find((l) => l.startsWith('refused '));
    assert.ok(cliRefusal, r.out);
    assert.ok(pageLines.includes(cliRefusal), `page ${JSON.stringify(pageLines)} vs CLI ${cliRefusal}`);
    await report.scrollIntoViewIfNeeded();
    await lib.screenshot(page, 'admin-designation-refused.png');

    // a device: issue, download once, connect, revoke, refused
    await page.getByRole('tab', { name: '端末' }).click();
    const issue = page.getByRole('form', { name: '端末証明書の発行' });
    await issue.getByLabel('端末ID').fill('TAB-NEW-1');
    await issue.getByLabel('郵便局').selectOption({ label: '温田郵便局' });
    await issue.getByLabel('.p12 のパスワード').fill('p12-secret-1');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: '発行して .p12 をダウンロード' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), 'TAB-NEW-1.p12');
    const p12Path = path.join(env.tmp, 'TAB-NEW-1.p12');
    await download.saveAs(p12Path);
    await page.getByText('再ダウンロードはできません').waitFor();
    const devices = page.getByRole('table', { name: '端末' });
    await devices.getByRole('row').filter({ hasText: 'TAB-NEW-1' }).getByText('有効').waitFor();
    await lib.screenshot(page, 'admin-devices.png');
    const leftovers = fs.readdirSync(env.gw.data).filter((n) => n.startsWith('admin-issue-'));
    assert.deepEqual(leftovers, [], 'no copy of the bundle stays on the server');
    const p12 = fs.readFileSync(p12Path);
    assert.deepEqual(await tabletRequest(p12, 'p12-secret-1'), { status: 200 });
    await devices.getByRole('button', { name: 'TAB-NEW-1 を失効' }).click();
    // a revoked device's row keeps no buttons: gone once the revocation is done
    await devices.getByRole('button', { name: 'TAB-NEW-1 を失効' }).waitFor({ state: 'detached' });
    await assert.rejects(tabletRequest(p12, 'p12-secret-1'), (e) => {
      console.log(`# revoked tablet: ${e.code || ''} ${e.message}`);
      return /CERTIFICATE_REVOKED|certificate revoked/i.test(`${e.code} ${e.message}`);
    }, 'the revoked tablet still completes a TLS handshake');
    const audit = await env.gw.audit();
    assert.ok(audit.some((e) => e.event === 'device_registered' && e.actor === 'staff:adm'));
    assert.ok(audit.some((e) => e.event === 'device_status' && e.detail?.to === 'revoked' && e.actor === 'staff:adm'));

    // a verifier, whose TOTP comes from the QR code on the page
    await page.getByRole('tab', { name: '職員' }).click();
    const add = page.getByRole('form', { name: '職員の追加' });
    await add.getByLabel('ユーザー名').fill('v-new');
    await add.getByLabel('役割').selectOption({ label: '確認者' });
    await add.getByLabel('自治体').selectOption({ label: '泰阜村 (204111)' });
    await add.getByLabel('初期パスワード (12文字以上)').fill('a long enough password');
    await add.getByRole('button', { name: '追加' }).click();
    const qr = page.getByRole('img', { name: 'ワンタイムコード登録用QRコード' });
    await qr.waitFor();
    await lib.screenshot(page, 'admin-staff-totp.png');
    const qrPng = path.join(env.tmp, 'qr.png');
    await qr.screenshot({ path: qrPng });
    const z = spawnSync('zbarimg', ['--quiet', '--raw', qrPng], { encoding: 'utf8' });
    assert.equal(z.status, 0, `zbarimg: ${z.stderr}`);
    const uri = z.stdout.trim();
    assert.equal(uri, await page.getByLabel('登録用URI').inputValue());
    const secret = new URL(uri).searchParams.get('secret');
    assert.match(uri, /^otpauth:\/\/totp\/.*v-new/);
    const verifier = await (await env.chromium.newContext()).newPage();
    await verifier.goto(`${env.gw.origin}/healthz`);
    const login = await verifier.evaluate(async (body) => {
      const res = await fetch('/api/login', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    }, { username: 'v-new', password: 'a long enough password', totp: totp(secret) });
    assert.equal(login.status, 200, JSON.stringify(login));
    assert.equal(login.body.role, 'verifier');
    assert.equal(login.body.municipality, '204111');
    await verifier.context().close();

    await page.getByRole('button', { name: '表示を閉じる' }).click();
    await page.getByRole('table', { name: '職員' }).getByRole('row').filter({ hasText: 'v-new' }).waitFor();
    await page.setViewportSize({ width: 1024, height: 768 });
    await noSidewaysScroll(page, 'staff at 1024x768');
    await page.getByRole('tab', { name: '登録情報' }).click();
    await noSidewaysScroll(page, 'registry at 1024x768');
    await page.getByRole('tab', { name: '端末' }).click();
    await noSidewaysScroll(page, 'devices at 1024x768');
    await context.close();
  } catch (e) {
    env.failed = true;
    throw e;
  }
});
