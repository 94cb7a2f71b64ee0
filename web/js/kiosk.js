// Counter-tablet kiosk (the device listener's root page): the clerk picks a
// procedure, checks camera and microphone, waits for a verifier, holds the
// call (video, chat, photos and files, stills answered automatically,
// recording consent) and reads the result. Japanese only. Built on the client
// library in /js/lib/ (docs/internals/browser-tests.md, "Client library");
// the protocol is docs/protocol.md. The page's own WebSocket is same-origin
// (wss://HOST:8444/ws), authenticated by the tablet's client certificate.
import { attach, expose, md, readPicked } from './lib/channels.js';
import { ENDED_REASONS, OUTCOMES, errorText } from './lib/errors.js';
import { Leg, connect, exposeState, linkGrade, mdTest, params, resetSession, supervise } from './lib/leg.js';
import { onStill } from './lib/still.js';
import { chatView, jstTime, transferRow as row } from './lib/callui.js';

const $ = (id) => document.getElementById(id);
const RETURN_AFTER_S = 10;

exposeState();
expose('tablet');
mdTest.role = 'tablet';
mdTest.stillMessages = [];

const kiosk = { procedures: [], chosen: null, stream: null, waitingSince: 0, position: null,
                endTimer: null, qualityPrev: null, recording: null };
window.mdKiosk = kiosk;
let conn;

// ---- screens and small helpers

function show(screen) {
  for (const s of document.querySelectorAll('.screen')) s.classList.toggle('hidden', s.id !== `screen-${screen}`);
  kiosk.screen = screen;
  const h = document.querySelector(`#screen-${screen} h1`);
  if (h && screen !== 'call') { h.tabIndex = -1; h.focus({ preventScroll: true }); }
}

function banner(text) {
  $('banner').textContent = text || '';
  $('banner').classList.toggle('hidden', !text);
}

function box(id, text) {
  $(id).textContent = text || '';
  $(id).classList.toggle('hidden', !text);
}

const two = (n) => String(n).padStart(2, '0');
const mmss = (s) => `${Math.floor(s / 60)}:${two(Math.floor(s % 60))}`;

setInterval(() => { $('clock').textContent = jstTime(); }, 1000);
$('clock').textContent = jstTime();

function procedureName(id) {
  const p = kiosk.procedures.find((x) => x.id === id);
  return p ? p.ja : id;
}

// ---- 1. start

function renderProcedures() {
  const list = $('procedures');
  list.replaceChildren(...kiosk.procedures.map((p) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = p.available ? 'primary' : '';
    b.textContent = p.ja;
    b.dataset.procedure = p.id;
    if (!p.available) {
      b.disabled = true;
      const why = document.createElement('span');
      why.className = 'reason';
      why.id = `why-${p.id.replace(/\W/g, '-')}`;
      why.textContent = '統合端末の改修後に開始します(現在は受付できません)';
      b.setAttribute('aria-describedby', why.id);
      li.append(b, why);
    } else {
      b.addEventListener('click', () => startCheck(p));
      li.append(b);
    }
    return li;
  }));
  if (!kiosk.procedures.length) {
    const li = document.createElement('li');
    li.textContent = 'この郵便局で受け付けられるお手続きはありません。';
    list.append(li);
  }
}

// ---- 2. camera and microphone check

function stopStream() {
  if (kiosk.stream) for (const t of kiosk.stream.getTracks()) t.stop();
  kiosk.stream = null;
  if (kiosk.meter) { kiosk.meter.close().catch(() => {}); kiosk.meter = null; }
}

function mediaErrorText(e) {
  const name = e && e.name;
  if (name === 'NotAllowedError' || name === 'SecurityError')
    return 'カメラとマイクの使用が許可されていません。端末の設定でこのページにカメラとマイクの使用を許可してから、「もう一度確認する」を押してください。';
  if (name === 'NotFoundError' || name === 'OverconstrainedError')
    return 'カメラまたはマイクが見つかりません。端末にカメラとマイクが接続されているか確かめてください。';
  if (name === 'NotReadableError' || name === 'AbortError')
    return 'カメラまたはマイクをほかのアプリが使っています。ほかのアプリを閉じてから、もう一度お試しください。';
  return `カメラとマイクを使えませんでした(${name || e})。`;
}

async function fillDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const fill = (select, kind, current) => {
    const list = devices.filter((d) => d.kind === kind);
    select.replaceChildren(...list.map((d, i) => {
      const o = document.createElement('option');
      o.value = d.deviceId;
      o.textContent = d.label || `${kind === 'videoinput' ? 'カメラ' : 'マイク'} ${i + 1}`;
      o.selected = d.deviceId === current;
      return o;
    }));
  };
  const v = kiosk.stream && kiosk.stream.getVideoTracks()[0];
  const a = kiosk.stream && kiosk.stream.getAudioTracks()[0];
  fill($('camera-select'), 'videoinput', v && v.getSettings().deviceId);
  fill($('mic-select'), 'audioinput', a && a.getSettings().deviceId);
}

function micMeter(stream) {
  try {
    const ctx = new AudioContext();
    const src = ctx.createMediaStreamSource(stream);
    const an = ctx.createAnalyser();
    an.fftSize = 512;
    src.connect(an);
    const buf = new Uint8Array(an.fftSize);
    const tick = () => {
      if (kiosk.meter !== ctx) return;
      an.getByteTimeDomainData(buf);
      let peak = 0;
      for (const x of buf) peak = Math.max(peak, Math.abs(x - 128));
      $('mic-level').style.width = `${Math.min(100, (peak / 64) * 100)}%`;
      requestAnimationFrame(tick);
    };
    kiosk.meter = ctx;
    tick();
  } catch {
    // no Web Audio: no meter
  }
}

async function openCamera() {
  stopStream();
  box('check-error', '');
  $('check-ok').classList.add('hidden');
  $('request-button').disabled = true;
  const cam = $('camera-select').value;
  const mic = $('mic-select').value;
  try {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw Object.assign(new Error('no mediaDevices'), { name: 'NotFoundError' });
    }
    kiosk.stream = await navigator.mediaDevices.getUserMedia({
      audio: mic ? { deviceId: { exact: mic } } : true,
      video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 },
               ...(cam ? { deviceId: { exact: cam } } : {}) },
    });
    $('check-preview').srcObject = kiosk.stream;
    micMeter(kiosk.stream);
    await fillDevices();
    $('check-ok').classList.remove('hidden');
    $('request-button').disabled = false;
    $('request-button').textContent = '確認担当者を呼ぶ';
  } catch (e) {
    kiosk.cameraError = e && e.name;
    box('check-error', mediaErrorText(e));
    $('request-button').disabled = false;
    $('request-button').textContent = 'もう一度確認する';
  }
}

function startCheck(p) {
  kiosk.chosen = p;
  box('start-error', '');
  $('check-procedure').textContent = `お手続き: ${p.ja}`;
  show('check');
  openCamera();
}

$('camera-select').addEventListener('change', openCamera);
$('mic-select').addEventListener('change', openCamera);
$('check-back').addEventListener('click', () => { stopStream(); show('start'); });
$('request-button').addEventListener('click', () => {
  if (!kiosk.stream) { openCamera(); return; }
  $('request-button').disabled = true;
  kiosk.requestId = `request-${Date.now().toString(36)}`;
  if (!conn.send({ type: 'request', procedure: kiosk.chosen.id, id: kiosk.requestId })) {
    $('request-button').disabled = false;
    box('check-error', 'ゲートウェイにつながっていません。回線を確かめてください。');
  }
});

// ---- 3. waiting

function showWaiting(m) {
  kiosk.position = m.position;
  kiosk.waitingSince = Date.now() - (m.wait_seconds || 0) * 1000;
  $('waiting-procedure').textContent = `お手続き: ${procedureName(m.procedure)}`;
  $('waiting-position').textContent = `${m.position}番目`;
  // A rough estimate: each request ahead takes about five minutes.
  $('waiting-estimate').textContent = m.position > 1
    ? `前に${m.position - 1}件あります。目安はおよそ${(m.position - 1) * 5}分です。`
    : 'まもなく確認担当者につながります。';
  if (kiosk.screen !== 'waiting') show('waiting');
}

setInterval(() => {
  if (kiosk.screen === 'waiting') $('waiting-elapsed').textContent = mmss((Date.now() - kiosk.waitingSince) / 1000);
}, 1000);

$('cancel-button').addEventListener('click', () => {
  if (mdTest.session) conn.send({ type: 'cancel', session: mdTest.session, id: 'cancel' });
});

// ---- 4. the call

function startCall(m) {
  const same = mdTest.leg && mdTest.session === m.session && mdTest.leg.pc.signalingState !== 'closed';
  if (same) {
    // The signaling connection came back into the same session: the media
    // leg may still be up; if not, restart ICE on it.
    const s = mdTest.leg.pc.iceConnectionState;
    if (s !== 'connected' && s !== 'completed') mdTest.leg.restartIce('rejoin').catch(() => {});
    show('call');
    return;
  }
  resetSession(m);
  kiosk.assigned = m;
  $('transfers').replaceChildren();
  $('chat-log').replaceChildren();
  const leg = new Leg(conn, m.session, m.ice_servers);
  leg.onRemoteTrack = (track, stream) => { $('remote-video').srcObject = stream; };
  attach(leg.pc);
  supervise(leg, {
    onHealth: (h) => banner(h === 'connected' ? '' : '通信が途切れています。再接続しています…'),
  });
  show('call');
  const stream = kiosk.stream && kiosk.stream.active ? kiosk.stream : null;
  kiosk.stream = null; // the leg owns it now (stopped when the call ends)
  if (kiosk.meter) { kiosk.meter.close().catch(() => {}); kiosk.meter = null; }
  leg.start(params.get('codec'), stream).then(() => {
    $('local-video').srcObject = leg.localStream;
    setMuted(false);
  }).catch((e) => banner(mediaErrorText(e)));
}

function setMuted(muted) {
  const leg = mdTest.leg;
  if (leg && leg.localStream) for (const t of leg.localStream.getAudioTracks()) t.enabled = !muted;
  $('mute-button').setAttribute('aria-pressed', String(muted));
  $('mute-button').textContent = muted ? 'マイクを入れる(いま切っています)' : 'マイクを切る';
}
$('mute-button').addEventListener('click', () =>
  setMuted($('mute-button').getAttribute('aria-pressed') !== 'true'));

// quality indicator, from this page's own statistics
setInterval(async () => {
  const leg = mdTest.leg;
  if (kiosk.screen !== 'call' || !leg || leg.pc.signalingState === 'closed') return;
  try {
    const g = await linkGrade(leg.pc, kiosk.qualityPrev);
    kiosk.qualityPrev = g;
    const words = { good: '良好', fair: 'やや不安定', poor: '不安定' };
    $('quality').dataset.level = g.level;
    $('quality-text').textContent = `通信状態: ${words[g.level]}`;
  } catch {
    // the connection is closing
  }
}, 2000);

// chat
chatView({ log: $('chat-log'), form: $('chat-form'), input: $('chat-input'), peer: '確認担当者' });

// files: progress both ways
function transferRow(t, dir) {
  return row($('transfers'), t, `${dir === 'out' ? '送信' : '受信'}: ${t.kind === 'still' ? '撮影した写真' : t.name}`);
}

window.addEventListener('md-progress', (ev) => {
  const { id, direction, bytes, size } = ev.detail;
  const t = direction === 'in' ? md.received.find((r) => r.id === id) : md.sent[id];
  if (!t) return;
  const li = transferRow(t, direction === 'in' ? 'in' : 'out');
  li.querySelector('progress').value = bytes;
  li.querySelector('.state').textContent = ` ${Math.round((100 * bytes) / (size || 1))}%`;
});

window.addEventListener('md-file', (ev) => {
  const { kind, transfer: t } = ev.detail;
  const dir = kind === 'offered' || kind === 'settled' ? 'out' : 'in';
  const li = transferRow(t, dir);
  const words = { verified: '✓ 送信しました', refused: '送れませんでした', error: '送れませんでした',
                  closed: '中断しました', receiving: '受信中', sending: '送信中', offered: '準備中',
                  hashing: '準備中', done: '確認中' };
  let text = words[t.state] || t.state;
  if ((t.state === 'refused' || t.state === 'error') && t.code) text += `: ${errorText(t.code)}`;
  if (dir === 'in' && t.state === 'verified') text = '✓ 受信しました';
  if (dir === 'in' && t.state === 'verified') li.querySelector('progress').value = t.size;
  li.querySelector('.state').textContent = ` ${text}`;
});

let fileSeq = 0;
// A photo from the camera picker or a file goes as a plain file (a `still`
// is only what the verifier asked for).
async function sendPicked(input) {
  const f = input.files && input.files[0];
  input.value = '';
  if (!f) return;
  const { bytes } = await readPicked(f);
  md.sendFile({ id: `t${Date.now().toString(36)}${++fileSeq}`, name: f.name || `photo-${fileSeq}.jpg`,
                mime: f.type || 'application/octet-stream', kind: 'file', bytes });
}
$('photo-input').addEventListener('change', () => sendPicked($('photo-input')));
$('file-input').addEventListener('change', () => sendPicked($('file-input')));

// stills: answered automatically, with a notice for the clerk
function stillNotice(text) {
  $('still-notice').textContent = text;
  $('still-notice').classList.remove('hidden');
  clearTimeout(kiosk.stillTimer);
  kiosk.stillTimer = setTimeout(() => $('still-notice').classList.add('hidden'), 6000);
}

// hang up, with a confirmation
$('hangup-button').addEventListener('click', () => $('confirm-hangup').classList.remove('hidden'));
$('hangup-no').addEventListener('click', () => $('confirm-hangup').classList.add('hidden'));
$('hangup-yes').addEventListener('click', () => {
  $('confirm-hangup').classList.add('hidden');
  if (mdTest.session) conn.send({ type: 'hangup', session: mdTest.session, id: 'hangup' });
});

// recording consent and indicator (docs/protocol.md, `consent`, `recording`)
$('consent-yes').addEventListener('click', () => answerConsent(true));
$('consent-no').addEventListener('click', () => answerConsent(false));
function answerConsent(given) {
  $('consent').classList.add('hidden');
  if (kiosk.consentSession) conn.send({ type: 'consent', session: kiosk.consentSession, given });
}
function showRecording(state) {
  kiosk.recording = state;
  const words = { asking: '録画の同意を確認中', consented: '録画に同意済み', on: '● 録画中', stopped: '録画停止', refused: '録画なし(同意されませんでした)',
                  failed: '録画に失敗しました' };
  $('recording').textContent = words[state] || '';
  $('recording').classList.toggle('hidden', !words[state] || state === 'stopped');
}

// ---- 5. the end

function showEnd(m) {
  const leg = mdTest.leg;
  if (leg) leg.close();
  stopStream();
  banner('');
  $('consent').classList.add('hidden');
  $('confirm-hangup').classList.add('hidden');
  showRecording(null);
  const outcome = m.outcome || 'none';
  $('end-result').dataset.outcome = outcome;
  $('end-result').textContent = m.outcome ? OUTCOMES[m.outcome] || m.outcome : '中止';
  $('end-reason').textContent = ENDED_REASONS[m.reason] ? `理由: ${ENDED_REASONS[m.reason]}` : `理由: ${m.reason}`;
  show('end');
  let left = RETURN_AFTER_S;
  const tick = () => {
    $('end-countdown').textContent = `${left}秒後に最初の画面に戻ります。`;
    if (left-- <= 0) backToStart();
  };
  clearInterval(kiosk.endTimer);
  kiosk.endTimer = setInterval(tick, 1000);
  tick();
  if (window.mdKioskHoldEnd) clearInterval(kiosk.endTimer); // screenshots: keep the screen
}

function backToStart() {
  clearInterval(kiosk.endTimer);
  kiosk.chosen = null;
  show('start');
}
$('end-back').addEventListener('click', backToStart);

// ---- the gateway's messages

const handlers = {
  hello: (m) => {
    mdTest.hello = m;
    kiosk.procedures = m.procedures || [];
    $('office').textContent = m.post_office_name || m.post_office;
    $('municipality').textContent = m.municipality_name ? `${m.municipality_name} 本人確認窓口` : '';
    document.title = `${m.post_office_name || m.post_office} — 本人確認`;
    renderProcedures();
    banner('');
  },
  queued: (m) => {
    mdTest.session = m.session;
    if (!mdTest.state || mdTest.state === 'ended') mdTest.state = 'requested';
    showWaiting(m);
  },
  assigned: (m) => startCall(m),
  state: (m) => {
    if (m.session === mdTest.session && m.state === 'requested' && kiosk.screen !== 'waiting')
      showWaiting({ position: kiosk.position || 1, procedure: kiosk.chosen && kiosk.chosen.id });
  },
  answer: (m) => mdTest.leg && m.session === mdTest.session && mdTest.leg.onAnswer(m),
  candidate: (m) => mdTest.leg && m.session === mdTest.session && mdTest.leg.onCandidate(m),
  still: (m) => {
    mdTest.stillMessages.push(m);
    if (m.session !== mdTest.session || !mdTest.leg) return null;
    stillNotice('確認担当者の依頼で、カメラの写真を撮影して送っています。');
    const track = mdTest.leg.localStream && mdTest.leg.localStream.getVideoTracks()[0];
    return onStill(m, track).then(() => stillNotice('確認担当者の依頼で、カメラの写真を撮影して送りました。'));
  },
  consent: (m) => {
    if (m.given !== undefined) return;
    kiosk.consentSession = m.session;
    $('consent').classList.remove('hidden');
    $('consent-yes').focus();
  },
  recording: (m) => { if (m.session === mdTest.session) showRecording(m.state); },
  ended: (m) => { if (m.session === mdTest.session) showEnd(m); },
  error: (m) => {
    const text = errorText(m.code);
    kiosk.lastError = { code: m.code, text };
    if (kiosk.screen === 'check' || (m.re && m.re === kiosk.requestId)) {
      $('request-button').disabled = false;
      box('check-error', text);
    } else if (kiosk.screen === 'start') {
      box('start-error', text);
    } else {
      banner(text);
    }
  },
};

function onStatus(status) {
  if (status === 'reconnecting') banner('ゲートウェイとの接続が切れました。再接続しています…');
  else if (status === 'open') banner('');
  else if (status === 'closed') banner(errorText(mdTest.errors.length ? mdTest.errors[mdTest.errors.length - 1].code : 'device_certificate_required'));
}

renderProcedures();
show('start');
conn = connect(`wss://${location.host}/ws`, handlers, onStatus);
  // Diagnostics hook, as on the test pages: hang up the current session.
  mdTest.hangup = () => mdTest.session && conn.send({ type: 'hangup', session: mdTest.session });
