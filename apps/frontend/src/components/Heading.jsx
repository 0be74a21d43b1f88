import { useEffect, useRef } from 'react';

/** The page's h1, focused when the page opens so screen readers announce the new page. */
export function Heading({ children }) {
  const ref = useRef(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}
