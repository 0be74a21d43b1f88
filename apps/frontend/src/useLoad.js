import { useCallback, useEffect, useState } from 'react';

/**
 * Runs `load` (a stable async function) when the component mounts and on every reload().
 * Results of an outdated attempt are dropped, so a slow answer never overwrites a newer one.
 */
export function useLoad(load) {
  const [attempt, setAttempt] = useState(0);
  const [result, setResult] = useState({ attempt: -1 });

  useEffect(() => {
    let current = true;
    load().then(
      (data) => current && setResult({ attempt, data }),
      (error) => current && setResult({ attempt, error }),
    );
    return () => {
      current = false;
    };
  }, [load, attempt]);

  const reload = useCallback(() => setAttempt((n) => n + 1), []);
  const settled = result.attempt === attempt;
  return {
    loading: !settled,
    data: settled ? result.data : undefined,
    error: settled ? result.error : undefined,
    reload,
  };
}
