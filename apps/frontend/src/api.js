// The API client. Every call goes to the relative /api, so the same build works
// behind the Istio gateway, under nginx and through Vite's dev proxy.

export const API_BASE = '/api';

// How long a call may take before the page gives up and says so.
export const DEFAULT_TIMEOUT_MS = 10000;

/** An error the pages can show as it is: `message` is written for people. */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, kind?: 'http' | 'network' | 'timeout' | 'invalid'}} [details]
   */
  constructor(message, { status = 0, kind = 'http' } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.kind = kind;
  }

  get unauthorized() {
    return this.status === 401;
  }
}

const UNREACHABLE =
  'The backend could not be reached. Check that it is running and your connection works, then try again.';

function describeStatus(status) {
  if (status === 502 || status === 503 || status === 504) {
    return `The backend is not available right now (HTTP ${status}). Try again in a moment.`;
  }
  if (status >= 500) {
    return `The backend ran into a problem (HTTP ${status}). Try again in a moment.`;
  }
  return `The request failed (HTTP ${status}).`;
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ApiError(`The backend did not answer within ${Math.round(ms / 1000)} seconds. Try again.`, {
            kind: 'timeout',
          }),
        ),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null; // e.g. an HTML error page from a proxy
  }
}

async function send(path, { method = 'GET', body, token, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  // Resolved against the page's origin: fetch needs an absolute URL outside browsers.
  const url = new URL(API_BASE + path, window.location.origin);
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;

  const exchange = (async () => {
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(UNREACHABLE, { kind: 'network' });
    }
    const data = await readJson(response);
    if (!response.ok) {
      const message = data && typeof data.error === 'string' && data.error ? data.error : describeStatus(response.status);
      throw new ApiError(message, { status: response.status, kind: 'http' });
    }
    if (data === null || typeof data !== 'object') {
      throw new ApiError('The backend sent an answer this page does not understand.', {
        status: response.status,
        kind: 'invalid',
      });
    }
    return data;
  })();
  return withTimeout(exchange, timeoutMs);
}

/** POST /api/register → {username, group} */
export function register(username, password, options) {
  return send('/register', { method: 'POST', body: { username, password }, ...options });
}

/** POST /api/login → the JWT string */
export async function login(username, password, options) {
  const data = await send('/login', { method: 'POST', body: { username, password }, ...options });
  if (typeof data.token !== 'string' || !data.token) {
    throw new ApiError('The backend accepted the login but sent no token.', { kind: 'invalid' });
  }
  return data.token;
}

/** GET /api/profile → {username, group, role}; ApiError with status 401 when the token is missing or expired */
export function profile(token, options) {
  return send('/profile', { token, ...options });
}

/** GET /api/version → {version, commit, variant} */
export function version(options) {
  return send('/version', options);
}

/** The first 7 characters of a commit SHA, like `git log --oneline`. */
export function shortCommit(commit) {
  if (typeof commit !== 'string' || !commit) return 'unknown';
  return /^[0-9a-f]{8,}$/i.test(commit) ? commit.slice(0, 7) : commit;
}
