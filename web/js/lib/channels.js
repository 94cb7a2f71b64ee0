// Client library (docs/internals/browser-tests.md, "Client library"): the
// `chat` and `file` data channels of docs/protocol.md ("Data channels") on
// the page's one RTCPeerConnection to the gateway, both directions. The
// kiosk, the verifier console and the test pages all use this one module.
//
// - attach(pc) opens `chat` and `file` in-band (DCEP), ordered and reliable,
//   and must run before the offer so that it carries the data m-line. A new
//   peer connection (a rejoin) gets new channels; what was sent and received
//   stays in window.md.
// - Chat: md.chat(text) sends {chat, id, ts, text}; the gateway's chat_ack
//   says it stored the message. A chat that arrives is shown and answered
//   with chat_ack (the gateway accepts and ignores it today). A chat sent
//   while the channel is not open waits in the page; one sent on a channel
//   that closed before its chat_ack came is sent again, same id, on the next.
// - Files: md.sendFile({id, name, mime, kind, bytes | make, width, height})
//   offers, waits for file_accept, sends 12-byte-header chunks of 16 KiB
//   (u32 index | u64 offset, big-endian) while bufferedAmount stays under a
//   high-water mark (bufferedamountlow resumes), then file_done, and waits
//   for file_verified or file_error. An offer that arrives is accepted, its
//   chunks checked (index, offset) and reassembled, its SHA-256 computed
//   (crypto.subtle) and answered with file_verified{id, sha256} or
//   file_error{id, file_hash_mismatch}. Progress goes both ways: the
//   receiver sends file_progress{id, bytes} every MiB, the sender records
//   the gateway's.
//
// Everything a page or a test reads is in `md` (window.md once exposed).
// Events on window for the pages: `md-progress` ({id, direction: 'in' |
// 'out' | 'confirmed', bytes, size}), `md-chat` ({kind: 'received' |
// 'acked' | 'sent', id, text, ts}), `md-file` ({kind: 'offered' | 'settled'
// | 'received', id, transfer}).

const CHUNK = 16384;           // payload bytes per chunk, as the gateway sends
const HEADER = 12;             // u32 index | u64 offset
const HIGH_WATER = 1 << 20;    // stop sending above this bufferedAmount...
const LOW_WATER = 256 << 10;   // ...until it falls to this
const PROGRESS_STEP = 1 << 20; // a receiver's file_progress, every MiB

export const md = {
  channels: { chat: null, file: null },  // readyState of the current channels
  opens: { chat: 0, file: 0 },           // how many times each channel opened
  chatSent: [],        // {id, ts, text, sends, acked}
  chatAcked: [],       // ids the gateway acknowledged, in arrival order (repeats kept)
  chatReceived: [],    // {id, ts, text, at}: every chat that arrived (repeats kept)
  sent: {},            // file id -> outgoing transfer (see sendFile)
  received: [],        // incoming transfers, in order of their offers
  control: [],         // every file-channel control message: {dir: 'in'|'out', type, id, code}
  progress: {},        // file id -> {in?, out?, confirmed?: {bytes, size, events}}: the last
                       // progress received, sent, and confirmed by file_progress
  errors: [],          // protocol errors seen by the page, as text
};

let pc = null;
let chat = null;
let file = null;
let nextIndex = 0;
let incoming = null;   // the transfer being received
const bytesOf = new Map(); // file id -> Uint8Array (received, or sent)

function fail(text) {
  md.errors.push(String(text));
  console.error('md:', text);
}

function emit(name, detail) {
  window.dispatchEvent(new CustomEvent(name, { detail }));
}

// The bytes of a received (or sent) file, for display and download.
export function bytesOfFile(id) {
  return bytesOf.get(id) || null;
}

function progress(id, direction, bytes, size) {
  const p = (md.progress[id] = md.progress[id] || {});
  p[direction] = { bytes, size, events: ((p[direction] && p[direction].events) || 0) + 1 };
  window.dispatchEvent(new CustomEvent('md-progress', { detail: { id, direction, bytes, size } }));
}

export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

// Opens `chat` and `file` on a new RTCPeerConnection; call before createOffer.
export function attach(peerConnection) {
  pc = peerConnection;
  chat = pc.createDataChannel('chat');
  file = pc.createDataChannel('file');
  file.binaryType = 'arraybuffer';
  file.bufferedAmountLowThreshold = LOW_WATER;
  const mine = { chat, file };
  for (const [label, ch] of Object.entries(mine)) {
    md.channels[label] = ch.readyState;
    ch.addEventListener('open', () => {
      if (mine[label] !== (label === 'chat' ? chat : file)) return;
      md.channels[label] = ch.readyState;
      md.opens[label]++;
      if (label === 'chat') flushChat();
    });
    ch.addEventListener('close', () => {
      if (mine[label] === (label === 'chat' ? chat : file)) md.channels[label] = ch.readyState;
      if (label === 'file') onFileClosed(ch);
    });
    ch.addEventListener('error', (ev) => fail(`${label} channel: ${ev.error && ev.error.message}`));
  }
  chat.addEventListener('message', (ev) => onChatMessage(ev.data));
  file.addEventListener('message', (ev) => onFileMessage(file, ev.data));
}

// ---- chat

let chatSeq = 0;

// Sends (or queues until the channel is open) one chat message; returns its id.
md.chat = (text, id) => {
  const msg = { id: id || `${md.role || 'page'}-${++chatSeq}-${Date.now().toString(36)}`,
                ts: Date.now(), text, sends: 0, acked: false, channel: null };
  md.chatSent.push(msg);
  flushChat();
  emit('md-chat', { kind: 'sent', id: msg.id, text, ts: msg.ts });
  return msg.id;
};

// Sends what is not acknowledged and not yet sent on the current channel.
function flushChat() {
  if (!chat || chat.readyState !== 'open') return;
  for (const m of md.chatSent) {
    if (m.acked || m.channel === chat) continue;
    chat.send(JSON.stringify({ type: 'chat', id: m.id, ts: m.ts, text: m.text }));
    m.channel = chat;
    m.sends++;
  }
}

function onChatMessage(data) {
  let m;
  try { m = JSON.parse(data); } catch { fail(`chat: not JSON: ${data}`); return; }
  if (m.type === 'chat_ack') {
    md.chatAcked.push(m.id);
    const sent = md.chatSent.find((s) => s.id === m.id);
    if (sent) sent.acked = true;
    else fail(`chat_ack for unknown id ${m.id}`);
    if (sent) emit('md-chat', { kind: 'acked', id: m.id });
  } else if (m.type === 'chat') {
    // A relayed chat may come again after a reconnect (docs/protocol.md):
    // shown once, acknowledged every time.
    const repeat = md.chatReceived.some((r) => r.id === m.id);
    md.chatReceived.push({ id: m.id, ts: m.ts, text: m.text, at: Date.now() });
    if (!repeat) emit('md-chat', { kind: 'received', id: m.id, text: m.text, ts: m.ts });
    // Displayed: say so (docs/internals/datachannels.md, chat_ack "either").
    chat.send(JSON.stringify({ type: 'chat_ack', id: m.id }));
  } else {
    fail(`chat: unexpected ${data}`);
  }
}

// For a test: the ids of chat received, and how many times each came.
md.chatCounts = () => {
  const n = {};
  for (const m of md.chatReceived) n[m.id] = (n[m.id] || 0) + 1;
  return n;
};

// ---- files: control messages

function sendControl(ch, msg) {
  md.control.push({ dir: 'out', type: msg.type, id: msg.id, code: msg.code });
  ch.send(JSON.stringify(msg));
}

function onFileMessage(ch, data) {
  if (typeof data !== 'string') {
    onChunk(ch, new Uint8Array(data));
    return;
  }
  let m;
  try { m = JSON.parse(data); } catch { fail(`file: not JSON: ${data}`); return; }
  md.control.push({ dir: 'in', type: m.type, id: m.id, code: m.code });
  const out = md.sent[m.id];
  switch (m.type) {
    case 'file_offer': onOffer(ch, m); break;
    case 'file_done': onDone(ch, m); break;
    case 'file_cancel':
      if (incoming && incoming.id === m.id) finishIncoming('cancelled', null);
      break;
    case 'file_progress': // the gateway has received this much of what we send
      if (!out) { fail(`file_progress for unknown file ${m.id}`); break; }
      if (m.bytes < (out.confirmed || 0) || m.bytes > out.size) fail(`file_progress ${data}`);
      out.confirmed = m.bytes;
      out.progressMessages++;
      progress(m.id, 'confirmed', m.bytes, out.size);
      break;
    case 'file_accept':
    case 'file_refuse':
    case 'file_verified':
    case 'file_error':
      if (!out) { fail(`${m.type} for unknown file ${m.id}`); break; }
      out.answers.push(m);
      if (out.wake) out.wake();
      break;
    default:
      fail(`file: unexpected ${data}`);
  }
}

// ---- files: sending

// Resolves when `ch`'s bufferedAmount is at the low-water mark or the channel
// closed.
function drained(ch) {
  if (ch.bufferedAmount <= LOW_WATER || ch.readyState !== 'open') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      ch.removeEventListener('bufferedamountlow', done);
      ch.removeEventListener('close', done);
      resolve();
    };
    ch.addEventListener('bufferedamountlow', done);
    ch.addEventListener('close', done);
  });
}

// The next answer from the gateway about outgoing transfer `out`.
function nextAnswer(out, ch) {
  if (out.answers.length) return Promise.resolve(out.answers.shift());
  if (ch.readyState !== 'open') return Promise.resolve({ type: 'closed' });
  return new Promise((resolve) => {
    const onClose = () => { out.wake = null; resolve({ type: 'closed' }); };
    ch.addEventListener('close', onClose, { once: true });
    out.wake = () => {
      out.wake = null;
      ch.removeEventListener('close', onClose);
      resolve(out.answers.shift());
    };
  });
}

/*
 * Offers one file on the current `file` channel and sends it. `bytes` (a
 * Uint8Array) or `make` ({type, size, seed}, testfiles.js) gives the
 * content. Returns md.sent[id] at once; its `state` goes offered ->
 * sending -> done (file_done sent) -> verified | refused | error | closed,
 * and `finished` is a promise of the final state.
 */
md.sendFile = ({ id, name, mime, kind = 'file', bytes, make, width, height }) => {
  const data = bytes || md.makeBytes(make); // `make`: test pages only (md.makeBytes)
  const out = {
    id, index: ++nextIndex, name, mime, kind, size: data.length, sha256: null,
    width, height, state: 'hashing', bytesSent: 0, answers: [], wake: null,
    verifiedSha256: null, code: null, startedAt: Date.now(), endedAt: null,
    confirmed: 0, progressMessages: 0, // from the gateway's file_progress
  };
  md.sent[id] = out;
  bytesOf.set(id, data);
  emit('md-file', { kind: 'offered', id, transfer: out });
  out.finished = sendFile(out, data).catch((e) => {
    fail(`sendFile ${id}: ${e && e.stack || e}`);
    out.state = 'error';
    out.code = out.code || 'page_exception';
  }).then(() => { out.endedAt = Date.now(); return out.state; });
  return out;
};

async function sendFile(out, data) {
  const ch = file;
  out.sha256 = await sha256Hex(data);
  if (!ch || ch.readyState !== 'open') { out.state = 'closed'; return; }
  const offer = { type: 'file_offer', id: out.id, index: out.index, name: out.name,
                  size: out.size, mime: out.mime, sha256: out.sha256, kind: out.kind };
  if (out.width !== undefined) offer.width = out.width;
  if (out.height !== undefined) offer.height = out.height;
  sendControl(ch, offer);
  out.state = 'offered';
  const answer = await nextAnswer(out, ch);
  if (answer.type !== 'file_accept') return settle(out, answer);
  out.state = 'sending';
  for (let offset = 0; offset < data.length; offset += CHUNK) {
    if (out.answers.length) return settle(out, out.answers.shift()); // e.g. file_error
    if (ch.bufferedAmount > HIGH_WATER) await drained(ch);
    if (ch.readyState !== 'open') { out.state = 'closed'; return; }
    const n = Math.min(CHUNK, data.length - offset);
    const chunk = new Uint8Array(HEADER + n);
    const dv = new DataView(chunk.buffer);
    dv.setUint32(0, out.index);
    dv.setBigUint64(4, BigInt(offset));
    chunk.set(data.subarray(offset, offset + n), HEADER);
    ch.send(chunk);
    out.bytesSent = offset + n;
    if ((offset / CHUNK) % 64 === 0 || out.bytesSent === data.length)
      progress(out.id, 'out', out.bytesSent, out.size);
  }
  sendControl(ch, { type: 'file_done', id: out.id });
  out.state = 'done';
  settle(out, await nextAnswer(out, ch));
}

function settle(out, answer) {
  out.code = answer.code || null;
  if (answer.type === 'file_verified') {
    out.verifiedSha256 = answer.sha256;
    out.state = answer.sha256 === out.sha256 ? 'verified' : 'error';
    if (out.state === 'error') out.code = 'verified_sha256_differs';
  } else {
    out.state = { file_refuse: 'refused', file_error: 'error', closed: 'closed' }[answer.type] ||
                `unexpected ${answer.type}`;
  }
  emit('md-file', { kind: 'settled', id: out.id, transfer: out });
}

// ---- files: receiving

function onOffer(ch, m) {
  if (incoming) {
    sendControl(ch, { type: 'file_refuse', id: m.id, code: 'datachannel_refused' });
    return;
  }
  incoming = {
    id: m.id, index: m.index, name: m.name, size: m.size, mime: m.mime, kind: m.kind,
    width: m.width, height: m.height, offerSha256: m.sha256, sha256: null, bytes: 0,
    chunks: [], state: 'receiving', code: null, startedAt: Date.now(), endedAt: null,
  };
  md.received.push(incoming);
  sendControl(ch, { type: 'file_accept', id: m.id });
  emit('md-file', { kind: 'receiving', id: m.id, transfer: incoming });
}

function onChunk(ch, buf) {
  const t = incoming;
  if (!t || t.state !== 'receiving') { fail('chunk without a transfer'); return; }
  if (buf.length <= HEADER) return abortIncoming(ch, 'datachannel_protocol', 'short chunk');
  const dv = new DataView(buf.buffer, buf.byteOffset, HEADER);
  const index = dv.getUint32(0);
  const offset = Number(dv.getBigUint64(4));
  if (index !== t.index || offset !== t.bytes || t.bytes + buf.length - HEADER > t.size) {
    return abortIncoming(ch, 'datachannel_protocol',
                         `chunk ${index}@${offset}, expected ${t.index}@${t.bytes}`);
  }
  t.chunks.push(buf.subarray(HEADER));
  const before = t.bytes;
  t.bytes += buf.length - HEADER;
  if (Math.floor(before / PROGRESS_STEP) !== Math.floor(t.bytes / PROGRESS_STEP) ||
      t.bytes === t.size) {
    progress(t.id, 'in', t.bytes, t.size);
    sendControl(ch, { type: 'file_progress', id: t.id, bytes: t.bytes });
  }
}

function abortIncoming(ch, code, why) {
  fail(`file ${incoming.id}: ${why}`);
  sendControl(ch, { type: 'file_error', id: incoming.id, code });
  finishIncoming('error', code);
}

async function onDone(ch, m) {
  const t = incoming;
  if (!t || t.id !== m.id) { fail(`file_done for ${m.id}, not in progress`); return; }
  incoming = null; // the next offer may come while we hash
  const data = new Uint8Array(t.bytes);
  let at = 0;
  for (const c of t.chunks) { data.set(c, at); at += c.length; }
  t.chunks = [];
  t.sha256 = await sha256Hex(data);
  bytesOf.set(t.id, data);
  if (t.bytes === t.size && t.sha256 === t.offerSha256) {
    sendControl(ch, { type: 'file_verified', id: t.id, sha256: t.sha256 });
    t.state = 'verified';
  } else {
    sendControl(ch, { type: 'file_error', id: t.id, code: 'file_hash_mismatch' });
    t.state = 'error';
    t.code = 'file_hash_mismatch';
  }
  t.endedAt = Date.now();
  emit('md-file', { kind: 'received', id: t.id, transfer: t });
}

function finishIncoming(state, code) {
  emit('md-file', { kind: 'received', id: incoming.id, transfer: incoming });
  incoming.state = state;
  incoming.code = code;
  incoming.chunks = [];
  incoming.endedAt = Date.now();
  incoming = null;
}

function onFileClosed(ch) {
  // A transfer on a channel that closed is lost (docs/protocol.md: nothing
  // is stored for a cut transfer); its sender offers it again.
  if (incoming && ch !== file) return;
  if (incoming) finishIncoming('closed', null);
}

// ---- for the tests

// The received (or sent) file's bytes [offset, offset + length) as base64.
md.slice = (id, offset = 0, length = Infinity) => {
  const b = bytesOf.get(id);
  if (!b) return null;
  const part = b.subarray(offset, Math.min(b.length, offset + length));
  let s = '';
  for (let i = 0; i < part.length; i += 0x8000)
    s += String.fromCharCode.apply(null, part.subarray(i, i + 0x8000));
  return btoa(s);
};

// Decodes a received image; resolves to {width, height} or {error}.
md.decode = async (id) => {
  const t = md.received.find((r) => r.id === id);
  const b = bytesOf.get(id);
  if (!t || !b) return { error: `no file ${id}` };
  try {
    const bitmap = await createImageBitmap(new Blob([b], { type: t.mime }));
    const size = { width: bitmap.width, height: bitmap.height };
    bitmap.close();
    return size;
  } catch (e) {
    return { error: String(e) };
  }
};

// A summary without the bytes, for test assertions and failure messages.
md.summary = () => ({
  channels: md.channels, opens: md.opens, errors: md.errors,
  chatSent: md.chatSent.map(({ id, sends, acked }) => ({ id, sends, acked })),
  chatAcked: md.chatAcked, chatReceived: md.chatReceived,
  sent: Object.fromEntries(Object.entries(md.sent).map(([id, o]) => [id, {
    state: o.state, code: o.code, size: o.size, bytesSent: o.bytesSent, sha256: o.sha256,
    verifiedSha256: o.verifiedSha256, kind: o.kind, mime: o.mime, width: o.width,
    height: o.height, confirmed: o.confirmed, progressMessages: o.progressMessages }])),
  received: md.received.map(({ chunks, ...r }) => r),
  progress: md.progress,
  stills: md.stills,
  control: md.control.slice(-40),
});

export function expose(role) {
  md.role = role;
  window.md = md;
}

// A file a person picked (File/Blob): its bytes, and for an image its size.
export async function readPicked(fileObj) {
  const bytes = new Uint8Array(await fileObj.arrayBuffer());
  let width;
  let height;
  if (/^image\//.test(fileObj.type)) {
    try {
      const b = await createImageBitmap(fileObj);
      width = b.width;
      height = b.height;
      b.close();
    } catch {
      // not decodable here: sent as a plain file
    }
  }
  return { bytes, width, height };
}
