/** A message people must not miss; role="alert" makes screen readers read it at once. */
export function ErrorNotice({ children, onRetry, retryLabel = 'Try again' }) {
  return (
    <div className="notice notice-error" role="alert">
      <p>{children}</p>
      {onRetry && (
        <button type="button" onClick={onRetry}>
          {retryLabel}
        </button>
      )}
    </div>
  );
}

/** A polite status line (role="status"), e.g. "Account created". */
export function InfoNotice({ children }) {
  return (
    <div className="notice notice-info" role="status">
      <p>{children}</p>
    </div>
  );
}
