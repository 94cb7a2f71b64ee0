// Test tablet, a thin page on the client library (docs/internals/browser-tests.md;
// served only with web.test_pages): connects to the device
// listener given as ?device=wss://HOST:PORT/ws (the TLS client certificate is
// the browser's business), asks for ?procedure= (default mynumber.new) and, on
// `assigned`, offers audio + video with ?codec= (VP8, H264 or any). When its
// path to the gateway is lost it restarts ICE (`restart`, same session).
// ?dc=1 also opens the `chat` and `file` data channels (datachannels.js,
// window.md) and answers the gateway's `still` with a photo (still.js).
// A `consent` question is shown and answered as on the kiosk (recording.js).
import { attach, expose, md } from '../js/lib/channels.js';
import { makeTestFile } from './testfiles.js';
import { Leg, connect, exposeState, mdTest, params, resetSession, setError, showState } from '../js/lib/leg.js';
import { onStill } from '../js/lib/still.js';
import { setupRecording } from './recording.js';

exposeState();
mdTest.role = 'tablet';
mdTest.stillMessages = []; // every `still` from the gateway
const dataChannels = params.get('dc') === '1';
md.makeBytes = makeTestFile;
if (dataChannels) expose('tablet');

const url = params.get('device');
const procedure = params.get('procedure') || 'mynumber.new';
const codec = params.get('codec');
let conn;

const handlers = {
  hello: (m) => {
    mdTest.hello = m;
    conn.send({ type: 'request', procedure, id: 'request-1' });
  },
  queued: (m) => {
    mdTest.session = m.session;
    mdTest.state = 'requested';
    showState(`queued #${m.position}`);
  },
  assigned: async (m) => {
    resetSession(m);
    const leg = new Leg(conn, m.session, m.ice_servers);
    leg.onRemoteTrack = (track, stream) => { document.getElementById('remote').srcObject = stream; };
    leg.onIceState = (state) => {
      if (state === 'connected' || state === 'completed') leg.everConnected = true;
      if (state === 'disconnected' || state === 'failed') maybeRestart(leg, state);
    };
    if (dataChannels) attach(leg.pc); // before the offer: it needs the data m-line
    await leg.start(codec);
  },
  answer: (m) => mdTest.leg && m.session === mdTest.session && mdTest.leg.onAnswer(m),
  candidate: (m) => mdTest.leg && m.session === mdTest.session && mdTest.leg.onCandidate(m),
  ended: () => { if (mdTest.leg) mdTest.leg.close(); },
  still: (m) => {
    mdTest.stillMessages.push(m);
    if (m.session !== mdTest.session || !dataChannels) return null;
    const leg = mdTest.leg;
    const track = leg && leg.localStream && leg.localStream.getVideoTracks()[0];
    return onStill(m, track);
  },
};

// ICE restart (docs/protocol.md, Media): when the path to the gateway is lost
// the tablet restarts ICE on its one RTCPeerConnection and sends `restart`;
// the session stays the same. "Lost" is iceConnectionState disconnected or
// failed, or nothing received from the gateway for STALL_MS while ICE still
// says connected: Chromium whose interface goes down for a few seconds often
// stays `connected` throughout (seen in test_ice_restart.mjs). If the path is
// still lost RESTART_RETRY_MS after a restart (e.g. it was made while no
// interface was up), it restarts again.
const RESTART_RETRY_MS = 6000;
const STALL_MS = 2000;

function maybeRestart(leg, reason) {
  if (!leg.everConnected || mdTest.ended || leg !== mdTest.leg) return;
  if (leg.pc.signalingState === 'closed') return;
  if (leg.lastRestart && Date.now() - leg.lastRestart < RESTART_RETRY_MS) return;
  leg.restartIce(reason).catch((e) => setError(`restart: ${e && e.stack || e}`));
}

// Inbound RTP packets (audio + video) of the leg, for the stall check.
async function packetsIn(pc) {
  let n = 0;
  (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp') n += r.packetsReceived || 0; });
  return n;
}

let watching = false;
setInterval(async () => {
  const leg = mdTest.leg;
  if (!leg || !leg.everConnected || mdTest.ended || watching) return;
  watching = true;
  try {
    const s = leg.pc.iceConnectionState;
    if (s === 'closed') return;
    const n = await packetsIn(leg.pc);
    const now = Date.now();
    if (leg.packetsIn === undefined || n !== leg.packetsIn) {
      leg.packetsIn = n;
      leg.packetsInAt = now;
    }
    const stalled = now - leg.packetsInAt >= STALL_MS;
    mdTest.stalled = stalled;
    if (s !== 'connected' && s !== 'completed') maybeRestart(leg, `retry (${s})`);
    else if (stalled) maybeRestart(leg, `media stalled ${now - leg.packetsInAt} ms (${s})`);
  } catch (e) {
    setError(`watchdog: ${e && e.stack || e}`);
  } finally {
    watching = false;
  }
}, 500);

// Test hook: restart now, whatever the ICE state.
mdTest.restartIce = () => mdTest.leg && mdTest.leg.restartIce('test');

Object.assign(handlers, setupRecording(() => conn, 'tablet'));
if (!url) setError('no ?device= URL');
else conn = connect(url, handlers);
mdTest.hangup = () => conn.send({ type: 'hangup', session: mdTest.session });
