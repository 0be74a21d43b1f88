import { http, HttpResponse, delay } from 'msw';
import { describe, expect, it } from 'vitest';
import { ApiError, login, profile, register, shortCommit, version } from './api.js';
import { addUser, server, VERSION } from './test/backend.js';

describe('api client', () => {
  it('registers a user and returns the assigned group', async () => {
    await expect(register('alice', 'password1')).resolves.toEqual({ username: 'alice', group: 'alpha' });
  });

  it('sends JSON to the relative /api path', async () => {
    let seen;
    server.use(
      http.post('*/api/register', async ({ request }) => {
        seen = { url: new URL(request.url), type: request.headers.get('content-type'), body: await request.json() };
        return HttpResponse.json({ username: 'bob', group: 'beta' }, { status: 201 });
      }),
    );
    await register('bob', 'password1');
    expect(seen.url.pathname).toBe('/api/register');
    expect(seen.url.origin).toBe(window.location.origin);
    expect(seen.type).toBe('application/json');
    expect(seen.body).toEqual({ username: 'bob', password: 'password1' });
  });

  it("reports the backend's own error message with its status", async () => {
    addUser('alice', 'password1');
    const error = await register('alice', 'password1').catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(409);
    expect(error.kind).toBe('http');
    expect(error.message).toBe('username already exists');
  });

  it('logs in and returns the token', async () => {
    addUser('alice', 'password1');
    await expect(login('alice', 'password1')).resolves.toBe('token-for-alice');
  });

  it('flags invalid credentials as unauthorized', async () => {
    const error = await login('nobody', 'password1').catch((e) => e);
    expect(error.unauthorized).toBe(true);
  });

  it('refuses a login answer without a token', async () => {
    server.use(http.post('*/api/login', () => HttpResponse.json({})));
    await expect(login('alice', 'password1')).rejects.toMatchObject({ kind: 'invalid' });
  });

  it('sends the token as a Bearer header for the profile', async () => {
    addUser('alice', 'password1', 'beta');
    await expect(profile('token-for-alice')).resolves.toEqual({ username: 'alice', group: 'beta', role: 'user' });
    await expect(profile('stale')).rejects.toMatchObject({ status: 401, unauthorized: true });
  });

  it('returns the backend version', async () => {
    await expect(version()).resolves.toEqual(VERSION);
  });

  it('says the backend is unreachable when the connection fails', async () => {
    server.use(http.get('*/api/version', () => HttpResponse.error()));
    const error = await version().catch((e) => e);
    expect(error.kind).toBe('network');
    expect(error.message).toMatch(/could not be reached/);
  });

  it('explains a proxy error page without JSON', async () => {
    server.use(
      http.get('*/api/version', () => new HttpResponse('<html>502 Bad Gateway</html>', { status: 502 })),
    );
    await expect(version()).rejects.toMatchObject({
      status: 502,
      message: expect.stringMatching(/not available right now \(HTTP 502\)/),
    });
  });

  it('explains other server errors and client errors without a message', async () => {
    server.use(http.get('*/api/version', () => new HttpResponse(null, { status: 500 })));
    await expect(version()).rejects.toThrow(/ran into a problem \(HTTP 500\)/);
    server.use(http.get('*/api/version', () => new HttpResponse(null, { status: 404 })));
    await expect(version()).rejects.toThrow('The request failed (HTTP 404).');
  });

  it('refuses a successful answer that is not JSON', async () => {
    server.use(http.get('*/api/version', () => HttpResponse.text('hello')));
    await expect(version()).rejects.toMatchObject({ kind: 'invalid' });
  });

  it('gives up when the backend does not answer in time', async () => {
    server.use(
      http.get('*/api/version', async () => {
        await delay(1000);
        return HttpResponse.json(VERSION);
      }),
    );
    await expect(version({ timeoutMs: 50 })).rejects.toMatchObject({
      kind: 'timeout',
      message: expect.stringMatching(/did not answer/),
    });
  });
});

describe('shortCommit', () => {
  it.each([
    ['0123456789abcdef0123456789abcdef01234567', '0123456'],
    ['unknown', 'unknown'],
    ['abc', 'abc'],
    ['', 'unknown'],
    [undefined, 'unknown'],
  ])('shortens %j to %j', (commit, expected) => {
    expect(shortCommit(commit)).toBe(expected);
  });
});
