// Auditor console (docs/protocol.md, "Auditor API"): chain status, the
// session list with JST day filters, the case view, evidence after a reason,
// and the export.  The municipality an auditor may see is enforced by the
// API; this page only shows what it gets.
import { api, el, logout } from './api.js';

const $ = (id) => document.getElementById(id);
const PAGE = 50;
let offset = 0;
let lastQuery = new URLSearchParams();
let current = null; // the open case
const procedureNames = {};

// ---- Japanese names ----

export const EVENT_NAMES = {
  login: 'ログイン', login_failed: 'ログイン失敗', logout: 'ログアウト',
  staff_refused: '職員接続の拒否', device_refused: '端末接続の拒否',
  request: '受付 (端末からの依頼)', request_refused: '依頼の拒否',
  assigned: '確認者の割当', accept_refused: '受諾の拒否',
  session_connecting: '接続開始', leg_connected: '映像接続', session_live: '通話開始',
  leg_disconnected: '接続断', leg_rejoined: '再接続', leg_media_lost: '映像の途絶',
  leg_media_restored: '映像の回復', leg_failed: '映像の失敗', offer_refused: '接続条件の拒否',
  quality_warning: '品質低下', quality_ok: '品質回復',
  chat: 'チャット', chat_failed: 'チャット保存失敗', datachannel_refused: 'データチャネル拒否',
  still: '静止画の要求', file: 'ファイル・静止画の受領', file_refused: 'ファイルの拒否',
  outcome: '結果の記録', session_ended: '終了',
  consent: '録画への同意', record_start: '録画開始', record_stop: '録画停止',
  audit_viewed: '監査ログの閲覧', case_viewed: 'セッション詳細の閲覧',
  evidence_viewed: '証拠の閲覧', audit_exported: '監査ログのエクスポート',
  registry_change: '登録情報の変更', registry_refused: '登録情報の拒否',
  procedure_enabled: '手続の利用開始', staff_added: '職員の追加',
  device_registered: '端末の登録', device_status: '端末の状態変更',
  gateway_started: 'ゲートウェイ起動', gateway_stopped: 'ゲートウェイ停止',
  retention_purge: '保存期間経過による削除', recording_viewed: '録画の閲覧',
  consent_asked: '録画同意の確認', consent_given: '録画への同意', consent_refused: '録画への不同意',
  record_refused: '録画の拒否', recording_stored: '録画の保存', recording_failed: '録画の失敗',
  recording_purged: '録画の削除 (保存期間経過)', recording_recover_failed: '録画の復旧失敗',
  note_viewed: '結果メモの閲覧', outcome_refused: '結果の拒否',
};
// Recording states (docs/protocol.md, "Recordings for auditors").
const REC_STATES = {
  recording: '録画中', complete: '完了', cut: '中断 (cut)', purged: '保存期間経過により削除済み',
};
const OUTCOMES = { verified: '本人確認済み', not_verified: '確認できず', aborted: '中断', none: '結果なし' };
const REASONS = {
  outcome: '結果の記録', hangup: '切断', network: '通信断', cancelled: '取消',
  queue_timeout: '待ち時間切れ', connect_timeout: '接続時間切れ', media: '映像・音声の失敗',
  shutdown: 'ゲートウェイ停止',
};
const STATES = { requested: '受付待ち', assigned: '割当済み', connecting: '接続中', live: '通話中', ended: '終了' };
const LEGS = { tablet: '郵便局 (端末)', verifier: '確認者' };
const KINDS = { still: '静止画', file: 'ファイル' };
const ERRORS = {
  forbidden: 'この操作の権限がありません。', not_found: '見つかりません。',
  reason_required: '閲覧理由を入力してください (500文字以内)。',
  not_authenticated: 'ログインしてください。', login_expired: 'ログインの有効期限が切れました。',
  evidence_key_unavailable: '証拠の鍵がありません (保存期間経過により削除済みの可能性)。',
  evidence_corrupt: '証拠の検証に失敗しました (改ざんまたは欠損)。',
  recording_unknown: 'この録画は見つかりません。',
  recording_purged: 'この録画は保存期間経過により削除済みです。',
  rate_limited: '再生中の録画が多すぎます。しばらくしてから再度お試しください。',
};
const message = (e) => ERRORS[e.code] || `${e.message} (${e.code || e.status})`;

// ---- formatting (JST) ----

const jst = new Intl.DateTimeFormat('ja-JP', {
  timeZone: 'Asia/Tokyo', year: 'numeric', month: '2-digit', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
});
export const fmtTime = (ms) => (ms ? jst.format(new Date(ms)) : '—');
const fmtSize = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB`
  : n >= 1024 ? `${(n / 1024).toFixed(1)} KB` : `${n} B`);
const fmtDuration = (ms) => {
  if (ms == null || ms < 0) return '—';
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}分${s % 60}秒` : `${s}秒`;
};
const todayJst = () => new Intl.DateTimeFormat('sv-SE', { timeZone: 'Asia/Tokyo' }).format(new Date());

// Detail fields worth a column, in Japanese.
function describeDetail(d) {
  if (!d || typeof d !== 'object') return '';
  const parts = [];
  const add = (label, v) => { if (v !== undefined && v !== null && v !== '') parts.push(`${label}: ${v}`); };
  add('手続', d.procedure && (procedureNames[d.procedure] || d.procedure));
  add('結果', d.result && (OUTCOMES[d.result] || d.result));
  add('理由', d.reason && (REASONS[d.reason] || d.reason));
  add('結果', d.outcome && (OUTCOMES[d.outcome] || d.outcome));
  add('側', d.leg && (LEGS[d.leg] || d.leg));
  add('種別', d.kind && (KINDS[d.kind] || d.kind));
  add('ID', d.id);
  add('形式', d.mime);
  add('サイズ', d.size != null ? fmtSize(d.size) : undefined);
  add('解像度', d.width ? `${d.width}×${d.height}` : undefined);
  add('SHA-256', d.sha256 && `${d.sha256.slice(0, 16)}…`);
  add('確認者', d.verifier);
  add('方式', d.mode);
  add('コード', d.code);
  add('品質', Array.isArray(d.codes) ? d.codes.join(', ') : undefined);
  add('ファイル', d.file);
  add('条件', d.query);
  add('件数', d.entries);
  add('録画', d.recording);
  add('状態', d.state && (REC_STATES[d.state] || d.state));
  add('長さ', d.duration_ms != null ? fmtDuration(d.duration_ms) : undefined);
  add('理由のSHA-256', d.reason_sha256 && `${d.reason_sha256.slice(0, 16)}…`);
  return parts.join(' / ');
}

// ---- chain status ----

async function verify() {
  $('chain').className = 'muted';
  $('chain').textContent = '検証中…';
  try {
    const r = await api('GET', '/api/audit/verify');
    const counts = `記録 ${r.entries} 件 / 署名済みチェックポイント ${r.checkpoints} 件 / 最終チェックポイント #${r.last_checkpoint} (${fmtTime(r.last_checkpoint_at)})`;
    if (r.ok) {
      $('chain').className = 'ok';
      $('chain').textContent = `改ざんは検出されませんでした。${counts}`;
    } else {
      $('chain').className = 'error';
      $('chain').textContent = `改ざんを検出しました: 記録 #${r.bad_seq} — ${r.reason}。それまでの ${counts}`;
    }
  } catch (e) {
    $('chain').className = 'error';
    $('chain').textContent = message(e);
  }
}

// ---- list ----

function filterQuery() {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData($('search'))) if (v) q.set(k, v);
  return q;
}

async function search(ev, keepOffset) {
  if (ev) ev.preventDefault();
  if (!keepOffset) offset = 0;
  $('error').textContent = '';
  lastQuery = filterQuery();
  const q = new URLSearchParams(lastQuery);
  q.set('limit', PAGE);
  q.set('offset', offset);
  try {
    const r = await api('GET', `/api/audit/sessions?${q}`);
    const c = r.counts || {};
    $('counts').textContent = `該当 ${r.total} 件 — ` + Object.keys(OUTCOMES)
      .map((k) => `${OUTCOMES[k]} ${c[k] || 0} 件`).join(' / ');
    $('sessions').replaceChildren(...r.sessions.map((s) => el('tr', {},
      el('td', { class: 'time' }, fmtTime(s.requested_at)),
      el('td', {}, s.post_office_name || s.post_office),
      el('td', {}, s.procedure_name || s.procedure),
      el('td', {}, s.verifier || '—'),
      el('td', { class: `outcome ${s.outcome || 'none'}` }, OUTCOMES[s.outcome || 'none']),
      el('td', {}, s.reason ? (REASONS[s.reason] || s.reason) : STATES[s.state] || s.state),
      el('td', {}, el('button', {
        class: 'secondary small', onclick: () => openCase(s.id),
        'aria-label': `${fmtTime(s.requested_at)} ${s.post_office_name || s.post_office} の詳細を開く`,
      }, '詳細')))));
    if (!r.sessions.length) {
      $('sessions').replaceChildren(el('tr', {}, el('td', { colspan: 7, class: 'muted' }, '該当するセッションはありません。')));
    }
    const end = Math.min(offset + r.sessions.length, r.total);
    $('page').textContent = r.total ? `${offset + 1}–${end} 件目 / ${r.total} 件` : '';
    $('prev').disabled = offset === 0;
    $('next').disabled = end >= r.total;
  } catch (e) {
    $('error').textContent = message(e);
  }
}

async function exportFilter() {
  $('error').textContent = '';
  const q = new URLSearchParams();
  // The export covers audit entries: period, post office (and the account's municipality).
  for (const k of ['from', 'until', 'post_office']) if (lastQuery.get(k)) q.set(k, lastQuery.get(k));
  try {
    const res = await fetch(`/api/audit/export?${q}`, { credentials: 'same-origin' });
    if (!res.ok) {
      const d = await res.json().catch(() => ({}));
      throw Object.assign(new Error(d.message || res.statusText), { code: d.code, status: res.status });
    }
    const blob = await res.blob();
    const name = (res.headers.get('Content-Disposition') || '').match(/filename="([^"]+)"/);
    const a = el('a', { href: URL.createObjectURL(blob), download: name ? name[1] : 'madoguchi-audit.jsonl' });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  } catch (e) {
    $('error').textContent = message(e);
  }
}

// ---- case ----

function dl(pairs) {
  return pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v ?? '—')]);
}

async function openCase(id) {
  $('error').textContent = '';
  let c;
  try {
    c = await api('GET', `/api/audit/case?session=${encodeURIComponent(id)}`);
  } catch (e) {
    $('error').textContent = message(e);
    return;
  }
  current = c;
  const s = c.session;
  $('summary').replaceChildren(...dl([
    ['セッション', el('span', { class: 'mono' }, s.id)],
    ['自治体', `${s.municipality_name || ''} (${s.municipality})`],
    ['郵便局', `${s.post_office_name || s.post_office} (${s.post_office_kind === 'simplified' ? '簡易局' : '直営局'})`],
    ['端末', s.device],
    ['手続', s.procedure_name || s.procedure],
    ['確認者', s.verifier || '—'],
    ['状態', STATES[s.state] || s.state],
    ['結果', OUTCOMES[s.outcome || 'none']],
    ['終了理由', s.reason ? (REASONS[s.reason] || s.reason) : '—'],
    ...(s.has_note ? [['確認者のメモ', el('span', {},
      el('span', { class: 'muted' }, '個人情報を含むため封印されています。 '),
      el('button', {
        class: 'secondary small', 'aria-label': '確認者のメモを開く',
        onclick: () => askReason({ type: 'note', label: '確認者のメモ (結果の理由)' }),
      }, 'メモを開く'))]] : []),
    ['受付', fmtTime(s.requested_at)],
    ['割当', `${fmtTime(s.assigned_at)} (待ち ${fmtDuration(s.assigned_at && s.assigned_at - s.requested_at)})`],
    ['通話開始', fmtTime(s.live_at)],
    ['終了', `${fmtTime(s.ended_at)} (全体 ${fmtDuration(s.ended_at && s.ended_at - s.requested_at)})`],
  ]));
  $('timeline').replaceChildren(...c.timeline.map((e) => el('tr', {},
    el('td', { class: 'time' }, fmtTime(e.ts)),
    el('td', {}, EVENT_NAMES[e.event] || e.event),
    el('td', { class: 'mono' }, e.actor),
    el('td', {}, describeDetail(e.detail)),
    el('td', { class: 'muted' }, e.seq))));
  $('evidence').replaceChildren(...c.evidence.map((f) => el('tr', {},
    el('td', {}, KINDS[f.kind] || f.kind),
    el('td', {}, LEGS[f.leg] || f.leg),
    el('td', {}, f.mime),
    el('td', {}, fmtSize(f.size)),
    el('td', {}, f.width ? `${f.width}×${f.height}` : '—'),
    el('td', { class: 'mono hash' }, f.sha256),
    el('td', {}, el('button', {
      class: 'secondary small',
      onclick: () => askReason({ type: 'evidence', file: f.file, label: `${KINDS[f.kind] || f.kind} ${f.file}`, meta: f }),
      'aria-label': `${KINDS[f.kind] || f.kind} ${f.file} を開く`,
    }, '開く')))));
  $('no-evidence').classList.toggle('hidden', c.evidence.length > 0);
  const chat = c.chat || {};
  $('chat').replaceChildren(
    `メッセージ ${chat.messages || 0} 件`,
    chat.sha256 ? el('span', { class: 'mono hash' }, ` 記録のSHA-256: ${chat.sha256} `) : '',
    chat.messages ? el('button', {
      class: 'secondary small',
      onclick: () => askReason({ type: 'evidence', file: 'transcript', label: 'チャットの記録' }),
      'aria-label': 'チャットの記録を開く',
    }, '記録を開く') : '');
  showRecordings(c.recordings || []);
  $('case').classList.remove('hidden');
  $('case').scrollIntoView();
  $('case-h').focus?.();
}

// ---- recordings ----

// VP8 recordings are Matroska that browsers play as WebM.  H.264 in
// Matroska plays only where the browser says it can (else, or when the
// <video> fails, the page points to `madoguchi recording export`, an MP4).
const MIME = { VP8: 'video/webm; codecs="vp8"', H264: 'video/x-matroska; codecs="avc1.42E01E"' };
const playable = (r) => r.codec === 'VP8'
  || (!!MIME[r.codec] && document.createElement('video').canPlayType(MIME[r.codec]) !== '');
const exportHint = (r) => el('p', { class: 'notice', role: 'note' },
  `この録画 (${r.codec || '形式不明'}) はブラウザでは再生できません。サーバーで `,
  el('code', {}, `madoguchi recording export ${r.recording} --out ファイル名 --reason 理由`),
  ' を実行して書き出し、動画プレーヤーで再生してください (書き出しも監査ログに記録されます)。');

function showRecordings(list) {
  stopPlayer();
  $('recordings').replaceChildren(...list.map((r) => {
    const label = `${fmtTime(r.started_at)} の録画`;
    let action;
    if (r.state === 'purged') action = el('span', { class: 'muted' }, REC_STATES.purged);
    else if (r.state === 'recording') action = el('span', { class: 'muted' }, '録画中のため再生できません');
    else if (!playable(r)) action = el('span', { class: 'muted' }, '書き出して再生');
    else {
      action = el('button', {
        class: 'secondary small', 'aria-label': `${label}を再生`,
        onclick: () => askReason({ type: 'recording', recording: r, label }),
      }, '再生');
    }
    return el('tr', { 'data-recording': r.recording },
      el('td', { class: `rec-state ${r.state}` }, REC_STATES[r.state] || r.state),
      el('td', { class: 'time' }, fmtTime(r.started_at)),
      el('td', {}, fmtDuration(r.duration_ms)),
      el('td', {}, r.codec || '—'),
      el('td', {}, r.bytes != null && r.state !== 'purged' ? fmtSize(r.bytes) : '—'),
      el('td', { class: 'mono hash' }, r.sha256 || '—'),
      el('td', {}, action));
  }));
  $('no-recordings').classList.toggle('hidden', list.length > 0);
  const notPlayable = list.filter((r) => r.state !== 'purged' && r.state !== 'recording' && !playable(r));
  $('player').replaceChildren(...notPlayable.map(exportHint));
}

function stopPlayer() {
  const v = $('player').querySelector('video');
  if (v) { v.pause(); v.removeAttribute('src'); v.load(); }
  $('player').replaceChildren();
}

async function playRecording(r, reason) {
  const res = await fetch('/api/recordings/view', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ recording: r.recording, reason }),
  });
  const d = await res.json().catch(() => ({}));
  if (!res.ok) return message({ code: d.code, message: d.message, status: res.status });
  stopPlayer();
  const video = el('video', {
    controls: '', preload: 'metadata', 'aria-label': `録画 ${r.recording}`, class: 'recording',
  });
  video.addEventListener('error', () => {
    $('player').replaceChildren(exportHint(r));
  }, { once: true });
  video.src = d.url; // the ticket URL: Range requests with the cookie
  $('player').replaceChildren(
    el('p', { class: 'mono' }, `${fmtTime(r.started_at)} / ${REC_STATES[d.state] || d.state}`
      + ` / ${fmtDuration(d.duration_ms)} / SHA-256 ${r.sha256 || '—'}`),
    d.truncated ? el('p', { class: 'notice' }, '録画は途中で中断されています (最後まで保存されていません)。') : '',
    video);
  // Started from the 再生 press; a browser that refuses sound without a
  // fresh gesture plays it muted (the controls unmute), else waits for them.
  video.play().catch((e) => {
    if (e.name !== 'NotAllowedError') return;
    video.muted = true;
    video.play().catch(() => {});
  });
  return null;
}

// ---- evidence, notes and recordings after a reason ----

let pending = null;

function askReason(what) {
  pending = what;
  $('reason-what').textContent = `対象: ${what.label}`;
  $('reason-error').textContent = '';
  $('reason-text').value = '';
  // POST /api/recordings/view takes up to 256 characters, the others 500.
  $('reason-text').maxLength = what.type === 'recording' ? 256 : 500;
  $('reason-dialog').showModal();
  $('reason-text').focus();
}

async function openNote(reason) {
  let d;
  try {
    d = await api('POST', '/api/audit/note', { session: current.session.id, reason });
  } catch (e) {
    return message(e);
  }
  $('viewer-body').replaceChildren(el('p', { class: 'note' }, d.note));
  $('viewer-meta').textContent = `確認者のメモ (結果: ${OUTCOMES[d.outcome || 'none']})`;
  $('viewer').showModal();
  return null;
}

async function submitReason(ev) {
  ev.preventDefault();
  const reason = $('reason-text').value.trim();
  if (!reason) { $('reason-error').textContent = ERRORS.reason_required; return; }
  const what = pending;
  if (what.type === 'evidence') { await openEvidence(what, reason); return; }
  const failed = what.type === 'note' ? await openNote(reason) : await playRecording(what.recording, reason);
  if (failed) { $('reason-error').textContent = failed; return; }
  if ($('reason-dialog').open) $('reason-dialog').close();
  if (what.type === 'recording') $('player').scrollIntoView({ block: 'nearest' });
}

async function openEvidence({ file, label, meta }, reason) {
  const res = await fetch('/api/audit/evidence', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ session: current.session.id, file, reason }),
  });
  if (!res.ok) {
    const d = await res.json().catch(() => ({}));
    $('reason-error').textContent = message({ code: d.code, message: d.message, status: res.status });
    return;
  }
  $('reason-dialog').close();
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const body = $('viewer-body');
  if (blob.type.startsWith('image/')) {
    body.replaceChildren(el('img', { src: url, alt: label, class: 'evidence' }));
  } else if (file === 'transcript') {
    const lines = (await blob.text()).split('\n').filter(Boolean).map((l) => JSON.parse(l));
    body.replaceChildren(el('ol', { class: 'transcript' }, ...lines.map((m) =>
      el('li', {}, el('span', { class: 'muted' }, `${fmtTime(m.ts)} ${LEGS[m.leg] || m.leg}: `), m.text))));
  } else {
    body.replaceChildren(el('a', { href: url, download: file }, `${label} を保存`));
  }
  $('viewer-meta').textContent = meta ? `${label} / SHA-256 ${meta.sha256}` : label;
  $('viewer').showModal();
  $('viewer').addEventListener('close', () => URL.revokeObjectURL(url), { once: true });
}

// ---- start ----

function fill(select, items) {
  select.append(...items.map(([v, t]) => el('option', { value: v }, t)));
}

async function main() {
  let me;
  try {
    me = await api('GET', '/api/me');
  } catch { location.href = '/'; return; }
  if (me.role !== 'auditor' && me.role !== 'admin') { location.href = '/'; return; }
  $('who').textContent = `${me.username} (${me.role === 'admin' ? '管理者' : '監査担当'}${me.municipality ? ` / 自治体 ${me.municipality}` : ''})`;
  $('logout').addEventListener('click', logout);
  $('verify').addEventListener('click', verify);
  $('search').addEventListener('submit', search);
  $('export').addEventListener('click', exportFilter);
  $('prev').addEventListener('click', () => { offset = Math.max(0, offset - PAGE); search(null, true); });
  $('next').addEventListener('click', () => { offset += PAGE; search(null, true); });
  $('close-case').addEventListener('click', () => {
    stopPlayer();
    $('case').classList.add('hidden');
    current = null;
  });
  $('reason-form').addEventListener('submit', submitReason);
  $('reason-cancel').addEventListener('click', () => $('reason-dialog').close());
  $('viewer-close').addEventListener('click', () => $('viewer').close());
  // The note is not kept in the page once its dialog closes.
  $('viewer').addEventListener('close', () => $('viewer-body').replaceChildren());
  $('until').max = todayJst();
  try {
    const o = await api('GET', '/api/audit/options');
    fill($('post_office'), o.post_offices.map((p) => [p.id, p.name]));
    fill($('verifier'), o.verifiers.map((v) => [v, v]));
    fill($('procedure'), o.procedures.map((p) => [p.id, p.name]));
    for (const p of o.procedures) procedureNames[p.id] = p.name;
  } catch (e) {
    $('error').textContent = message(e);
  }
  verify();
  search();
}

main();
