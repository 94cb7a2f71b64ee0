// Recording on the test pages (docs/protocol.md "Recording"): every
// `recording` state is kept in mdTest.recording and shown as an indicator
// (録画中 while it runs); on the tablet a `consent` shows the question in
// Japanese with 同意する / 同意しない, and mdTest.consent(given) answers it
// as a test would click.  The verifier's page gets record start/stop buttons
// and mdTest.record(action).  The kiosk and console pages carry their own.
import { mdTest } from '../js/lib/leg.js';

const LABELS = {
  asking: '録画への同意を確認しています',
  consented: '同意済み（通話がつながると録画します）',
  on: '● 録画中',
  stopped: '録画停止',
  refused: '録画に同意されませんでした（録画していません）',
  failed: '録画できませんでした',
};

function indicator() {
  let e = document.getElementById('recording');
  if (!e) {
    e = document.createElement('p');
    e.id = 'recording';
    e.setAttribute('role', 'status');
    document.body.prepend(e);
  }
  return e;
}

export function setupRecording(conn, role) {
  mdTest.recording = { states: [], state: null, consentAsked: 0 };
  const handlers = {
    recording: (m) => {
      if (m.session !== mdTest.session) return;
      mdTest.recording.states.push(m.state);
      mdTest.recording.state = m.state;
      const e = indicator();
      e.textContent = LABELS[m.state] || m.state;
      e.dataset.state = m.state;
      if (m.state !== 'asking') document.getElementById('consent')?.remove();
    },
  };
  if (role === 'tablet') {
    mdTest.consent = (given) =>
      conn().send({ type: 'consent', session: mdTest.session, given, id: `consent-${given}` });
    handlers.consent = (m) => {
      if (m.session !== mdTest.session) return;
      mdTest.recording.consentAsked++;
      document.getElementById('consent')?.remove();
      const box = document.createElement('div');
      box.id = 'consent';
      box.setAttribute('role', 'dialog');
      const q = document.createElement('p');
      q.textContent = 'この確認の様子を録画してよろしいですか。お客さまの同意を確認してください。';
      const yes = document.createElement('button');
      yes.textContent = '同意する';
      yes.addEventListener('click', () => { mdTest.consent(true); box.remove(); });
      const no = document.createElement('button');
      no.textContent = '同意しない';
      no.addEventListener('click', () => { mdTest.consent(false); box.remove(); });
      box.append(q, yes, no);
      document.body.prepend(box);
    };
  } else {
    mdTest.record = (action) =>
      conn().send({ type: 'record', session: mdTest.session, action, id: `record-${action}` });
    const bar = document.createElement('p');
    for (const [action, label] of [['start', '録画開始'], ['stop', '録画停止']]) {
      const b = document.createElement('button');
      b.className = `record-${action}`;
      b.textContent = label;
      b.addEventListener('click', () => mdTest.record(action));
      bar.append(b);
    }
    document.body.prepend(bar);
  }
  return handlers;
}
