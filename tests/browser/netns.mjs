// A network namespace for one test run (test_ice_restart.mjs), and the tablet's
// Chromium running inside it (tablet_ns.mjs) driven over a pipe.
//
// The namespace md-t-<pid> is joined to the root namespace by a veth pair:
// mdh<pid> in the root namespace with 10.78.X.1/24, mdt<pid> in the namespace
// with 10.78.X.2/24 (X picked so that no interface already has an address in
// 10.78.X.0/24). No route leaves that /24: the only traffic is between the
// two ends. cut() sets mdt<pid> down (the tablet loses its interface; the
// root side keeps 10.78.X.1, so the gateway and the verifier keep theirs),
// restore() sets it up again. down() deletes the namespace and the pair; it
// also runs on process exit and on SIGINT/SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { HERE, SKIP } from './lib.mjs';

export const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((p) => fs.existsSync(p));

// Exits 77 (skip) when `ip` (iproute2) is missing; fails when not root.
export function requireNetns() {
  if (!IP) {
    console.log('SKIP: `ip` not installed (apt-get install iproute2)');
    process.exit(SKIP);
  }
  if (process.getuid && process.getuid() !== 0) {
    console.error('error: test_ice_restart needs root (ip netns add)');
    process.exit(1);
  }
}

function ip(args, { check = true } = {}) {
  const r = spawnSync(IP, args, { encoding: 'utf8' });
  if (check && (r.error || r.status !== 0)) {
    throw new Error(`ip ${args.join(' ')} failed: ${r.error || r.stderr}`);
  }
  return r;
}

export class Netns {
  constructor() {
    const id = process.pid;
    this.name = `md-t-${id}`;
    this.hostIf = `mdh${id}`.slice(0, 15);
    this.nsIf = `mdt${id}`.slice(0, 15);
    for (let i = 0; i < 250; i++) {
      const x = 1 + ((id + i) % 250);
      const used = ip(['-4', '-o', 'addr', 'show', 'to', `10.78.${x}.0/24`]).stdout.trim();
      const routed = ip(['-4', '-o', 'route', 'show', 'match', `10.78.${x}.1`]).stdout
        .split('\n').some((l) => l.startsWith(`10.78.${x}.`) || l.startsWith('10.78.'));
      if (!used && !routed) { this.x = x; break; }
    }
    if (this.x === undefined) throw new Error('no free 10.78.X.0/24 network');
    this.net = `10.78.${this.x}.0/24`;
    this.hostAddr = `10.78.${this.x}.1`;
    this.nsAddr = `10.78.${this.x}.2`;
    this.isUp = false;
  }

  up() {
    this.isUp = true;
    const teardown = () => this.down();
    process.on('exit', teardown);
    for (const sig of ['SIGINT', 'SIGTERM']) {
      process.once(sig, () => { teardown(); process.exit(130); });
    }
    ip(['netns', 'add', this.name]);
    ip(['link', 'add', this.hostIf, 'type', 'veth', 'peer', 'name', this.nsIf]);
    // No IPv6 link-local addresses: one would arrive a second or two after the
    // link comes up (after DAD), and Chromium aborts any navigation then in
    // flight with ERR_NETWORK_CHANGED. The test uses IPv4 alone.
    ip(['link', 'set', this.hostIf, 'addrgenmode', 'none']);
    ip(['link', 'set', this.nsIf, 'netns', this.name]);
    ip(['-n', this.name, 'link', 'set', this.nsIf, 'addrgenmode', 'none']);
    ip(['addr', 'add', `${this.hostAddr}/24`, 'dev', this.hostIf]);
    ip(['link', 'set', this.hostIf, 'up']);
    ip(['-n', this.name, 'addr', 'add', `${this.nsAddr}/24`, 'dev', this.nsIf]);
    ip(['-n', this.name, 'link', 'set', this.nsIf, 'up']);
    ip(['-n', this.name, 'link', 'set', 'lo', 'up']);
    // Wait for the veth to carry traffic (no DAD for IPv4; carrier is quick).
    for (let i = 0; i < 50; i++) {
      const r = ip(['-n', this.name, '-o', 'link', 'show', this.nsIf]).stdout;
      if (/state UP/.test(r)) break;
      spawnSync('sleep', ['0.1']);
    }
    return this;
  }

  cut() { ip(['-n', this.name, 'link', 'set', this.nsIf, 'down']); }

  restore() { ip(['-n', this.name, 'link', 'set', this.nsIf, 'up']); }

  down() {
    if (!this.isUp) return;
    this.isUp = false;
    ip(['netns', 'del', this.name], { check: false }); // deletes mdt, and with it mdh
    ip(['link', 'del', this.hostIf], { check: false }); // in case it is still there
  }
}

// The tablet's Chromium inside `ns` (tablet_ns.mjs). page() is a stand-in for
// a Playwright Page with the evaluate(fn, arg) that lib.mjs's helpers use.
export class NsTablet {
  constructor(ns, home, consoleSink) {
    this.proc = spawn(IP, ['netns', 'exec', ns.name, process.execPath,
                           path.join(HERE, 'tablet_ns.mjs'), home],
                      { stdio: ['pipe', 'pipe', 'inherit'], env: process.env });
    this.proc.stdin.on('error', () => {});
    this.pending = new Map();
    this.nextId = 1;
    this.readyWaiters = [];
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => {
      const err = new Error(`tablet_ns.mjs exited (${code})`);
      for (const { reject } of this.pending.values()) reject(err);
      this.pending.clear();
      for (const w of this.readyWaiters.splice(0)) w.reject(err);
      resolve(code);
    }));
    readline.createInterface({ input: this.proc.stdout }).on('line', (line) => {
      let msg;
      try { msg = JSON.parse(line); } catch { consoleSink.push(`[tablet-ns] ${line}`); return; }
      if (msg.console !== undefined) { consoleSink.push(`[tablet] ${msg.console}`); return; }
      if (msg.ready) { this.version = msg.version; for (const w of this.readyWaiters.splice(0)) w.resolve(); return; }
      const p = this.pending.get(msg.id);
      if (!p) { consoleSink.push(`[tablet-ns] ${line}`); return; }
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`tablet: ${msg.error}`)); else p.resolve(msg.result);
    });
  }

  ready(timeout) {
    if (this.version) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('tablet Chromium did not start')), timeout);
      this.readyWaiters.push({ resolve: () => { clearTimeout(timer); resolve(); },
                               reject: (e) => { clearTimeout(timer); reject(e); } });
    });
  }

  call(msg, timeout = 90_000) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`tablet: no answer to ${msg.cmd} in ${timeout} ms`));
      }, timeout);
      this.pending.set(id, { resolve: (v) => { clearTimeout(timer); resolve(v); },
                             reject: (e) => { clearTimeout(timer); reject(e); } });
      this.proc.stdin.write(JSON.stringify({ id, ...msg }) + '\n');
    });
  }

  open(gw, url) {
    return this.call({ cmd: 'open', origin: gw.deviceOrigin, cert: gw.device.cert,
                       key: gw.device.key, url });
  }

  // The kiosk driven as the clerk does: by role and name, by visible text.
  click(role, name) {
    return this.call({ cmd: 'click', role, name });
  }

  waitText(text) {
    return this.call({ cmd: 'waitText', text });
  }

  evaluate(fn, arg) {
    return this.call({ cmd: 'eval', fn: fn.toString(), arg });
  }

  async close() {
    this.proc.stdin.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(timer);
  }
}
