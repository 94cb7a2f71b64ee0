// Test verifier, a thin page on the client library (docs/internals/browser-tests.md;
// served only with web.test_pages). The test has logged in
// through POST /api/login, so the __Host-md_session cookie is set; this page opens
// the staff WebSocket on its own origin, shows the queue with an accept
// button per entry, and on `assigned` offers audio + video with ?codec=.
// ?counter=1 also decodes the frame counter of the remote video (counter.js).
// ?dc=1 also opens the `chat` and `file` data channels (datachannels.js,
// window.md); mdTest.requestStill() asks the tablet for a photo (`still`).
// mdTest.record('start'|'stop') and the record buttons drive recording (recording.js).
import { watch } from './counter.js';
import { attach, expose, md } from '../js/lib/channels.js';
import { makeTestFile } from './testfiles.js';
import { Leg, connect, exposeState, mdTest, params, resetSession } from '../js/lib/leg.js';
import { setupRecording } from './recording.js';

exposeState();
mdTest.role = 'verifier';
mdTest.counter = {};
mdTest.quality = {}; // leg name -> stats of the last `quality` message for that leg
mdTest.stillMessages = []; // every `still` from the gateway (the acknowledgement)
const dataChannels = params.get('dc') === '1';
md.makeBytes = makeTestFile;
if (dataChannels) expose('verifier');

const codec = params.get('codec');
const video = document.getElementById('remote');
let conn;

function renderQueue(entries) {
  mdTest.queue = entries;
  const rows = entries.map((e) => {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.textContent = `${e.post_office} ${e.procedure} ${e.waiting_seconds}s`;
    const button = document.createElement('button');
    button.className = 'accept';
    button.dataset.session = e.session;
    button.textContent = 'accept';
    button.addEventListener('click', () => {
      conn.send({ type: 'accept', session: e.session, id: `accept-${e.session}` });
    });
    tr.append(td, button);
    return tr;
  });
  document.getElementById('queue').replaceChildren(...rows);
}

const handlers = {
  hello: (m) => { mdTest.hello = m; },
  queue: (m) => renderQueue(m.entries),
  assigned: async (m) => {
    resetSession(m);
    const leg = new Leg(conn, m.session, m.ice_servers);
    leg.onRemoteTrack = (track, stream) => { video.srcObject = stream; };
    if (dataChannels) attach(leg.pc); // before the offer: it needs the data m-line
    await leg.start(codec);
  },
  answer: (m) => mdTest.leg && m.session === mdTest.session && mdTest.leg.onAnswer(m),
  candidate: (m) => mdTest.leg && m.session === mdTest.session && mdTest.leg.onCandidate(m),
  ended: () => { if (mdTest.leg) mdTest.leg.close(); },
  quality: (m) => { if (m.session === mdTest.session) mdTest.quality[m.leg] = m.stats; },
  still: (m) => { mdTest.stillMessages.push(m); },
};

Object.assign(handlers, setupRecording(() => conn, 'verifier'));
conn = connect(`wss://${location.host}/ws`, handlers);
mdTest.outcome = (result) => conn.send({ type: 'outcome', session: mdTest.session, result });
mdTest.hangup = () => conn.send({ type: 'hangup', session: mdTest.session });
mdTest.requestStill = () => conn.send({ type: 'still', session: mdTest.session });
if (params.get('counter') === '1') watch(video, document.getElementById('frame'), mdTest.counter);
