// Auditor view: chain status and the audit trail, filtered (docs/protocol.md).
import { api, el, logout } from './api.js';

const $ = (id) => document.getElementById(id);

async function verify() {
  $('chain').textContent = '確認中…';
  const r = await api('GET', '/api/audit/verify');
  $('chain').className = r.ok ? 'ok' : 'error';
  $('chain').textContent = r.ok ? '監査ログは改ざんされていません。' : `改ざんを検出: seq ${r.bad_seq} — ${r.reason}`;
}

async function search(ev) {
  if (ev) ev.preventDefault();
  $('error').textContent = '';
  const q = new URLSearchParams();
  for (const [k, v] of new FormData($('search'))) if (v) q.set(k, v);
  try {
    const r = await api('GET', `/api/audit?${q}`);
    $('entries').replaceChildren(...r.entries.map((e) => el('tr', {},
      el('td', {}, e.seq),
      el('td', {}, new Date(e.ts).toISOString()),
      el('td', {}, e.actor),
      el('td', {}, e.event),
      el('td', {}, [e.municipality, e.post_office].filter(Boolean).join(' / ')),
      el('td', { class: 'mono' }, e.session || ''),
      el('td', { class: 'mono' }, JSON.stringify(e.detail)))));
  } catch (e) {
    $('error').textContent = `${e.message} (${e.code})`;
  }
}

async function main() {
  try {
    const me = await api('GET', '/api/me');
    if (me.role !== 'auditor' && me.role !== 'admin') { location.href = '/'; return; }
    $('who').textContent = `${me.username} (${me.role})`;
  } catch { location.href = '/'; return; }
  $('logout').addEventListener('click', logout);
  $('verify').addEventListener('click', verify);
  $('search').addEventListener('submit', search);
  verify();
  search();
}

main();
