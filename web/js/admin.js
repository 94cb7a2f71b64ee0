// Admin console (docs/protocol.md, "Admin API"): the registry, devices and
// staff.  Every change goes through the same server functions as the
// command line; the page shows their refusals in Japanese and, for the
// registry, the import's own report lines.
import { api, el, logout } from './api.js';

const $ = (id) => document.getElementById(id);
let registry = null;

const ERRORS = {
  forbidden: 'この操作の権限がありません。', not_found: '見つかりません。',
  post_office_simplified: '簡易郵便局は指定できません (Q&A Q11)。',
  council_resolution_required: 'この手続の指定には議会の議決が必要です (法第3条)。',
  designation_period_invalid: '指定期間が正しくありません。',
  procedure_unknown: '手続が正しくありません。',
  municipality_unknown: '自治体が登録されていません。',
  municipality_code_invalid: '団体コードまたは検査数字が正しくありません。',
  post_office_unknown: '郵便局が登録されていません。',
  device_revoked: 'この端末は失効済みです。',
  schema_invalid: '入力内容が不足しています。', bad_json: 'JSON として読めません。',
  file_exists: 'すでに存在します。', invalid_argument: '入力が正しくありません。',
  message_too_large: 'ファイルが大きすぎます。',
};
const message = (e) => `${ERRORS[e.code] || e.message} (${e.code || e.status})`;
const STATES = { in_force: '指定期間中', expired: '期間終了', not_yet: '開始前', invalid: '不正' };
const DEVICE_STATES = { active: '有効', disabled: '無効', revoked: '失効' };
const ROLES = { verifier: '確認者', auditor: '監査担当', admin: '管理者' };
const RECORDING = { off: 'しない', optional: '任意', required: '必須' };
const jst = new Intl.DateTimeFormat('ja-JP', {
  timeZone: 'Asia/Tokyo', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit',
});
const fmtTime = (ms) => (ms ? jst.format(new Date(ms)) : '—');
const officeName = (id) => registry?.post_offices.find((p) => p.id === id)?.name || id;
const procName = (id) => registry?.procedures.find((p) => p.id === id)?.name || id;

function showError(e) { $('error').textContent = e ? message(e) : ''; }

async function act(fn) {
  showError(null);
  try { return await fn(); } catch (e) { showError(e); return null; }
}

// ---- tabs ----

function selectTab(name) {
  for (const t of ['registry', 'devices', 'staff']) {
    $(`tab-${t}`).setAttribute('aria-selected', String(t === name));
    $(t).classList.toggle('hidden', t !== name);
  }
  showError(null);
}

// ---- registry ----

async function loadRegistry() {
  registry = await api('GET', '/api/admin/registry');
  $('municipalities').replaceChildren(...registry.municipalities.map((m) => {
    const p = m.security_policy || {};
    return el('tr', {},
      el('td', {}, m.code), el('td', {}, `${m.prefecture || ''} ${m.name}`),
      el('td', {}, RECORDING[p.recording || 'off']), el('td', {}, `${p.retention_days ?? 365} 日`),
      el('td', {}, `${p.max_file_mb ?? 10} MB`), el('td', {}, p.assignment === 'random' ? '無作為' : '選択'),
      el('td', {}, p.min_tls || '1.3'),
      el('td', {}, el('button', { class: 'secondary small', onclick: () => editPolicy(m), 'aria-label': `${m.name} のポリシーを編集` }, '編集')));
  }));
  $('offices').replaceChildren(...registry.post_offices.map((o) => el('tr', {},
    el('td', { class: 'mono' }, o.id), el('td', {}, o.name),
    el('td', {}, o.kind === 'simplified' ? el('span', { class: 'badge bad' }, '簡易局') : '直営局'),
    el('td', {}, registry.municipalities.find((m) => m.code === o.municipality)?.name || o.municipality))));
  $('designations').replaceChildren(...registry.designations.map((d) => el('tr', {},
    el('td', {}, officeName(d.post_office)),
    el('td', { class: 'time' }, `${d.from} 〜 ${d.until}`),
    el('td', {}, el('span', { class: `badge ${d.state === 'in_force' ? 'good' : 'bad'}` }, STATES[d.state])),
    el('td', {}, d.procedures.map(procName).join('、')),
    el('td', {}, d.resolution_date ? `${d.resolution_date} ${d.resolution_number || ''}` : '— (契約のみ)'),
    el('td', {}, d.consultation_date || '—'))));
  $('procedures').replaceChildren(...registry.procedures.filter((p) => p.after_terminal_upgrade).map((p) => el('tr', {},
    el('td', {}, p.name),
    el('td', {}, `${p.designation === 'council' ? '議会の議決' : '契約'}${p.direct_only ? '・直営局のみ' : ''}`),
    el('td', {}, p.enabled ? `利用中 (${fmtTime(p.enabled.at)} ${p.enabled.by})` : el('span', { class: 'badge bad' }, '端末更改待ち')),
    el('td', {}, p.enabled ? '' : el('button', {
      class: 'small', 'aria-label': `${p.name} を端末更改済みとして利用開始`,
      onclick: () => act(async () => { await api('POST', '/api/admin/procedures/enable', { procedure: p.id }); await loadRegistry(); }),
    }, '利用開始')))));
  const keep = (select, options) => { const v = select.value; select.replaceChildren(...options); if (v) select.value = v; };
  keep($('d-office'), registry.post_offices.map((o) => el('option', { value: o.id }, `${o.name} (${o.kind === 'simplified' ? '簡易局' : '直営局'})`)));
  keep($('i-office'), registry.post_offices.map((o) => el('option', { value: o.id }, o.name)));
  $('s-municipality').replaceChildren(el('option', { value: '' }, 'なし'),
    ...registry.municipalities.map((m) => el('option', { value: m.code }, `${m.name} (${m.code})`)));
  // Rebuilt after every change; what the admin ticked stays ticked.
  const ticked = new Set([...document.querySelectorAll('input[name="d-proc"]:checked')].map((c) => c.value));
  $('d-procedures').replaceChildren(...registry.procedures.map((p) => {
    const box = el('input', { type: 'checkbox', class: 'check', name: 'd-proc', value: p.id });
    box.checked = ticked.has(p.id);
    return el('label', {}, box, ` ${p.name}`);
  }));
}

let editing = null;

function editPolicy(m) {
  editing = m;
  const p = m.security_policy || {};
  $('policy-h').textContent = `ポリシーの編集: ${m.name} (${m.code})`;
  $('p-recording').value = p.recording || 'off';
  $('p-retention').value = p.retention_days ?? 365;
  $('p-maxfile').value = p.max_file_mb ?? 10;
  $('p-chat').value = p.chat_max_bytes ?? 2000;
  $('p-assignment').value = p.assignment || 'pick';
  $('p-tls').value = p.min_tls || '1.3';
  $('p-devcert').checked = p.require_device_cert !== false;
  $('p-gcm').checked = !!p.require_srtp_gcm;
  const types = p.file_types || ['image/jpeg', 'image/png', 'application/pdf'];
  for (const c of document.querySelectorAll('input[name="p-type"]')) c.checked = types.includes(c.value);
  $('p-networks').value = (p.allowed_networks || []).join('\n');
  for (const q of document.querySelectorAll('[data-q]')) q.value = p.quality?.[q.dataset.q] ?? '';
  $('policy-form').classList.remove('hidden');
  $('p-recording').focus();
}

async function savePolicy(ev) {
  ev.preventDefault();
  const m = editing;
  const policy = { ...(m.security_policy || {}) };
  policy.recording = $('p-recording').value;
  policy.retention_days = Number($('p-retention').value);
  policy.max_file_mb = Number($('p-maxfile').value);
  policy.chat_max_bytes = Number($('p-chat').value);
  policy.assignment = $('p-assignment').value;
  policy.min_tls = $('p-tls').value;
  policy.require_device_cert = $('p-devcert').checked;
  policy.require_srtp_gcm = $('p-gcm').checked;
  policy.file_types = [...document.querySelectorAll('input[name="p-type"]:checked')].map((c) => c.value);
  const nets = $('p-networks').value.split('\n').map((s) => s.trim()).filter(Boolean);
  if (nets.length) policy.allowed_networks = nets; else delete policy.allowed_networks;
  const quality = {};
  for (const q of document.querySelectorAll('[data-q]')) if (q.value !== '') quality[q.dataset.q] = Number(q.value);
  if (Object.keys(quality).length) policy.quality = quality; else delete policy.quality;
  const entry = { code: m.code, name: m.name, security_policy: policy };
  if (m.prefecture) entry.prefecture = m.prefecture;
  if (await importDocument({ municipalities: [entry] })) $('policy-form').classList.add('hidden');
}

// The import's report, as the command line prints it, each refusal with
// its Japanese meaning.  Returns true when nothing was refused.
async function importDocument(document) {
  showError(null);
  const res = await fetch('/api/admin/registry/import', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ document }),
  });
  const r = await res.json().catch(() => ({}));
  if (!Array.isArray(r.report)) { showError({ code: r.code, message: r.message, status: res.status }); return false; }
  $('report').replaceChildren(...r.report.map((line) => {
    const m = line.match(/^refused \S+ \S+: ([a-z_]+): /);
    return el('li', { class: m ? 'error' : 'ok' },
      m && ERRORS[m[1]] ? el('strong', {}, `拒否: ${ERRORS[m[1]]} `) : '',
      el('code', {}, line));
  }));
  $('report-section').classList.remove('hidden');
  $('report-section').scrollIntoView({ block: 'nearest' });
  await loadRegistry();
  return r.ok;
}

async function addDesignation(ev) {
  ev.preventDefault();
  const office = registry.post_offices.find((o) => o.id === $('d-office').value);
  const d = {
    municipality: office.municipality, post_office: office.id,
    procedures: [...document.querySelectorAll('input[name="d-proc"]:checked')].map((c) => c.value),
    from: $('d-from').value, until: $('d-until').value,
  };
  if ($('d-res-date').value || $('d-res-number').value) {
    d.council_resolution = { date: $('d-res-date').value, number: $('d-res-number').value };
  }
  if ($('d-consult').value) d.japan_post_consultation = $('d-consult').value;
  await importDocument({ designations: [d] });
}

async function importFile(ev) {
  ev.preventDefault();
  const f = $('import-file').files[0];
  if (!f) return;
  let doc;
  try { doc = JSON.parse(await f.text()); } catch { showError({ code: 'bad_json', message: 'JSON' }); return; }
  await importDocument(doc);
}

// ---- devices ----

async function loadDevices() {
  const { devices } = await api('GET', '/api/admin/devices');
  const status = (d, s) => act(async () => {
    if (s === 'revoked' && !confirm(`${d.id} を失効させます。元に戻せません。よろしいですか。`)) return;
    await api('POST', '/api/admin/devices/status', { device: d.id, status: s });
    await loadDevices();
  });
  $('device-list').replaceChildren(...devices.map((d) => el('tr', {},
    el('td', { class: 'mono' }, d.id), el('td', {}, d.post_office_name || d.post_office),
    el('td', {}, el('span', { class: `badge ${d.status === 'active' ? 'good' : 'bad'}` }, DEVICE_STATES[d.status])),
    el('td', { class: 'mono hash' }, d.cert_serial || '—'), el('td', { class: 'time' }, fmtTime(d.created_at)),
    el('td', {}, ...(d.status === 'revoked' ? [] : [
      d.status === 'active'
        ? el('button', { class: 'secondary small', onclick: () => status(d, 'disabled'), 'aria-label': `${d.id} を無効化` }, '無効化')
        : el('button', { class: 'secondary small', onclick: () => status(d, 'active'), 'aria-label': `${d.id} を有効化` }, '有効化'),
      ' ',
      el('button', { class: 'danger small', onclick: () => status(d, 'revoked'), 'aria-label': `${d.id} を失効` }, '失効'),
    ])))));
}

async function issueDevice(ev) {
  ev.preventDefault();
  const r = await act(() => api('POST', '/api/admin/devices/issue', {
    device: $('i-device').value, post_office: $('i-office').value, p12_password: $('i-password').value,
  }));
  if (!r) return;
  const bytes = Uint8Array.from(atob(r.p12), (c) => c.charCodeAt(0));
  const a = el('a', { href: URL.createObjectURL(new Blob([bytes], { type: 'application/x-pkcs12' })), download: r.filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  $('issued').textContent = `${r.device} の証明書 (${r.filename}) をダウンロードしました。サーバーには保存されていないため、再ダウンロードはできません。`;
  $('issued').classList.remove('hidden');
  $('issue-form').reset();
  await loadDevices();
}

// ---- staff ----

function showTotp(r) {
  $('totp-user').textContent = r.username;
  $('totp-qr').src = `data:image/svg+xml;base64,${btoa(r.qr_svg)}`;
  $('totp-uri').value = r.otpauth;
  $('totp').classList.remove('hidden');
  $('totp').scrollIntoView({ block: 'nearest' });
}

async function loadStaff() {
  const { staff } = await api('GET', '/api/admin/staff');
  const action = (s, a) => act(async () => {
    const r = await api('POST', '/api/admin/staff/action', { username: s.username, action: a });
    if (r.otpauth) showTotp(r);
    await loadStaff();
  });
  $('staff-list').replaceChildren(...staff.map((s) => el('tr', {},
    el('td', {}, s.username), el('td', {}, ROLES[s.role] || s.role),
    el('td', {}, s.municipality || '—'),
    el('td', {}, s.disabled ? el('span', { class: 'badge bad' }, '無効')
      : s.locked ? el('span', { class: 'badge bad' }, 'ロック中') : el('span', { class: 'badge good' }, '有効')),
    el('td', {},
      el('button', { class: 'secondary small', onclick: () => action(s, 'reset_totp'), 'aria-label': `${s.username} のワンタイムコードを再発行` }, 'コード再発行'), ' ',
      el('button', { class: 'secondary small', onclick: () => action(s, 'unlock'), 'aria-label': `${s.username} のロックを解除` }, 'ロック解除'), ' ',
      s.disabled
        ? el('button', { class: 'secondary small', onclick: () => action(s, 'enable'), 'aria-label': `${s.username} を有効化` }, '有効化')
        : el('button', { class: 'danger small', onclick: () => action(s, 'disable'), 'aria-label': `${s.username} を無効化` }, '無効化')))));
}

async function addStaff(ev) {
  ev.preventDefault();
  const body = { username: $('s-username').value, role: $('s-role').value, password: $('s-password').value };
  if ($('s-municipality').value) body.municipality = $('s-municipality').value;
  const r = await act(() => api('POST', '/api/admin/staff/add', body));
  if (!r) return;
  showTotp(r);
  $('staff-form').reset();
  await loadStaff();
}

// ---- start ----

async function main() {
  let me;
  try { me = await api('GET', '/api/me'); } catch { location.href = '/'; return; }
  if (me.role !== 'admin') { location.href = '/'; return; }
  $('who').textContent = `${me.username} (管理者)`;
  $('logout').addEventListener('click', logout);
  for (const t of ['registry', 'devices', 'staff']) $(`tab-${t}`).addEventListener('click', () => selectTab(t));
  $('policy-form').addEventListener('submit', savePolicy);
  $('policy-cancel').addEventListener('click', () => $('policy-form').classList.add('hidden'));
  $('designation-form').addEventListener('submit', addDesignation);
  $('import-form').addEventListener('submit', importFile);
  $('issue-form').addEventListener('submit', issueDevice);
  $('staff-form').addEventListener('submit', addStaff);
  $('totp-close').addEventListener('click', () => {
    $('totp').classList.add('hidden');
    $('totp-uri').value = '';
    $('totp-qr').removeAttribute('src');
  });
  await act(async () => { await loadRegistry(); await loadDevices(); await loadStaff(); });
}

main();
