// Verifier console: live queue, accept, outcome, hangup (docs/protocol.md).
import { api, connect, el, logout } from './api.js';

const $ = (id) => document.getElementById(id);
let current = null; // the session being verified
let conn;

function showError(msg) { $('error').textContent = msg ? `${msg.message} (${msg.code})` : ''; }

function renderQueue(entries) {
  const body = $('queue');
  body.replaceChildren(...entries.map((e) => el('tr', {},
    el('td', {}, e.post_office),
    el('td', {}, e.procedure_ja || e.procedure),
    el('td', {}, `${e.waiting_seconds} 秒`),
    el('td', {}, el('button', {
      onclick: () => conn.send({ type: 'accept', session: e.session, id: `accept-${e.session}` }),
      disabled: current ? '' : null,
    }, '受付')))));
  for (const b of body.querySelectorAll('button')) b.disabled = !!current;
  $('queue-empty').classList.toggle('hidden', entries.length > 0);
}

function showSession(s) {
  current = s;
  $('session').classList.toggle('hidden', !s);
  if (!s) return;
  $('session-id').textContent = s.session;
  $('session-office').textContent = s.post_office;
  $('session-procedure').textContent = s.procedure;
}

const handlers = {
  hello: (m) => { $('who').textContent = `${m.username} (${m.municipality})`; },
  queue: (m) => renderQueue(m.entries),
  assigned: (m) => { showError(null); showSession(m); },
  state: (m) => { if (current && m.session === current.session) $('session-state').textContent = m.state; },
  ended: (m) => { if (current && m.session === current.session) showSession(null); },
  error: (m) => showError(m),
};

async function main() {
  try {
    const me = await api('GET', '/api/me');
    if (me.role !== 'verifier') { location.href = '/'; return; }
  } catch { location.href = '/'; return; }
  conn = connect(handlers, () => showError({ message: '接続が切れました。再読み込みしてください。', code: 'closed' }));
  $('logout').addEventListener('click', logout);
  $('record-outcome').addEventListener('click', () => {
    const msg = { type: 'outcome', session: current.session, result: $('result').value };
    const reason = $('reason').value.trim();
    if (reason) msg.reason = reason;
    conn.send(msg);
  });
  $('hangup').addEventListener('click', () => conn.send({ type: 'hangup', session: current.session }));
}

main();
