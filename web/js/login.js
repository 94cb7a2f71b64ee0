import { api } from './api.js';

const form = document.getElementById('login');
const error = document.getElementById('error');
const pages = { verifier: '/verifier', auditor: '/auditor.html', admin: '/admin.html' };

api('GET', '/api/me').then((me) => { location.href = pages[me.role]; }).catch(() => {});

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  error.textContent = '';
  const f = new FormData(form);
  try {
    const me = await api('POST', '/api/login', {
      username: f.get('username'), password: f.get('password'), totp: f.get('totp'),
    });
    location.href = pages[me.role];
  } catch (e) {
    const text = {
      credentials_invalid: 'ユーザー名またはパスワードが違います。',
      totp_invalid: 'ワンタイムコードが違うか、使用済みです。',
      account_locked: 'ログイン失敗が続いたため、しばらくロックされています。',
      rate_limited: 'ログインの試行が多すぎます。しばらく待ってからもう一度お試しください。',
    }[e.code];
    error.textContent = text || e.message;
  }
});
