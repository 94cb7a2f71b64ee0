// Client library (docs/internals/browser-tests.md, "Client library"): one
// participant's WebRTC leg of docs/protocol.md with standard APIs. One
// RTCPeerConnection to the gateway (max-bundle, rtcp-mux): the client offers,
// trickles its candidates (null at the end, `mid` of the first m-line under
// BUNDLE), applies the answer and the gateway's candidates, and restarts ICE
// (`restart`) when its path is lost. The signaling connection is
// signaling.js (reconnecting); connect() here wraps it and records what
// happens.
//
// Everything the pages and the tests look at is in `mdTest` (window.mdTest
// once exposeState() ran): the kiosk and the console read the same figures
// as the test pages.
import { connect as connectSignaling } from './signaling.js';

// Query parameters of the page, e.g. ?codec=H264&loopback=1.
export const params = new URLSearchParams(location.search);

export const mdTest = {
  role: null,
  hello: null,
  session: null,
  assigned: null,
  state: null,         // last `state` of our session from the gateway
  ended: null,         // the `ended` message, if any
  errors: [],          // every `error` message
  lastError: null,     // the last error (gateway message or local exception), as text
  wsOpen: false,
  wsClose: null,       // {code, reason} once closed
  messages: [],        // every message received, in order (types and sessions only)
  sent: [],            // every message sent (types only)
  queue: [],           // last `queue` entries (verifier)
  localCandidates: 0,  // candidates sent to the gateway
  remoteCandidates: 0, // candidates from the gateway applied
  answerSdp: null,
  offerSdp: null,
  answers: 0,          // answers applied (the first, then one per restart)
  restarts: [],        // ICE restarts sent: {reason, at, ufrag, ice}
  iceStates: [],       // {state, at}: every iceConnectionState of our RTCPeerConnection
  pc: null,
  leg: null,
};

export function exposeState() {
  window.mdTest = mdTest;
}

export function setError(text) {
  mdTest.lastError = String(text);
  const e = document.getElementById('error');
  if (e) e.textContent = mdTest.lastError;
  console.error('mdTest error:', mdTest.lastError);
  if (mdTest.onError) mdTest.onError(mdTest.lastError);
}

export function showState(text) {
  const e = document.getElementById('state');
  if (e) e.textContent = text;
}

// Opens the signaling connection (signaling.js: reconnects with backoff);
// handlers maps message type -> function(msg); onStatus(status, info) as in
// signaling.js.
export function connect(url, handlers, onStatus) {
  const all = (msg) => {
    mdTest.messages.push({ type: msg.type, session: msg.session, state: msg.state, code: msg.code });
    if (mdTest.messages.length > 500) mdTest.messages.splice(0, 100);
    if (msg.type === 'error') {
      mdTest.errors.push(msg);
      setError(`${msg.code}: ${msg.message}`);
    }
    if (msg.type === 'state' && msg.session === mdTest.session) {
      mdTest.state = msg.state;
      showState(msg.state);
    }
    if (msg.type === 'ended' && msg.session === mdTest.session) {
      mdTest.ended = msg;
      mdTest.state = 'ended';
      showState('ended');
    }
  };
  const inner = connectSignaling(url, {
    ...handlers, '*': all,
    exception: (e, msg) => setError(`${msg.type}: ${e && e.stack || e}`),
  }, {
    onStatus: (status, info) => {
      mdTest.wsOpen = status === 'open';
      if (status !== 'open' && status !== 'connecting') mdTest.wsClose = info || null;
      mdTest.wsStatus = status;
      if (onStatus) onStatus(status, info);
    },
  });
  return {
    get ws() { return inner.ws; },
    inner,
    send(msg) {
      mdTest.sent.push(msg.type);
      return inner.send(msg);
    },
    close() { inner.close(); },
  };
}

// ?loopback=1: only UDP candidates on 127.0.0.1. ?allow=A.B.C.D/N: only UDP
// candidates in that IPv4 network (the network-namespace tests give their
// veth network, e.g. 10.78.5.0/24). The tests never touch another address.
function parseCidr(text) {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(text || '');
  if (!m) return null;
  const bits = Number(m[5]);
  const addr = ipv4(m.slice(1, 5).join('.'));
  if (bits > 32 || addr === null) return null;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return { net: (addr & mask) >>> 0, mask };
}

function ipv4(text) {
  const p = text.split('.');
  if (p.length !== 4 || p.some((x) => !/^\d+$/.test(x) || Number(x) > 255)) return null;
  return p.reduce((a, x) => ((a << 8) | Number(x)) >>> 0, 0);
}

const allowed = params.get('allow') ? parseCidr(params.get('allow'))
  : params.get('loopback') === '1' ? parseCidr('127.0.0.1/32') : null;
if (params.get('allow') && !allowed) setError(`bad ?allow=${params.get('allow')}`);

// ?transport=tcp: keep TCP candidates instead of UDP ones, both ours and the
// gateway's, so the session can only go live over ICE-TCP (RFC 6544).
const transport = params.get('transport') === 'tcp' ? 'tcp' : 'udp';

// True for an `a=candidate` value (with or without "candidate:") of the
// chosen transport (UDP unless ?transport=tcp) and in the allowed network
// (127.0.0.1 for ?loopback=1).
function loopbackCandidate(value) {
  const bits = value.replace(/^candidate:/, '').split(' ');
  if (bits.length < 8 || bits[2].toLowerCase() !== transport) return false;
  const a = ipv4(bits[4]);
  return a !== null && ((a & allowed.mask) >>> 0) === allowed.net;
}

const loopbackOnly = allowed !== null;

// Restricts the video transceiver to one codec (?codec=VP8 or ?codec=H264;
// H.264 means constrained baseline, packetization-mode 1, as the gateway wants).
function preferCodec(transceiver, codec) {
  if (!codec || !RTCRtpReceiver.getCapabilities || !transceiver.setCodecPreferences) return;
  const wanted = (c) => {
    if (c.mimeType.toLowerCase() !== 'video/' + codec.toLowerCase()) return false;
    if (codec.toUpperCase() !== 'H264') return true;
    const f = c.sdpFmtpLine || '';
    return /packetization-mode=1/.test(f) && /profile-level-id=42e0/i.test(f);
  };
  const codecs = RTCRtpReceiver.getCapabilities('video').codecs.filter(wanted);
  if (codecs.length === 0) throw new Error(`this browser cannot receive ${codec}`);
  transceiver.setCodecPreferences(codecs);
}

// A new `assigned` (a new session, or the same one again after a rejoin):
// forget the previous session and its peer connection.
export function resetSession(m) {
  if (mdTest.leg) mdTest.leg.close();
  Object.assign(mdTest, { session: m.session, assigned: m, state: 'assigned', ended: null,
                          leg: null, pc: null, answerSdp: null, offerSdp: null });
  showState('assigned');
}

// One RTCPeerConnection to the gateway for `session`.
export class Leg {
  constructor(conn, session, iceServers) {
    this.conn = conn;
    this.session = session;
    this.pending = [];     // gateway candidates that came before the answer
    this.answered = false;
    this.mid = null;       // the first m-line's mid: where our candidates go
    this.remoteStream = new MediaStream();
    this.pc = new RTCPeerConnection({ iceServers: iceServers || [], bundlePolicy: 'max-bundle',
                                      rtcpMuxPolicy: 'require' });
    mdTest.pc = this.pc;
    mdTest.leg = this;
    this.pc.addEventListener('icecandidate', (ev) => this.onIceCandidate(ev));
    this.pc.addEventListener('track', (ev) => {
      this.remoteStream.addTrack(ev.track);
      if (this.onRemoteTrack) this.onRemoteTrack(ev.track, this.remoteStream);
    });
    this.pc.addEventListener('iceconnectionstatechange', () => {
      mdTest.iceStates.push({ state: this.pc.iceConnectionState, at: Date.now() });
      if (this.onIceState) this.onIceState(this.pc.iceConnectionState);
    });
    this.pc.addEventListener('connectionstatechange', () => {
      if (this.pc.connectionState === 'failed') setError('RTCPeerConnection failed');
    });
  }

  // getUserMedia, addTrack, createOffer, send `offer`.
  // `stream` (optional): the camera and microphone the page already opened
  // (the kiosk's check screen); else they are asked for here.
  async start(codec, stream) {
    if (!stream) {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: true, video: { width: 640, height: 360, frameRate: 30 } });
    }
    this.localStream = stream;
    for (const track of stream.getTracks()) this.pc.addTrack(track, stream);
    for (const t of this.pc.getTransceivers())
      if (t.sender.track && t.sender.track.kind === 'video') preferCodec(t, codec);
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    mdTest.offerSdp = this.pc.localDescription.sdp;
    this.mid = this.pc.getTransceivers()[0].mid;
    this.conn.send({ type: 'offer', session: this.session, sdp: this.pc.localDescription.sdp });
  }

  onIceCandidate(ev) {
    const c = ev.candidate;
    if (c && !c.candidate) return; // an empty candidate: end of a generation; null follows
    if (c && loopbackOnly && !loopbackCandidate(c.candidate)) return;
    this.conn.send({ type: 'candidate', session: this.session,
                     candidate: c ? c.candidate : null, mid: c ? (c.sdpMid || this.mid) : this.mid });
    if (c) mdTest.localCandidates++;
  }

  async onAnswer(msg) {
    mdTest.answerSdp = msg.sdp;
    let sdp = msg.sdp;
    if (loopbackOnly) {
      sdp = sdp.split(/\r?\n/).filter((l) => !l.startsWith('a=candidate:') ||
                                              loopbackCandidate(l.slice(2))).join('\r\n');
    }
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
    mdTest.answers++;
    this.answered = true;
    for (const m of this.pending.splice(0)) await this.onCandidate(m);
  }

  async onCandidate(msg) {
    if (!this.answered) { this.pending.push(msg); return; }
    if (msg.candidate === null) return; // end of candidates: nothing more will come
    if (loopbackOnly && !loopbackCandidate(msg.candidate)) return;
    await this.pc.addIceCandidate({ candidate: msg.candidate, sdpMid: msg.mid || this.mid });
    mdTest.remoteCandidates++;
  }

  // ICE restart on this RTCPeerConnection (RFC 8445 9): an offer with new
  // ICE credentials, sent as `restart`; the gateway answers at once and our
  // candidates are trickled as usual. Only from a stable signaling state, so
  // that one answer matches one offer.
  async restartIce(reason) {
    if (this.pc.signalingState !== 'stable' || this.restarting) return false;
    this.restarting = true;
    try {
      this.answered = false; // the new answer first, then its candidates
      this.pc.restartIce();
      const offer = await this.pc.createOffer({ iceRestart: true });
      await this.pc.setLocalDescription(offer);
      mdTest.offerSdp = this.pc.localDescription.sdp;
      const ufrag = /a=ice-ufrag:(\S+)/.exec(mdTest.offerSdp);
      mdTest.restarts.push({ reason, at: Date.now(), ufrag: ufrag && ufrag[1],
                             ice: this.pc.iceConnectionState });
      this.lastRestart = Date.now();
      this.conn.send({ type: 'restart', session: this.session, sdp: mdTest.offerSdp });
      return true;
    } finally {
      this.restarting = false;
    }
  }

  close() {
    if (this.localStream) for (const t of this.localStream.getTracks()) t.stop();
    this.pc.close();
  }
}

// The figures a test asserts on, from getStats(): inbound audio and video
// (what came from the other leg through the gateway) and their codecs.
export async function stats(pc) {
  const out = { connectionState: pc ? pc.connectionState : null, video: null, audio: null,
                outVideo: null, outAudio: null };
  if (!pc) return out;
  const report = await pc.getStats();
  const codecs = {};
  report.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s.mimeType; });
  report.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      out.video = { packetsReceived: s.packetsReceived, framesDecoded: s.framesDecoded,
                    frameWidth: s.frameWidth, frameHeight: s.frameHeight,
                    keyFramesDecoded: s.keyFramesDecoded, codec: codecs[s.codecId] || null };
    } else if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      out.audio = { packetsReceived: s.packetsReceived,
                    totalSamplesReceived: s.totalSamplesReceived,
                    concealedSamples: s.concealedSamples, codec: codecs[s.codecId] || null };
    } else if (s.type === 'outbound-rtp' && s.kind === 'video') {
      out.outVideo = { packetsSent: s.packetsSent, framesEncoded: s.framesEncoded,
                       codec: codecs[s.codecId] || null, encoderImplementation: s.encoderImplementation };
    } else if (s.type === 'outbound-rtp' && s.kind === 'audio') {
      out.outAudio = { packetsSent: s.packetsSent, codec: codecs[s.codecId] || null };
    }
  });
  return out;
}

mdTest.stats = () => stats(mdTest.pc);
// Diagnostics hook (tests, the help desk's console): restart ICE now.
mdTest.restartIce = () => mdTest.leg && mdTest.leg.restartIce('manual');
mdTest.videoCodecs = () => ({
  send: RTCRtpSender.getCapabilities ? RTCRtpSender.getCapabilities('video').codecs
    .map((c) => `${c.mimeType} ${c.sdpFmtpLine || ''}`.trim()) : [],
  receive: RTCRtpReceiver.getCapabilities ? RTCRtpReceiver.getCapabilities('video').codecs
    .map((c) => `${c.mimeType} ${c.sdpFmtpLine || ''}`.trim()) : [],
});

// ---- keeping a leg alive

// ICE restart (docs/protocol.md, Media) when the path to the gateway is lost:
// iceConnectionState disconnected or failed, or nothing received from the
// gateway for STALL_MS while ICE still says connected (Chromium whose
// interface goes down for a few seconds often stays `connected`). If the path
// is still lost RESTART_RETRY_MS after a restart, it restarts again.
// supervise(leg, {isEnded, onHealth}) watches `leg` until it is replaced or
// closed; onHealth(health) gets 'connected' | 'reconnecting' every check.
const RESTART_RETRY_MS = 6000;
const STALL_MS = 2000;

function maybeRestart(leg, reason, isEnded) {
  if (!leg.everConnected || isEnded() || leg !== mdTest.leg) return;
  if (leg.pc.signalingState === 'closed') return;
  if (leg.lastRestart && Date.now() - leg.lastRestart < RESTART_RETRY_MS) return;
  leg.restartIce(reason).catch((e) => setError(`restart: ${e && e.stack || e}`));
}

async function packetsIn(pc) {
  let n = 0;
  (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp') n += r.packetsReceived || 0; });
  return n;
}

export function supervise(leg, { isEnded = () => !!mdTest.ended, onHealth } = {}) {
  const prev = leg.onIceState;
  leg.onIceState = (state) => {
    if (state === 'connected' || state === 'completed') leg.everConnected = true;
    if (state === 'disconnected' || state === 'failed') maybeRestart(leg, state, isEnded);
    if (prev) prev(state);
  };
  let busy = false;
  const timer = setInterval(async () => {
    if (leg !== mdTest.leg || leg.pc.signalingState === 'closed') { clearInterval(timer); return; }
    if (!leg.everConnected || isEnded() || busy) return;
    busy = true;
    try {
      const s = leg.pc.iceConnectionState;
      const n = await packetsIn(leg.pc);
      const now = Date.now();
      if (leg.packetsIn === undefined || n !== leg.packetsIn) {
        leg.packetsIn = n;
        leg.packetsInAt = now;
      }
      const stalled = now - leg.packetsInAt >= STALL_MS;
      mdTest.stalled = stalled;
      const up = (s === 'connected' || s === 'completed') && !stalled;
      if (onHealth) onHealth(up ? 'connected' : 'reconnecting');
      if (s !== 'connected' && s !== 'completed') maybeRestart(leg, `retry (${s})`, isEnded);
      else if (stalled) maybeRestart(leg, `media stalled ${now - leg.packetsInAt} ms (${s})`, isEnded);
    } catch (e) {
      setError(`watchdog: ${e && e.stack || e}`);
    } finally {
      busy = false;
    }
  }, 500);
  return () => clearInterval(timer);
}

// A rough link grade from this page's own getStats (the kiosk has no
// `quality` messages): inbound video loss and frame rate, round-trip time.
// Returns {level: 'good' | 'fair' | 'poor', lossPct, rttMs, fps}.
export async function linkGrade(pc, prev) {
  const report = await pc.getStats();
  let lost = 0;
  let received = 0;
  let fps = null;
  let rtt = null;
  report.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') {
      lost += r.packetsLost || 0;
      received += r.packetsReceived || 0;
      if (r.framesPerSecond !== undefined) fps = r.framesPerSecond;
    }
    if (r.type === 'candidate-pair' && r.nominated && r.currentRoundTripTime !== undefined)
      rtt = r.currentRoundTripTime * 1000;
  });
  const dLost = lost - (prev ? prev.lost : 0);
  const dRecv = received - (prev ? prev.received : 0);
  const lossPct = dLost + dRecv > 0 ? (100 * dLost) / (dLost + dRecv) : 0;
  let level = 'good';
  if (lossPct > 2 || (rtt !== null && rtt > 300) || (fps !== null && fps < 15)) level = 'fair';
  if (lossPct > 8 || (rtt !== null && rtt > 800) || (fps !== null && fps < 5) || dRecv === 0) level = 'poor';
  return { level, lossPct, rttMs: rtt, fps, lost, received };
}
