// A fake backend at the network boundary (MSW): the app's real fetch calls are answered
// here with the same shapes and status codes as apps/backend.
import { http, HttpResponse } from 'msw';
import { setupServer } from 'msw/node';

export const VERSION = {
  version: '1.4.0',
  commit: '0123456789abcdef0123456789abcdef01234567',
  variant: 'v2',
};

const users = new Map();

export function resetUsers() {
  users.clear();
}

export function addUser(username, password, group = 'alpha') {
  users.set(username, { password, group });
}

const api = (path) => `*/api${path}`;

export const handlers = [
  http.get(api('/health'), () => HttpResponse.json({ status: 'ok' })),
  http.get(api('/version'), () => HttpResponse.json(VERSION)),
  http.post(api('/register'), async ({ request }) => {
    const { username, password } = await request.json();
    if (!/^[a-z0-9_.-]{3,32}$/.test(username ?? '') || (password ?? '').length < 8) {
      return HttpResponse.json({ error: 'invalid username or password' }, { status: 400 });
    }
    if (users.has(username)) {
      return HttpResponse.json({ error: 'username already exists' }, { status: 409 });
    }
    const group = users.size % 2 === 0 ? 'alpha' : 'beta';
    users.set(username, { password, group });
    return HttpResponse.json({ username, group }, { status: 201 });
  }),
  http.post(api('/login'), async ({ request }) => {
    const { username, password } = await request.json();
    const user = users.get(username);
    if (!user || user.password !== password) {
      return HttpResponse.json({ error: 'invalid credentials' }, { status: 401 });
    }
    return HttpResponse.json({ token: `token-for-${username}` });
  }),
  http.get(api('/profile'), ({ request }) => {
    const auth = request.headers.get('Authorization') ?? '';
    const username = auth.replace(/^Bearer token-for-/, '');
    const user = auth.startsWith('Bearer token-for-') && users.get(username);
    if (!user) return HttpResponse.json({ error: 'invalid or expired token' }, { status: 401 });
    return HttpResponse.json({ username, group: user.group, role: 'user' });
  }),
];

export const server = setupServer(...handlers);
