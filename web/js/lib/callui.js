// Client library: the parts of a call screen that the kiosk and the verifier
// console draw alike: the JST clock text, the chat log (bubbles with a
// delivery mark once the gateway's chat_ack came, docs/protocol.md "Data
// channels") with its send form, and the list of file transfers with a
// progress bar each. Each page keeps its own words for the other party and
// for a transfer's name.

import { md } from './channels.js';

export const jstTime = (d = new Date()) =>
  d.toLocaleTimeString('ja-JP', { timeZone: 'Asia/Tokyo', hour: '2-digit', minute: '2-digit' });

// Chat in `log` (an <ol>/<ul>) and sent from `form`/`input`; `peer` names
// the other party under its messages.
export function chatView({ log, form, input, peer }) {
  const bubble = (id, text, dir, ts) => {
    const li = document.createElement('li');
    li.className = `bubble ${dir}`;
    li.dataset.id = id;
    const body = document.createElement('span');
    body.textContent = text;
    const meta = document.createElement('span');
    meta.className = 'meta';
    meta.textContent = `${jstTime(new Date(ts || Date.now()))} ${dir === 'out' ? '送信中' : peer}`;
    li.append(body, meta);
    log.append(li);
    li.scrollIntoView({ block: 'nearest' });
  };
  window.addEventListener('md-chat', (ev) => {
    const d = ev.detail;
    if (d.kind === 'received') bubble(d.id, d.text, 'in', d.ts);
    if (d.kind === 'sent') bubble(d.id, d.text, 'out', d.ts);
    if (d.kind === 'acked') {
      const meta = log.querySelector(`li.out[data-id="${CSS.escape(d.id)}"] .meta`);
      if (meta) meta.textContent = meta.textContent.replace('送信中', '✓ 届きました');
    }
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    md.chat(text);
    input.value = '';
  });
}

// The row of transfer `t` in `list`, made on first use; `label` is what the
// row says (direction and name).
export function transferRow(list, t, label) {
  let li = list.querySelector(`li[data-id="${CSS.escape(t.id)}"]`);
  if (!li) {
    li = document.createElement('li');
    li.dataset.id = t.id;
    const name = document.createElement('span');
    name.className = 'name';
    const bar = document.createElement('progress');
    bar.max = t.size || 1;
    bar.value = 0;
    const state = document.createElement('span');
    state.className = 'state';
    li.append(name, document.createElement('br'), bar, state);
    list.prepend(li);
  }
  li.querySelector('.name').textContent = label;
  li.querySelector('progress').setAttribute('aria-label', `${t.name} の進み具合`);
  return li;
}
