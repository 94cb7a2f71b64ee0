// Shared by the browser tests (docs/internals/browser-tests.md).
//
// - Gateway: a real `madoguchi serve` set up by tests/browser/gateway.py (the
//   integration harness), one per test file, stopped with SIGTERM at the end;
//   it must exit 0 with no sanitizer report.
// - Chromium (Debian /usr/bin/chromium) through playwright-core, Firefox ESR
//   (Debian /usr/bin/firefox-esr) through puppeteer-core over WebDriver BiDi.
//   Neither downloads anything.
// - The test pages web/test/tablet.html and web/test/verifier.html, driven
//   only through what they expose in window.mdTest.
//
// Loopback only: the gateway listens and binds ICE on 127.0.0.1, and the
// pages (?loopback=1) use only 127.0.0.1 candidates; except
// test_ice_restart.mjs, whose own network namespace and veth pair (netns.mjs)
// carry the tablet leg (?allow=10.78.X.0/24).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));

// The pages' screenshots in docs/screenshots/, which README.md and the docs
// show; MD_SCREENSHOTS=0 leaves them alone (scripts/test's ASan run).
export const SHOTS = path.join(HERE, '..', '..', 'docs', 'screenshots');

export async function screenshot(target, name, { fullPage = false } = {}) {
  if (process.env.MD_SCREENSHOTS === '0') return;
  fs.mkdirSync(SHOTS, { recursive: true });
  await target.screenshot({ path: path.join(SHOTS, name), fullPage });
}
export const CHROMIUM = '/usr/bin/chromium';
export const FIREFOX = '/usr/bin/firefox-esr';
export const PYTHON = '/usr/bin/python3';
export const SKIP = 77; // meson's exit code for a skipped test

// The ASan build of the gateway is a few times slower: stretch every wait.
export const SLOW = process.env.ASAN_OPTIONS || process.env.UBSAN_OPTIONS ? 3 : 1;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Exits 77 (skip) when a browser binary is missing; scripts/test installs them.
export function requireBinaries(...paths) {
  const missing = paths.filter((p) => !fs.existsSync(p));
  if (missing.length) {
    console.log(`SKIP: ${missing.join(', ')} not installed (apt-get install chromium firefox-esr)`);
    process.exit(SKIP);
  }
  for (const pkg of ['playwright-core', 'puppeteer-core']) {
    if (!fs.existsSync(path.join(HERE, 'node_modules', pkg, 'package.json'))) {
      console.error(`error: ${pkg} is missing: run \`npm ci\` in tests/browser (scripts/test does)`);
      process.exit(1);
    }
  }
}

export function chromiumArgs() {
  return [
    '--no-sandbox',
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    // WebRTC leaves loopback interfaces out by default; the tests use nothing else.
    '--allow-loopback-in-peer-connection',
    // Real addresses, not mDNS names, in the host candidates.
    '--disable-features=WebRtcHideLocalIpsWithMdns',
  ];
}

export function firefoxPrefs() {
  return {
    'media.navigator.streams.fake': true,
    'media.navigator.permission.disabled': true,
    // Without a camera permission on record, Firefox gathers only the address
    // of its default route ("use only default local addresses"); with it, all
    // interfaces, and loopback too when media.peerconnection.ice.loopback is set.
    'permissions.default.camera': 1,
    'permissions.default.microphone': 1,
    'media.peerconnection.ice.loopback': true,
    'media.peerconnection.ice.obfuscate_host_addresses': false,
    'media.autoplay.default': 0,
    // the one client certificate in the profile (firefoxClientCert), without asking
    'security.default_personal_cert': 'Select Automatically',
  };
}

function certutil(args) {
  const r = spawnSync('certutil', args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(`certutil ${args.join(' ')} failed (libnss3-tools installed?): ` +
                    `${r.error || r.stderr}`);
  }
}

// An NSS database that trusts the gateway's dev CA for TLS servers: Chromium
// reads $HOME/.pki/nssdb, Firefox reads cert9.db in its profile.
export function nssTrustingCa(dir, ca) {
  fs.mkdirSync(dir, { recursive: true });
  certutil(['-N', '-d', `sql:${dir}`, '--empty-password']);
  certutil(['-A', '-d', `sql:${dir}`, '-n', 'madoguchi-test-ca', '-t', 'C,,', '-i', ca]);
  return dir;
}

// --------------------------------------------------------------------------
// the gateway

// A child process that prints one JSON object per line on stdout.
export class JsonLines {
  constructor(command, args, env = {}) {
    this.proc = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1', ...env },
    });
    this.lines = [];
    this.waiters = [];
    this.history = [];
    this.name = path.basename(command === PYTHON ? args[0] : command); // for messages
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
      let msg;
      try { msg = JSON.parse(line); } catch { msg = { text: line }; }
      this.history.push(msg);
      const w = this.waiters.shift();
      if (w) w(msg); else this.lines.push(msg);
    });
    this.proc.on('exit', () => { for (const w of this.waiters.splice(0)) w({ exited: true }); });
    this.proc.stdin.on('error', () => {}); // a dead child: reported through exit
  }

  // The next line (or {exited: true}).
  next(timeout = 30_000 * SLOW) {
    if (this.lines.length) return Promise.resolve(this.lines.shift());
    if (this.proc.exitCode !== null) return Promise.resolve({ exited: true });
    return new Promise((resolve, reject) => {
      const waiter = (msg) => { clearTimeout(timer); resolve(msg); };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.name} printed nothing in time`));
      }, timeout);
      this.waiters.push(waiter);
    });
  }

  // The next line for which pred(line) is true; throws on an {error} line or exit.
  async until(pred, what, timeout = 30_000 * SLOW) {
    const deadline = Date.now() + timeout;
    for (;;) {
      let msg;
      try {
        msg = await this.next(Math.max(1, deadline - Date.now()));
      } catch (e) {
        throw new Error(`${what}: ${e.message}`);
      }
      if (pred(msg)) return msg;
      if (msg.error || msg.exited) {
        throw new Error(`${what}: ${JSON.stringify(msg)}`);
      }
    }
  }

  async command(line) {
    this.proc.stdin.write(line + '\n');
    return this.next();
  }
}

export class Gateway extends JsonLines {
  // Starts gateway.py and waits for its `ready` line.
  // `config` (optional) is merged into the gateway's config (MD_BR_CONFIG);
  // `registry` (optional) is imported instead of data/sample-registry.json
  // (MD_BR_REGISTRY); `deviceHost` is where the tablet reaches the device
  // listener.
  static async start({ config, registry, deviceHost = '127.0.0.1' } = {}) {
    const env = {};
    if (config) env.MD_BR_CONFIG = JSON.stringify(config);
    if (registry) env.MD_BR_REGISTRY = registry;
    const gw = new Gateway(PYTHON, [path.join(HERE, 'gateway.py')], env);
    const ready = await gw.next(90_000 * SLOW);
    if (!ready.ready) {
      throw new Error(`gateway set-up failed: ${ready.error || JSON.stringify(ready)}\n${ready.log || ''}`);
    }
    Object.assign(gw, ready);
    gw.deviceOrigin = `https://${deviceHost}:${gw.device_port}`;
    gw.deviceWs = `wss://${deviceHost}:${gw.device_port}/ws`;
    return gw;
  }

  // What another process needs to reach this gateway (gateway.py's `ready`).
  setup() {
    return { dir: this.dir, staff_port: this.staff_port, device_port: this.device_port,
             device: this.device };
  }

  // A TOTP code for `user` that was not used before.
  async totp(user) {
    const r = await this.command(`totp ${user}`);
    assert.ok(r.totp, `no TOTP code: ${JSON.stringify(r)}`);
    return r.totp;
  }

  // The audit entries (`madoguchi audit export`), only `session`'s if given.
  async audit(session) {
    const r = await this.command(session ? `audit ${session}` : 'audit');
    assert.ok(Array.isArray(r.audit), `audit export: ${JSON.stringify(r)}`);
    return r.audit;
  }

  // Rows of an SQL query on the gateway's database (read-only); throws with
  // the SQLite error (e.g. "no such table") if it fails.
  async sql(query) {
    const r = await this.command(`sql ${query.replace(/\s+/g, ' ')}`);
    if (!Array.isArray(r.rows)) throw new Error(`sql ${query}: ${r.error || JSON.stringify(r)}`);
    return r.rows;
  }

  // Keeps the temporary directory (serve.log) after the stop.
  async keep() {
    if (!this.kept) this.kept = (await this.command('keep')).keep;
    return this.kept;
  }

  logText() {
    try { return fs.readFileSync(this.log, 'utf8'); } catch { return ''; }
  }

  logTail(lines = 80) {
    const text = this.logText().split('\n');
    return `--- gateway log ${this.log} (last ${lines} lines)\n${text.slice(-lines).join('\n')}\n---`;
  }

  // SIGTERM through gateway.py; throws if the gateway did not exit 0 cleanly.
  async stop() {
    if (this.stopped) return;
    this.stopped = true;
    this.proc.stdin.write('stop\n');
    const r = await this.next(60_000 * SLOW);
    await this.exited;
    if (!r.stopped) throw new Error(`gateway did not stop cleanly: ${r.error || JSON.stringify(r)}`);
  }
}

// --------------------------------------------------------------------------
// browsers

export async function launchChromium(home) {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: chromiumArgs(),
    env: { ...process.env, HOME: home },
    timeout: 60_000 * SLOW,
  });
}

// The tablet's browser context. Its TLS client certificate is presented by
// Playwright (clientCertificates): Playwright's own proxy makes the TLS
// connections to the device origin, WebSocket upgrades included, and the
// browser talks to that proxy. The proxy, not the browser, checks the
// gateway's certificate, against Node's CA list, which cannot hold the test's
// CA; so this one context ignores certificate errors.
//
// The gateway serves the test pages on the staff listener only, with
// `connect-src 'self'`; a page from the staff origin may not open the device
// listener's WebSocket. So the tablet page is loaded at the device origin:
// each /test/ request there is answered with the gateway's own response
// (headers, CSP included) for the same path on the staff listener.
export async function tabletContext(browser, gw) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    clientCertificates: [{ origin: gw.deviceOrigin, certPath: gw.device.cert,
                           keyPath: gw.device.key }],
  });
  await context.route(`${gw.deviceOrigin}/test/**`, async (route) => {
    const url = new URL(route.request().url());
    const response = await route.fetch({ url: gw.origin + url.pathname + url.search });
    await route.fulfill({ response });
  });
  return context;
}

// Imports the tablet's certificate and key into a Firefox profile's NSS
// database; with security.default_personal_cert "Select Automatically"
// (firefoxPrefs) Firefox presents it to the device listener.
export function firefoxClientCert(profile, gw, tmp) {
  const p12 = path.join(tmp, 'tablet.p12');
  const r = spawnSync('openssl', ['pkcs12', '-export', '-in', gw.device.cert, '-inkey', gw.device.key,
                                  '-out', p12, '-passout', 'pass:md'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl pkcs12: ${r.stderr}`);
  const i = spawnSync('pk12util', ['-i', p12, '-d', `sql:${profile}`, '-W', 'md', '-K', ''], { encoding: 'utf8' });
  if (i.status !== 0) throw new Error(`pk12util: ${i.stderr || i.stdout}`);
}

export async function launchFirefox(profile) {
  const { default: puppeteer } = await import('puppeteer-core');
  return puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    protocol: 'webDriverBiDi',
    headless: true,
    userDataDir: profile,
    extraPrefsFirefox: firefoxPrefs(),
    timeout: 60_000 * SLOW,
    protocolTimeout: 60_000 * SLOW,
  });
}

// Collects a page's console output for the failure report.
export function recordConsole(page, name, sink) {
  page.on('console', (m) => sink.push(`[${name}] console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => sink.push(`[${name}] pageerror: ${e && e.message}`));
}

// --------------------------------------------------------------------------
// the test pages

// What a page's window.mdTest says, for failure messages.
export async function describe(page) {
  try {
    return await page.evaluate(() => {
      const t = window.mdTest;
      if (!t) return 'no window.mdTest';
      return JSON.stringify({
        role: t.role, session: t.session, state: t.state, lastError: t.lastError,
        wsOpen: t.wsOpen, wsClose: t.wsClose, sent: t.sent, messages: t.messages.slice(-25),
        localCandidates: t.localCandidates, remoteCandidates: t.remoteCandidates,
        pc: t.pc && { connection: t.pc.connectionState, ice: t.pc.iceConnectionState,
                      signaling: t.pc.signalingState },
      });
    });
  } catch (e) {
    return `(page not readable: ${e.message})`;
  }
}

// Polls fn(arg) in the page until it returns something truthy; returns it.
// Fails at once if the page's session ends meanwhile (unless `what` is 'ended').
export async function waitFor(page, fn, arg, what, timeout = 30_000) {
  const deadline = Date.now() + timeout * SLOW;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg);
    if (last) return last;
    const failed = await page.evaluate(() => window.mdTest && window.mdTest.ended);
    if (failed && what !== 'ended') {
      throw new Error(`${what}: the session ended first\n${await describe(page)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}\n${await describe(page)}`);
    }
    await sleep(200);
  }
}

// Logs the verifier in through POST /api/login (the __Host-md_session cookie lands in
// the browser) and opens the verifier test page.
export async function openVerifier(page, gw, query = {}) {
  await page.goto(`${gw.origin}/healthz`);
  const code = await gw.totp('v-yasuoka');
  const login = await page.evaluate(async (body) => {
    const res = await fetch('/api/login', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.text() };
  }, { username: 'v-yasuoka', password: gw.password, totp: code });
  assert.equal(login.status, 200, `login: ${login.body}`);
  const q = new URLSearchParams({ loopback: '1', ...query });
  await page.goto(`${gw.origin}/test/verifier.html?${q}`);
  await waitFor(page, () => window.mdTest && window.mdTest.hello, null, 'verifier hello');
}

// Opens the tablet test page; it requests a session at once. Returns the session.
export async function openTablet(page, gw, query = {}) {
  const q = new URLSearchParams({ loopback: '1', device: gw.deviceWs, ...query });
  await page.goto(`${gw.deviceOrigin}/test/tablet.html?${q}`);
  return waitFor(page, () => window.mdTest && window.mdTest.session, null, 'tablet queued');
}

// The verifier clicks `accept` on the queue entry of `session`.
export async function accept(page, session) {
  await waitFor(page, (s) => window.mdTest.queue.some((e) => e.session === s), session,
                `queue entry ${session}`);
  await page.click(`button.accept[data-session="${session}"]`);
}

export async function waitLive(page, name) {
  await waitFor(page, () => window.mdTest.state === 'live', null, `${name}: state live`, 40_000);
}

// Asserts that `page` decodes video and audio from the other leg: inbound
// framesDecoded, audio packets and non-concealed samples all grow between
// two samples. Returns the second sample.
export async function assertMediaFlows(page, name, videoCodec) {
  const first = await waitFor(page, async () => {
    const s = await window.mdTest.stats();
    return s.video && s.video.framesDecoded > 0 && s.audio && s.audio.packetsReceived > 0 ? s : null;
  }, null, `${name}: first decoded video frame and audio packet`, 40_000);
  await sleep(1000);
  const second = await waitFor(page, async (f) => {
    const s = await window.mdTest.stats();
    const grew = s.video.framesDecoded > f.video.framesDecoded &&
                 s.audio.packetsReceived > f.audio.packetsReceived &&
                 (s.audio.totalSamplesReceived === undefined ||
                  s.audio.totalSamplesReceived - (s.audio.concealedSamples || 0) >
                  f.audio.totalSamplesReceived - (f.audio.concealedSamples || 0));
    return grew ? s : null;
  }, first, `${name}: video frames and audio samples keep being decoded`, 30_000);
  console.log(`# ${name}: ${JSON.stringify({ first: first.video, second: second.video,
                                             audio: second.audio })}`);
  assert.equal(second.video.codec, videoCodec, `${name}: inbound video codec`);
  assert.equal(second.audio.codec, 'audio/opus', `${name}: inbound audio codec`);
  return second;
}

// The verifier records `verified`; both pages see `ended`.
export async function finish(verifier, tablet) {
  // The gateway takes `verified` only once it sent the tablet's media on the
  // verifier's leg, as its per-second `quality` counters show.
  await waitFor(verifier, () => {
    const q = window.mdTest.quality && window.mdTest.quality.verifier;
    return q && q.counters && q.counters.packets_out > 0;
  }, null, 'quality: media sent to the verifier');
  await verifier.evaluate(() => window.mdTest.outcome('verified'));
  for (const [page, name] of [[verifier, 'verifier'], [tablet, 'tablet']]) {
    if (!page) continue;
    const ended = await waitFor(page, () => window.mdTest.ended, null, 'ended');
    assert.equal(ended.outcome, 'verified', `${name}: ${JSON.stringify(ended)}`);
  }
}

// A temporary directory for one test file, removed unless kept.
export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// After a failure: hangs up the page's unfinished session, so that the next
// test of the file starts with an idle verifier and tablet.
export async function hangupIfOpen(page) {
  try {
    const open = await page.evaluate(() => {
      const t = window.mdTest;
      if (!t || !t.session || t.ended || !t.wsOpen) return false;
      t.hangup();
      return true;
    });
    if (open) await waitFor(page, () => window.mdTest.ended, null, 'ended', 5_000);
  } catch {
    // the page is gone or the gateway does not answer: the failure is reported already
  }
}

/*
 * The shared set-up of a test file: a gateway, and a Chromium (plus a
 * Firefox if asked) that trust its dev CA, started before the file's tests
 * and always stopped after them.  `gateway(tmp)` (optional) returns the
 * options of Gateway.start (e.g. a registry written to the file's temporary
 * directory `tmp`).  A test that fails sets env.failed; then the
 * browsers' console, the gateway's log and anything env.onFailure prints are
 * shown, and the gateway's directory is kept.  env.cleanup runs before the
 * browsers close (for helper processes such as the aiortc tablet).
 */
export function browserFixture(prefix, { firefox = false, gateway, firefoxProfile } = {}) {
  const env = {
    gw: null, chromium: null, firefox: null, tmp: null, failed: false, consoleLog: [],
    onFailure: null, cleanup: null,
  };
  before(async () => {
    try {
      env.tmp = tempDir(prefix);
      env.gw = await Gateway.start(gateway ? await gateway(env.tmp) : {});
      const home = path.join(env.tmp, 'home');
      nssTrustingCa(path.join(home, '.pki', 'nssdb'), env.gw.ca);
      const profile = firefox ? nssTrustingCa(path.join(env.tmp, 'firefox-profile'), env.gw.ca) : null;
      if (profile && firefoxProfile) firefoxProfile(profile, env.gw, env.tmp); // e.g. a client certificate
      [env.chromium, env.firefox] = await Promise.all([
        launchChromium(home), firefox ? launchFirefox(profile) : null,
      ]);
    } catch (e) {
      env.failed = true;
      throw e;
    }
  });
  after(async () => {
    if (env.failed) {
      console.log(env.consoleLog.slice(-80).join('\n'));
      if (env.onFailure) env.onFailure();
      if (env.gw) {
        console.log(env.gw.logTail(120));
        console.log(`kept ${await env.gw.keep()}`);
      }
    }
    if (env.cleanup) await env.cleanup();
    await env.firefox?.close().catch(() => {});
    await env.chromium?.close().catch(() => {});
    try {
      await env.gw?.stop();
    } finally {
      if (env.tmp) fs.rmSync(env.tmp, { recursive: true, force: true });
    }
  });
  return env;
}

/*
 * Starts an aiortc tablet (aiortc_tablet.py) as `device` (the gateway's first
 * tablet unless named) and ties it to env: if a test fails, its last lines are
 * shown (env.onFailure), and it is stopped before the browsers close
 * (env.cleanup: stdin closed, killed after 20 s).
 */
export function startAiortcTablet(env, device = env.gw.device) {
  const tablet = new JsonLines(PYTHON, [path.join(HERE, 'aiortc_tablet.py'),
                                        JSON.stringify({ ...env.gw.setup(), device })]);
  env.onFailure = () => console.log(`aiortc tablet said: ${JSON.stringify(tablet.history.slice(-20))}`);
  env.cleanup = async () => {
    tablet.proc.stdin.end();
    const timer = setTimeout(() => tablet.proc.kill(), 20_000 * SLOW);
    await tablet.exited;
    clearTimeout(timer);
  };
  return tablet;
}

/*
 * Runs fn({verifier, tablet}) with a fresh verifier page (trusting the dev CA)
 * and tablet page (with its client certificate) of env's Chromium, their
 * consoles recorded under `label`; marks env.failed when fn throws, and always
 * hangs up an unfinished session and closes both contexts.
 */
export async function withChromiumPair(env, label, fn) {
  const verifierContext = await env.chromium.newContext();
  const tabletCtx = await tabletContext(env.chromium, env.gw);
  const verifier = await verifierContext.newPage();
  const tablet = await tabletCtx.newPage();
  try {
    recordConsole(verifier, `verifier${label}`, env.consoleLog);
    recordConsole(tablet, `tablet${label}`, env.consoleLog);
    return await fn({ verifier, tablet });
  } catch (e) {
    env.failed = true;
    throw e;
  } finally {
    await hangupIfOpen(tablet);
    await verifierContext.close().catch(() => {});
    await tabletCtx.close().catch(() => {});
  }
}

// Both pages open, the tablet requests, the verifier accepts, both see `live`.
export async function goLive(verifier, tablet, gw, query) {
  await openVerifier(verifier, gw, query);
  const id = await openTablet(tablet, gw, query);
  await accept(verifier, id);
  await waitLive(verifier, 'verifier');
  await waitLive(tablet, 'tablet');
  return id;
}
