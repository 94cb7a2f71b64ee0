// TURN over TCP and ICE-TCP when the post office's network blocks UDP
// (issue 12, item 4), with the tablet's Chromium in a network namespace.
//
// Topology (netns.mjs): the namespace md-turn-<pid> joined to the root
// namespace by a veth pair, 10.78.X.2 inside, 10.78.X.1 outside. The
// gateway's device listener and ICE, and coturn (Debian `turnserver`, started
// here with a config this test writes, TCP listener only), are bound to
// 10.78.X.1, and nothing else is used. The tablet's Chromium (tablet_ns.mjs,
// driving the test pages web/test/tablet.html) runs inside the namespace,
// where nftables rules of the test's own table drop every UDP packet to and
// from 10.78.X.1; the verifier's Chromium runs in the root namespace.
//
// - TURN/TCP: the gateway hands out coturn's URL with time-limited
//   credentials (turn.urls, turn.secret: coturn's use-auth-secret); in the
//   namespace TCP to 10.78.X.1 is allowed only to the device listener and to
//   coturn, so the only media path is tablet -TCP-> coturn -UDP-> gateway. The
//   session must go live, media must flow both ways, and the tablet's
//   selected pair must be its relay candidate allocated over TCP; coturn's
//   log must show the session's credentials in use.
// - ICE-TCP without TURN: no TURN configured, UDP still blocked, and the
//   tablet keeps TCP candidates only (?transport=tcp): the session goes live
//   over the gateway's passive TCP candidate (RFC 6544).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import * as lib from '../browser/lib.mjs';
import { Netns, NsTablet, requireNetns, IP } from '../browser/netns.mjs';

const TURNSERVER = '/usr/bin/turnserver';
const NFT = ['/usr/sbin/nft', '/sbin/nft'].find((p) => fs.existsSync(p));

lib.requireBinaries(lib.CHROMIUM);
requireNetns();
if (!fs.existsSync(TURNSERVER) || !NFT) {
  console.log('SKIP: coturn (turnserver) or nftables (nft) not installed');
  process.exit(lib.SKIP);
}

let ns;
let tmp;
let failed = false;
const consoleLog = [];
const t0 = Date.now();
const log = (text) => console.log(`# [${((Date.now() - t0) / 1000).toFixed(1)} s] ${text}`);

before(() => {
  tmp = lib.tempDir('md-turn-');
  ns = new Netns();
  ns.name = `md-turn-${process.pid}`; // distinct from test_ice_restart's md-t-<pid>
  ns.up();
  log(`namespace ${ns.name}: ${ns.hostIf} ${ns.hostAddr} <-> ${ns.nsIf} ${ns.nsAddr}`);
});

after(() => {
  if (failed) console.log(consoleLog.slice(-120).join('\n'));
  ns?.down();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// A free TCP port on `host` (the socket is closed before coturn binds it;
// the address belongs to this test's veth alone, so nobody else takes it).
function freePort(host) {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

// nftables inside the namespace: UDP to and from the gateway's address is
// dropped; with `tcpPorts`, TCP to it only to those ports.
function blockInNamespace(tcpPorts) {
  const tcp = tcpPorts ? `ip daddr ${ns.hostAddr} tcp dport != { ${tcpPorts.join(', ')} } drop` : '';
  const rules = `
table inet md_block {
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr ${ns.hostAddr} meta l4proto udp counter drop
    ${tcp}
  }
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr ${ns.hostAddr} meta l4proto udp counter drop
  }
}
`;
  const file = path.join(tmp, 'block.nft');
  fs.writeFileSync(file, rules);
  // Replace any previous table of ours (the second test installs its own).
  spawnSync(IP, ['netns', 'exec', ns.name, NFT, 'delete', 'table', 'inet', 'md_block']);
  const r = spawnSync(IP, ['netns', 'exec', ns.name, NFT, '-f', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, `nft -f: ${r.stderr}`);
}

// UDP packets the namespace dropped (output chain), from the rule's counter.
function droppedUdp() {
  const r = spawnSync(IP, ['netns', 'exec', ns.name, NFT, 'list', 'chain', 'inet', 'md_block',
                           'output'], { encoding: 'utf8' });
  const m = /udp counter packets (\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : -1;
}

class Coturn {
  constructor(dir, host, port, secret) {
    this.log = path.join(dir, 'turnserver.log');
    const conf = path.join(dir, 'turnserver.conf');
    fs.writeFileSync(conf, [
      `listening-ip=${host}`,
      `listening-port=${port}`,
      `relay-ip=${host}`,
      'min-port=49152',
      'max-port=49352',
      'no-udp', // TURN over TCP only, as behind a UDP-blocking firewall
      'no-tls',
      'no-dtls',
      'use-auth-secret',
      `static-auth-secret=${secret}`,
      'realm=madoguchi.test',
      'fingerprint',
      'no-cli',
      'no-multicast-peers',
      // relay to the gateway's address only
      'denied-peer-ip=0.0.0.0-255.255.255.255',
      `allowed-peer-ip=${host}`,
      `userdb=${path.join(dir, 'turndb')}`,
      `pidfile=${path.join(dir, 'turnserver.pid')}`,
      `log-file=${this.log}`,
      'simple-log',
      'verbose',
      '',
    ].join('\n'));
    this.proc = spawn(TURNSERVER, ['-c', conf, '--no-stdout-log'],
                      { stdio: ['ignore', 'ignore', 'pipe'] });
    this.stderr = '';
    this.proc.stderr.on('data', (d) => { this.stderr += d; });
    this.exited = new Promise((resolve) => this.proc.on('exit', resolve));
    this.host = host;
    this.port = port;
  }

  async ready() {
    for (let i = 0; i < 100 * lib.SLOW; i++) {
      const ok = await new Promise((resolve) => {
        const s = net.connect(this.port, this.host, () => { s.destroy(); resolve(true); });
        s.on('error', () => resolve(false));
      });
      if (ok) return;
      if (this.proc.exitCode !== null) break;
      await lib.sleep(100);
    }
    throw new Error(`coturn did not listen on ${this.host}:${this.port}: ${this.stderr}\n${this.logText()}`);
  }

  logText() {
    try { return fs.readFileSync(this.log, 'utf8'); } catch { return ''; }
  }

  async stop() {
    if (this.proc.exitCode === null) this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

// The tablet's selected candidate pair, as Chromium reports it.
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
    return { localType: local.candidateType, localProtocol: local.protocol,
             relayProtocol: local.relayProtocol || null, localAddress: local.address,
             remoteType: remote.candidateType, remoteProtocol: remote.protocol,
             remoteAddress: remote.address, state: pair.state };
  });
}

// Gateway, verifier (root namespace), tablet (in the namespace), one session
// live with media both ways; then fn, then everything is torn down.
async function withSession(name, { config, tabletQuery = {}, block }, fn) {
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
    await block(gw);
    const home = path.join(tmp, name, 'home');
    lib.nssTrustingCa(path.join(home, '.pki', 'nssdb'), gw.ca);
    browser = await lib.launchChromium(home);
    const tabletHome = path.join(tmp, name, 'tablet-home');
    fs.mkdirSync(tabletHome, { recursive: true });
    tablet = new NsTablet(ns, tabletHome, consoleLog);
    await tablet.ready(60_000 * lib.SLOW);

    verifier = await (await browser.newContext()).newPage();
    lib.recordConsole(verifier, `verifier ${name}`, consoleLog);
    await lib.openVerifier(verifier, gw, { allow: ns.net, codec: 'VP8' });

    const q = new URLSearchParams({ allow: ns.net, device: gw.deviceWs, codec: 'VP8',
                                    ...tabletQuery });
    await tablet.open(gw, `${gw.deviceOrigin}/test/tablet.html?${q}`);
    const id = await lib.waitFor(tablet, () => window.mdTest && window.mdTest.session, null,
                                 'tablet queued');
    await lib.accept(verifier, id);
    await lib.waitLive(verifier, 'verifier');
    await lib.waitLive(tablet, 'tablet');
    await lib.assertMediaFlows(verifier, `${name}: verifier`, 'video/VP8');
    await lib.assertMediaFlows(tablet, `${name}: tablet`, 'video/VP8');
    log(`${name}: session ${id} live, media flows both ways`);
    await fn({ gw, verifier, tablet, id });
    await lib.finish(verifier, tablet);
    ok = true;
  } catch (e) {
    failed = true;
    if (verifier) consoleLog.push(`verifier: ${await lib.describe(verifier)}`);
    if (tablet) consoleLog.push(`tablet: ${await lib.describe(tablet).catch(() => '?')}`);
    throw e;
  } finally {
    if (!ok && gw) {
      console.log(gw.logTail(120));
      console.log(`kept ${await gw.keep().catch(() => '?')}`);
    }
    if (verifier && !ok) await lib.hangupIfOpen(verifier);
    await tablet?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await gw?.stop();
  }
}

test('UDP blocked: the tablet reaches live over TURN/TCP with the gateway\'s credentials',
     { timeout: 200_000 * lib.SLOW }, async () => {
  const secret = crypto.randomBytes(24).toString('hex');
  const turnPort = await freePort(ns.hostAddr);
  const coturn = new Coturn(fs.mkdtempSync(path.join(tmp, 'coturn-')), ns.hostAddr, turnPort,
                            secret);
  try {
    await coturn.ready();
    log(`coturn on ${ns.hostAddr}:${turnPort} (TCP only)`);
    await withSession('turn', {
      config: { turn: { urls: `turn:${ns.hostAddr}:${turnPort}?transport=tcp`, secret,
                        ttl_seconds: 600 } },
      block: (gw) => blockInNamespace([gw.device_port, turnPort]),
    }, async ({ tablet, id }) => {
      const assigned = await tablet.evaluate(() => window.mdTest.assigned);
      const servers = assigned.ice_servers;
      assert.equal(servers.length, 1, JSON.stringify(servers));
      assert.deepEqual(servers[0].urls, [`turn:${ns.hostAddr}:${turnPort}?transport=tcp`]);
      const [expiry, user] = servers[0].username.split(':');
      assert.equal(user, id);
      const now = Date.now() / 1000;
      assert.ok(Number(expiry) > now && Number(expiry) <= now + 600 + 5, servers[0].username);
      const expected = crypto.createHmac('sha1', secret).update(servers[0].username)
        .digest('base64');
      assert.equal(servers[0].credential, expected, 'credential = base64(HMAC-SHA1(secret, user))');

      const pair = await selectedPair(tablet);
      log(`tablet selected pair: ${JSON.stringify(pair)}; UDP packets dropped in the namespace: ` +
          `${droppedUdp()}`);
      assert.ok(pair, 'tablet has a selected pair');
      assert.equal(pair.localType, 'relay', JSON.stringify(pair));
      assert.equal(pair.relayProtocol, 'tcp', JSON.stringify(pair));
      assert.ok(coturn.logText().includes(servers[0].username),
                `coturn's log does not show the session's user ${servers[0].username}`);
    });
  } finally {
    if (failed) console.log(`--- coturn log\n${coturn.logText().split('\n').slice(-60).join('\n')}`);
    await coturn.stop();
  }
});

test('UDP blocked, no TURN: the tablet reaches live over ICE-TCP',
     { timeout: 200_000 * lib.SLOW }, () =>
  withSession('ice-tcp', {
    config: {},
    tabletQuery: { transport: 'tcp' },
    block: () => blockInNamespace(null),
  }, async ({ tablet }) => {
    const pair = await selectedPair(tablet);
    log(`tablet selected pair: ${JSON.stringify(pair)}; UDP packets dropped in the namespace: ` +
        `${droppedUdp()}`);
    assert.ok(pair, 'tablet has a selected pair');
    assert.equal(pair.localProtocol, 'tcp', JSON.stringify(pair));
    assert.equal(pair.remoteProtocol, 'tcp', JSON.stringify(pair));
    assert.equal(pair.remoteAddress, ns.hostAddr, JSON.stringify(pair));
  }));
