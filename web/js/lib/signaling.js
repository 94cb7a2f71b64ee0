// Client library: the signaling connection of docs/protocol.md (one WebSocket,
// JSON messages discriminated by `type`, subprotocol madoguchi.v1) with
// automatic reconnection.
//
// When the socket closes without the page asking, it is opened again after
// 0.5, 1, 2, 4, 8 then 15 s (with ±20 % jitter), for as long as the page
// lives. The gateway recognises the device (its certificate) or the verifier
// (the login cookie) and, within session.rejoin_grace_seconds, puts the new
// connection back into its unfinished session: `assigned` and `state` come
// again for the same session id, and the page picks its call up from there
// (docs/protocol.md, "Rejoining"). A close the gateway meant as a refusal
// (1008 policy, 1009 too large, 4xxx) is not retried: a reload would get the
// same answer.
//
// connect(url, handlers, {onStatus}) -> conn
//   handlers: message type -> function(msg), and '*' for every message.
//   onStatus(status, info): 'connecting' | 'open' | 'reconnecting' | 'closed'.
//   conn.send(msg) (false while not open: nothing is queued, callers decide),
//   conn.close(), conn.status, conn.opens (how many times it opened).

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

export function connect(url, handlers, { onStatus } = {}) {
  const conn = {
    ws: null, status: 'connecting', opens: 0, attempt: 0, closedByPage: false, timer: null,
    lastClose: null,
    send(msg) {
      if (!conn.ws || conn.ws.readyState !== WebSocket.OPEN) return false;
      conn.ws.send(JSON.stringify(msg));
      return true;
    },
    close() {
      conn.closedByPage = true;
      clearTimeout(conn.timer);
      if (conn.ws) conn.ws.close(1000);
      setStatus('closed');
    },
  };

  function setStatus(status, info) {
    conn.status = status;
    if (onStatus) onStatus(status, info);
  }

  function dispatch(msg) {
    const all = handlers['*'];
    if (all) all(msg);
    const h = handlers[msg.type];
    if (h) {
      Promise.resolve().then(() => h(msg)).catch((e) => {
        console.error(`handler ${msg.type}:`, e);
        if (handlers.exception) handlers.exception(e, msg);
      });
    }
  }

  function open() {
    const ws = new WebSocket(url, 'madoguchi.v1');
    conn.ws = ws;
    ws.addEventListener('open', () => {
      conn.opens++;
      conn.attempt = 0;
      setStatus('open');
    });
    ws.addEventListener('message', (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { console.error('not JSON:', ev.data); return; }
      if (msg && typeof msg === 'object') dispatch(msg);
    });
    ws.addEventListener('close', (ev) => {
      if (ws !== conn.ws) return;
      conn.lastClose = { code: ev.code, reason: ev.reason };
      if (conn.closedByPage) return;
      const refused = ev.code === 1008 || ev.code === 1009 || (ev.code >= 4000 && ev.code < 5000);
      if (refused) { setStatus('closed', conn.lastClose); return; }
      const base = BACKOFF_MS[Math.min(conn.attempt, BACKOFF_MS.length - 1)];
      const delay = Math.round(base * (0.8 + Math.random() * 0.4));
      conn.attempt++;
      setStatus('reconnecting', { ...conn.lastClose, delay, attempt: conn.attempt });
      conn.timer = setTimeout(open, delay);
    });
  }

  open();
  return conn;
}
