import { createContext, useContext } from 'react';

// The token lives in sessionStorage: it survives a reload but not closing the tab,
// which suits shared workshop laptops.
const TOKEN_KEY = 'lab.token';

export function loadToken() {
  try {
    return window.sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: the user simply has to log in again
  }
}

export function saveToken(token) {
  try {
    if (token) window.sessionStorage.setItem(TOKEN_KEY, token);
    else window.sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the session lasts as long as the page
  }
}

/**
 * token: the JWT or null; endedBecause: why the last session ended, when the app ended it
 * (shown on the Login page); signOut(reason?) forgets the token.
 * @type {import('react').Context<{token: string|null, endedBecause: string|null,
 *   signIn: (t: string) => void, signOut: (reason?: string) => void} | null>}
 */
export const SessionContext = createContext(null);

export function useSession() {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession must be used inside <SessionProvider>');
  return session;
}

// Messages the Login page shows when another page sends the user there.
export const EXPIRED_MESSAGE = 'Your session has expired. Please log in again.';
