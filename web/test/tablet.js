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
import { Leg, connect, exposeState, mdTest, params, resetSession, setError, showState, supervise } from '../js/lib/leg.js';
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
    supervise(leg); // ICE restart when the path is lost (web/js/lib/leg.js)
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

// Test hook: restart now, whatever the ICE state.
mdTest.restartIce = () => mdTest.leg && mdTest.leg.restartIce('test');

Object.assign(handlers, setupRecording(() => conn, 'tablet'));
if (!url) setError('no ?device= URL');
else conn = connect(url, handlers);
mdTest.hangup = () => conn.send({ type: 'hangup', session: mdTest.session });
