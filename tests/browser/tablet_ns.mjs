// The tablet's Chromium for test_ice_restart.mjs, run by that test inside its
// network namespace (`ip netns exec NS node tablet_ns.mjs HOME`), so that the
// browser, its WebRTC candidates and Playwright's client-certificate proxy
// (which makes the tablet's TLS connections, WebSocket included) all live
// there and reach the gateway only over the test's veth pair.
//
// Controlled over stdin/stdout, which do not care about namespaces: one JSON
// object per line.
//   -> {"id", "cmd": "open", "origin", "cert", "key", "url"}  a new context
//      (client certificate for `origin`, certificate errors ignored, as
//      lib.tabletContext) and page at `url`; the previous one is closed
//   -> {"id", "cmd": "eval", "fn", "arg"}  `(fn)(arg)` in the page, awaited
//   -> {"id", "cmd": "click", "role", "name"}  clicks getByRole(role, {name})
//   -> {"id", "cmd": "waitText", "text"}  waits until `text` is visible
//   <- {"id", "result"} or {"id", "error"}
//   <- {"console": text}  the page's console output, unsolicited
// End of input closes the browser and exits.
import readline from 'node:readline';
import { CHROMIUM, SLOW, chromiumArgs } from './lib.mjs';

const home = process.argv[2];
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const { chromium } = await import('playwright-core');
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: chromiumArgs(),
  env: { ...process.env, HOME: home },
  timeout: 60_000 * SLOW,
});
let context = null;
let page = null;

async function handle(msg) {
  if (msg.cmd === 'open') {
    if (context) await context.close().catch(() => {});
    context = await browser.newContext({
      ignoreHTTPSErrors: true, viewport: { width: 1024, height: 768 },
      clientCertificates: [{ origin: msg.origin, certPath: msg.cert, keyPath: msg.key }],
    });
    page = await context.newPage();
    page.on('console', (m) => out({ console: `console.${m.type()}: ${m.text()}` }));
    page.on('pageerror', (e) => out({ console: `pageerror: ${e && e.message}` }));
    await page.goto(msg.url, { timeout: 60_000 * SLOW });
    return true;
  }
  if (msg.cmd === 'eval') {
    if (!page) throw new Error('no page open');
    const arg = msg.arg === undefined ? 'undefined' : JSON.stringify(msg.arg);
    const result = await page.evaluate(`(${msg.fn})(${arg})`);
    return result === undefined ? null : result;
  }
  if (msg.cmd === 'click') {
    await page.getByRole(msg.role, { name: msg.name }).click({ timeout: 30_000 * SLOW });
    return true;
  }
  if (msg.cmd === 'waitText') {
    await page.getByText(msg.text).first().waitFor({ timeout: 30_000 * SLOW });
    return true;
  }
  throw new Error(`unknown command ${msg.cmd}`);
}

out({ ready: true, version: browser.version() });
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let msg;
  try { msg = JSON.parse(line); } catch { out({ error: `not JSON: ${line}` }); return; }
  handle(msg).then((result) => out({ id: msg.id, result }),
                   (e) => out({ id: msg.id, error: String(e && e.stack || e) }));
});
rl.on('close', async () => {
  await browser.close().catch(() => {});
  process.exit(0);
});
