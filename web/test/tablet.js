// Test tablet (docs/internals/browser-tests.md): connects to the device
// listener given as ?device=wss://HOST:PORT/ws (the TLS client certificate is
// the browser's business), asks for ?procedure= (default mynumber.new) and, on
// `assigned`, offers audio + video with ?codec= (VP8, H264 or any).
import { Leg, connect, exposeState, mdTest, params, resetSession, setError, showState } from './peer.js';

exposeState();
mdTest.role = 'tablet';

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
    await leg.start(codec);
  },
  answer: (m) => mdTest.leg && m.session === mdTest.session && mdTest.leg.onAnswer(m),
  candidate: (m) => mdTest.leg && m.session === mdTest.session && mdTest.leg.onCandidate(m),
  ended: () => { if (mdTest.leg) mdTest.leg.close(); },
};

if (!url) setError('no ?device= URL');
else conn = connect(url, handlers);
mdTest.hangup = () => conn.send({ type: 'hangup', session: mdTest.session });
