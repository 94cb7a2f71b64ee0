// Verifier console (/verifier.html, after login): the municipality's queue
// with post-office names and ticking waits (sound and title notice,
// mutable), accept, the call (applicant video with zoom and full screen,
// chat, files both ways, still requests with a gallery, quality panel with
// the policy's warnings, recording control), and the outcome with a required
// reason and a confirmation. A reload or network drop resumes the same
// session (the gateway's rejoin). Built on the client library in /js/lib/.
import { api, logout } from './api.js';
import { attach, bytesOfFile, expose, md, readPicked } from './lib/channels.js';
import { ENDED_REASONS, OUTCOMES, errorText } from './lib/errors.js';
import { Leg, connect, exposeState, mdTest, params, resetSession, supervise } from './lib/leg.js';
import { chatView, jstTime as jst, transferRow as row } from './lib/callui.js';

const $ = (id) => document.getElementById(id);
exposeState();
expose('verifier');
mdTest.role = 'verifier';
mdTest.quality = {};
mdTest.stillMessages = [];

const con = { queue: [], queueAt: 0, known: new Set(), notify: true, current: null, baseTitle: document.title };
window.mdConsole = con;
let conn;

const two = (n) => String(n).padStart(2, '0');
const mmss = (s) => `${Math.floor(s / 60)}分${two(Math.floor(s % 60))}秒`;

function banner(text) {
  $('banner').textContent = text || '';
  $('banner').classList.toggle('hidden', !text);
}

// ---- queue

function renderQueue() {
  const now = Date.now();
  const body = $('queue');
  const rows = con.queue.map((e) => {
    const tr = document.createElement('tr');
    const wait = e.waiting_seconds + (now - con.queueAt) / 1000;
    tr.className = wait > 300 ? 'long' : '';
    const office = document.createElement('td');
    office.textContent = e.post_office_name || e.post_office;
    const proc = document.createElement('td');
    proc.textContent = e.procedure_ja || e.procedure;
    const w = document.createElement('td');
    w.className = 'wait';
    w.textContent = mmss(wait);
    const act = document.createElement('td');
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = '受け付ける';
    b.setAttribute('aria-label', `${e.post_office_name || e.post_office}の申請を受け付ける`);
    b.disabled = !!con.current;
    b.addEventListener('click', () => {
      b.disabled = true;
      conn.send({ type: 'accept', session: e.session, id: `accept-${e.session}` });
    });
    act.append(b);
    tr.append(office, proc, w, act);
    return tr;
  });
  body.replaceChildren(...rows);
  $('queue-empty').classList.toggle('hidden', con.queue.length > 0);
  $('queue-count').textContent = `${con.queue.length}件`;
}

function beep() {
  try {
    const ctx = new AudioContext();
    const o = ctx.createOscillator();
    const g = ctx.createGain();
    o.frequency.value = 880;
    g.gain.setValueAtTime(0.0001, ctx.currentTime);
    g.gain.exponentialRampToValueAtTime(0.2, ctx.currentTime + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.5);
    o.connect(g).connect(ctx.destination);
    o.start();
    o.stop(ctx.currentTime + 0.55);
    setTimeout(() => ctx.close(), 800);
  } catch {
    // no audio output: the title still says it
  }
}

function onQueue(m) {
  const fresh = m.entries.filter((e) => !con.known.has(e.session));
  for (const e of m.entries) con.known.add(e.session);
  con.queue = m.entries;
  con.queueAt = Date.now();
  mdTest.queue = m.entries;
  renderQueue();
  con.notices = (con.notices || 0) + (con.current ? 0 : fresh.length);
  if (fresh.length && !con.current && con.primed) {
    if (con.notify) beep();
    con.lastNotice = { at: Date.now(), sound: con.notify };
  }
  con.primed = true;
  updateTitle();
}

function updateTitle() {
  document.body.classList.toggle('in-call', !!con.current);
  const n = con.queue.length;
  document.title = n && !con.current ? `(${n}) 受付待ち — ${con.baseTitle}` : con.baseTitle;
}

// The waits tick in place (rows are not rebuilt, so focus and clicks stay).
setInterval(() => {
  const now = Date.now();
  $('queue').querySelectorAll('tr').forEach((tr, i) => {
    const e = con.queue[i];
    if (!e) return;
    const wait = e.waiting_seconds + (now - con.queueAt) / 1000;
    tr.querySelector('td.wait').textContent = mmss(wait);
    tr.className = wait > 300 ? 'long' : '';
  });
}, 1000);

$('notify-toggle').addEventListener('click', () => {
  con.notify = !con.notify;
  $('notify-toggle').setAttribute('aria-pressed', String(con.notify));
  $('notify-toggle').textContent = con.notify ? '通知音: 入' : '通知音: 切';
  localStorage.setItem('md-notify', con.notify ? '1' : '0');
});
if (localStorage.getItem('md-notify') === '0') $('notify-toggle').click();

// ---- the call

const STATE_JA = { assigned: '接続を準備中', connecting: '接続中', live: '通話中', ended: '終了' };

function startCall(m) {
  con.current = m;
  const same = mdTest.leg && mdTest.session === m.session && mdTest.leg.pc.signalingState !== 'closed';
  $('call').classList.remove('hidden');
  $('ended').classList.add('hidden');
  $('call-office').textContent = m.post_office_name || m.post_office;
  $('call-procedure').textContent = m.procedure_ja || m.procedure;
  $('call-state').textContent = STATE_JA[mdTest.state] || '';
  const rec = m.recording && m.recording !== 'off';
  $('record-button').classList.toggle('hidden', !rec);
  renderQueue();
  updateTitle();
  if (same) {
    const s = mdTest.leg.pc.iceConnectionState;
    if (s !== 'connected' && s !== 'completed') mdTest.leg.restartIce('rejoin').catch(() => {});
    return;
  }
  resetSession(m);
  banner(''); // e.g. an earlier accept's refusal
  $('gallery').replaceChildren();
  $('transfers').replaceChildren();
  $('chat-log').replaceChildren();
  $('quality-body').replaceChildren();
  $('quality-warnings').replaceChildren();
  $('outcome-form').reset();
  $('outcome-error').textContent = '';
  const leg = new Leg(conn, m.session, m.ice_servers);
  leg.onRemoteTrack = (track, stream) => { $('remote-video').srcObject = stream; };
  attach(leg.pc);
  supervise(leg, { onHealth: (h) => banner(h === 'connected' ? '' : '映像が途切れています。再接続しています…') });
  leg.start(params.get('codec')).then(() => {
    $('local-video').srcObject = leg.localStream;
  }).catch((e) => banner(`カメラとマイクを使えません(${e.name || e})。ブラウザーの設定で許可してください。`));
}

// zoom and full screen, for reading a card
function setZoom(z) {
  $('zoom').value = String(z);
  $('zoom').setAttribute('aria-valuetext', `${z}倍`);
  $('remote-video').style.transform = z > 1 ? `scale(${z})` : '';
}
$('zoom').addEventListener('input', () => setZoom(Number($('zoom').value)));
$('zoom-reset').addEventListener('click', () => setZoom(1));
$('remote-video').addEventListener('click', (ev) => {
  const r = ev.currentTarget.getBoundingClientRect();
  $('remote-video').style.setProperty('--ox', `${((ev.clientX - r.left) / r.width) * 100}%`);
  $('remote-video').style.setProperty('--oy', `${((ev.clientY - r.top) / r.height) * 100}%`);
  setZoom(Math.min(4, Number($('zoom').value) + 1));
});
$('fullscreen').addEventListener('click', () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else $('viewer').requestFullscreen().catch(() => {});
});
$('mute').addEventListener('click', () => {
  const muted = $('mute').getAttribute('aria-pressed') !== 'true';
  const leg = mdTest.leg;
  if (leg && leg.localStream) for (const t of leg.localStream.getAudioTracks()) t.enabled = !muted;
  $('mute').setAttribute('aria-pressed', String(muted));
  $('mute').textContent = muted ? 'マイクを入れる' : 'マイクを切る';
});
$('still-button').addEventListener('click', () => {
  if (con.current) conn.send({ type: 'still', session: con.current.session, id: `still-req-${Date.now()}` });
});
$('hangup').addEventListener('click', () => {
  if (con.current && confirm('通話を切断しますか? 結果は記録されません。'))
    conn.send({ type: 'hangup', session: con.current.session, id: 'hangup' });
});
$('record-button').addEventListener('click', () => {
  if (!con.current) return;
  const action = con.recording === 'on' || con.recording === 'asking' ? 'stop' : 'start';
  conn.send({ type: 'record', session: con.current.session, action, id: `record-${action}` });
});

function showRecording(state) {
  con.recording = state;
  const words = { asking: '録画の同意を確認中', consented: '同意済み(接続後に録画開始)', on: '● 録画中', stopped: '録画停止', refused: '録画の同意なし', failed: '録画失敗' };
  $('recording').textContent = words[state] || '';
  $('recording').classList.toggle('hidden', !words[state]);
  $('record-button').textContent = state === 'on' || state === 'asking' ? '録画を停止' : '録画を開始';
}

// quality panel
const Q_ROWS = [
  ['映像ビットレート', (s) => s.video && `${Math.round(s.video.kbps)} kbps`, ['video_bitrate_low']],
  ['フレームレート', (s) => s.video && s.video.fps !== undefined && `${s.video.fps.toFixed(1)} fps`, ['frame_rate_low']],
  ['解像度', (s) => s.video && s.video.width && `${s.video.width}×${s.video.height}`, ['resolution_low']],
  ['パケット損失', (s) => s.video && `${s.video.loss_pct.toFixed(1)} %`, ['loss_high']],
  ['ジッター', (s) => s.video && s.video.jitter_ms !== undefined && `${s.video.jitter_ms.toFixed(0)} ms`, ['jitter_high']],
  ['往復遅延 (RTT)', (s) => (s.rtt_ms !== null && s.rtt_ms !== undefined ? `${s.rtt_ms.toFixed(0)} ms` : '—'), ['rtt_high']],
  ['音声', (s) => s.audio && `${Math.round(s.audio.kbps)} kbps`, []],
];
const WARN_JA = { video_bitrate_low: '映像のビットレートが低下', frame_rate_low: 'フレームレートが低下', resolution_low: '解像度が不足',
                  loss_high: 'パケット損失が多い', jitter_high: 'ジッターが大きい', rtt_high: '遅延が大きい' };
const LEG_JA = { tablet: '郵便局', verifier: '自分' };

function renderQuality() {
  const legs = ['tablet', 'verifier'];
  $('quality-body').replaceChildren(...Q_ROWS.map(([name, fmt, codes]) => {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = name;
    tr.append(th);
    for (const leg of legs) {
      const td = document.createElement('td');
      const q = mdTest.quality[leg];
      td.textContent = (q && fmt(q)) || '—';
      const warned = (con.warnings && con.warnings[leg] || []).some((w) => codes.includes(w.code));
      if (warned) td.className = 'warn';
      tr.append(td);
    }
    return tr;
  }));
  const all = [];
  for (const leg of legs) for (const w of (con.warnings && con.warnings[leg]) || []) all.push([leg, w]);
  $('quality-warnings').replaceChildren(...all.map(([leg, w]) => {
    const li = document.createElement('li');
    const v = Number(w.value);
    li.textContent = `${LEG_JA[leg]}: ${WARN_JA[w.code] || w.code} (${Number.isInteger(v) ? v : v.toFixed(1)} / 基準 ${w.limit})`;
    return li;
  }));
}

// chat
chatView({ log: $('chat-log'), form: $('chat-form'), input: $('chat-input'), peer: '郵便局' });

// files and stills
function transferRow(t, dir) {
  return row($('transfers'), t, `${dir === 'out' ? '送信' : '受信'}: ${t.name} (${(t.size / 1024).toFixed(0)} KB)`);
}
window.addEventListener('md-progress', (ev) => {
  const { id, direction, bytes, size } = ev.detail;
  const t = direction === 'in' ? md.received.find((r) => r.id === id) : md.sent[id];
  if (!t || t.kind === 'still') return;
  const li = transferRow(t, direction === 'in' ? 'in' : 'out');
  li.querySelector('progress').value = bytes;
  li.querySelector('.state').textContent = ` ${Math.round((100 * bytes) / (size || 1))}%`;
});
window.addEventListener('md-file', (ev) => {
  const { kind, transfer: t } = ev.detail;
  const dir = kind === 'offered' || kind === 'settled' ? 'out' : 'in';
  if (t.kind === 'still') { if (kind === 'received' && t.state === 'verified') addStill(t); return; }
  const li = transferRow(t, dir);
  let text = { verified: '✓ 完了', refused: '拒否', error: '失敗', closed: '中断', receiving: '受信中',
               sending: '送信中', offered: '準備中', hashing: '準備中', done: '確認中' }[t.state] || t.state;
  if ((t.state === 'refused' || t.state === 'error') && t.code) text += `: ${errorText(t.code)}`;
  li.querySelector('.state').textContent = ` ${text}`;
  if (dir === 'in' && t.state === 'verified') {
    li.querySelector('progress').value = t.size;
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([bytesOfFile(t.id)], { type: t.mime }));
    a.download = t.name;
    a.textContent = ' 保存';
    li.append(a);
  }
});
$('file-input').addEventListener('change', async () => {
  const f = $('file-input').files[0];
  $('file-input').value = '';
  if (!f) return;
  const { bytes } = await readPicked(f);
  md.sendFile({ id: `v${Date.now().toString(36)}`, name: f.name, mime: f.type || 'application/octet-stream', kind: 'file', bytes });
});

function addStill(t) {
  const url = URL.createObjectURL(new Blob([bytesOfFile(t.id)], { type: t.mime }));
  const n = $('gallery').children.length + 1;
  const li = document.createElement('li');
  const b = document.createElement('button');
  b.type = 'button';
  b.setAttribute('aria-label', `写真${n}を拡大 (${t.width}×${t.height})`);
  const img = document.createElement('img');
  img.src = url;
  img.alt = `写真${n}`;
  const cap = document.createElement('span');
  cap.className = 'cap';
  cap.textContent = `写真${n} ${t.width}×${t.height} ${jst()}`;
  b.append(img, cap);
  b.addEventListener('click', () => {
    $('photo-title').textContent = `写真${n} (${t.width}×${t.height} ピクセル)`;
    $('photo-img').src = url;
    $('photo-img').alt = `写真${n} の原寸`;
    $('photo').classList.remove('hidden');
    $('photo-close').focus();
  });
  li.append(b);
  $('gallery').append(li);
  $('gallery-empty').classList.add('hidden');
}
$('photo-close').addEventListener('click', () => $('photo').classList.add('hidden'));

// outcome with a required reason and a confirmation
$('outcome-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = new FormData($('outcome-form'));
  const result = f.get('result');
  const reason = $('reason').value.trim();
  $('outcome-error').textContent = '';
  if (!result) { $('outcome-error').textContent = '結果を選んでください。'; return; }
  if (result !== 'verified' && !reason) {
    $('outcome-error').textContent = '「確認できなかった」「中止」のときは理由を入力してください。';
    $('reason').focus();
    return;
  }
  con.pending = { result, reason };
  $('confirm-text').textContent = `「${OUTCOMES[result]}」として記録し、セッションを終了します。${reason ? `理由: ${reason}` : ''}`;
  $('confirm').classList.remove('hidden');
  $('confirm-yes').focus();
});
$('confirm-no').addEventListener('click', () => { $('confirm').classList.add('hidden'); $('outcome-submit').focus(); });
$('confirm-yes').addEventListener('click', () => {
  $('confirm').classList.add('hidden');
  const { result, reason } = con.pending;
  const msg = { type: 'outcome', session: con.current.session, result, id: 'outcome' };
  if (reason) msg.reason = reason;
  conn.send(msg);
});
document.addEventListener('keydown', (ev) => {
  if (ev.key !== 'Escape') return;
  for (const id of ['confirm', 'photo']) $(id).classList.add('hidden');
});

// ended
function showEnded(m) {
  if (mdTest.leg) mdTest.leg.close();
  con.current = null;
  banner('');
  showRecording(null);
  $('call').classList.add('hidden');
  $('ended').classList.remove('hidden');
  $('ended-result').textContent = m.outcome ? `結果: ${OUTCOMES[m.outcome]}` : '結果: 記録なし';
  $('ended-reason').textContent = `終了の理由: ${ENDED_REASONS[m.reason] || m.reason}`;
  renderQueue();
  updateTitle();
  $('ended-close').focus();
}
$('ended-close').addEventListener('click', () => $('ended').classList.add('hidden'));

// ---- the gateway's messages

const handlers = {
  hello: (m) => { mdTest.hello = m; $('who').textContent = `${m.username}`; },
  queue: onQueue,
  assigned: startCall,
  state: (m) => { if (con.current && m.session === con.current.session) $('call-state').textContent = STATE_JA[m.state] || m.state; },
  answer: (m) => mdTest.leg && m.session === mdTest.session && mdTest.leg.onAnswer(m),
  candidate: (m) => mdTest.leg && m.session === mdTest.session && mdTest.leg.onCandidate(m),
  quality: (m) => {
    if (!con.current || m.session !== con.current.session) return;
    mdTest.quality[m.leg] = m.stats;
    con.warnings = con.warnings || {};
    con.warnings[m.leg] = m.warnings || [];
    renderQuality();
  },
  still: (m) => { mdTest.stillMessages.push(m); },
  recording: (m) => { if (con.current && m.session === con.current.session) showRecording(m.state); },
  ended: (m) => { if (mdTest.session === m.session) showEnded(m); },
  error: (m) => {
    const text = errorText(m.code);
    con.lastError = { code: m.code, text };
    if (m.re === 'outcome') $('outcome-error').textContent = text;
    else banner(text);
    if (m.re && m.re.startsWith('accept-')) renderQueue();
  },
};

function onStatus(status) {
  const words = { open: '接続中', reconnecting: '再接続中…', closed: '切断', connecting: '接続中…' };
  $('conn-status').textContent = words[status] || status;
  $('conn-status').dataset.status = status;
  if (status === 'reconnecting') banner('ゲートウェイとの接続が切れました。再接続しています…');
  if (status === 'open') banner('');
  if (status === 'closed') banner('ゲートウェイに接続できません。再読み込みするか、もう一度ログインしてください。');
}

async function main() {
  try {
    const me = await api('GET', '/api/me');
    if (me.role !== 'verifier') { location.href = '/'; return; }
    $('who').textContent = me.username;
  } catch { location.href = '/'; return; }
  $('logout').addEventListener('click', logout);
  conn = connect(`wss://${location.host}/ws`, handlers, onStatus);
  // Diagnostics hook, as on the test pages: hang up the current session.
  mdTest.hangup = () => mdTest.session && conn.send({ type: 'hangup', session: mdTest.session });
}

main();
