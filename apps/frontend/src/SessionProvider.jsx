import { useCallback, useMemo, useState } from 'react';
import { SessionContext, loadToken, saveToken } from './session.js';

export function SessionProvider({ children }) {
  const [token, setToken] = useState(loadToken);

  const signIn = useCallback((newToken) => {
    saveToken(newToken);
    setToken(newToken);
  }, []);

  const signOut = useCallback(() => {
    saveToken(null);
    setToken(null);
  }, []);

  const value = useMemo(() => ({ token, signIn, signOut }), [token, signIn, signOut]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
