import { useCallback, useMemo, useState } from 'react';
import { SessionContext, loadToken, saveToken } from './session.js';

export function SessionProvider({ children }) {
  const [session, setSession] = useState(() => ({ token: loadToken(), endedBecause: null }));

  const signIn = useCallback((token) => {
    saveToken(token);
    setSession({ token, endedBecause: null });
  }, []);

  const signOut = useCallback((reason = null) => {
    saveToken(null);
    setSession({ token: null, endedBecause: reason });
  }, []);

  const value = useMemo(() => ({ ...session, signIn, signOut }), [session, signIn, signOut]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
