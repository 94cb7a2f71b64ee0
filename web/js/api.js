// Client side of docs/protocol.md for the staff pages: HTTP API calls and the
// staff WebSocket with a message-type dispatch table.

export async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    // The gateway takes a POST only as JSON (docs/protocol.md: login CSRF).
    headers: method === 'POST' ? { 'Content-Type': 'application/json' } : {},
    body: method === 'POST' ? JSON.stringify(body || {}) : undefined,
    credentials: 'same-origin',
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const err = new Error(data && data.message ? data.message : res.statusText);
    err.code = data && data.code;
    err.status = res.status;
    throw err;
  }
  return data;
}

// Opens the staff WebSocket; handlers maps message type -> function(msg).
export function connect(handlers, onClose) {
  const ws = new WebSocket(`wss://${location.host}/ws`, 'madoguchi.v1');
  ws.addEventListener('message', (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    const h = handlers[msg.type];
    if (h) h(msg);
  });
  ws.addEventListener('close', (ev) => onClose && onClose(ev));
  return {
    send(msg) { ws.send(JSON.stringify(msg)); },
    close() { ws.close(); },
  };
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'onclick') e.addEventListener('click', v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

export async function logout() {
  try { await api('POST', '/api/logout'); } finally { location.href = '/'; }
}
