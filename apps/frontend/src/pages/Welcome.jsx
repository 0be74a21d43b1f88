import { useCallback } from 'react';
import { Link, Navigate } from 'react-router';
import { profile, shortCommit, version } from '../api.js';
import { Heading } from '../components/Heading.jsx';
import { ErrorNotice } from '../components/Notice.jsx';
import { EXPIRED_MESSAGE, useSession } from '../session.js';
import { useLoad } from '../useLoad.js';

function Profile({ token }) {
  const { signOut } = useSession();
  const loadProfile = useCallback(
    () =>
      profile(token).catch((error) => {
        // Expired or revoked token: Welcome then sends the user to Login, saying why.
        if (error.unauthorized) signOut(EXPIRED_MESSAGE);
        throw error;
      }),
    [token, signOut],
  );
  const { loading, data, error, reload } = useLoad(loadProfile);

  if (loading) return <p role="status">Loading your profile…</p>;
  if (error) {
    return <ErrorNotice onRetry={reload}>Your profile could not be loaded: {error.message}</ErrorNotice>;
  }
  return (
    <section aria-labelledby="you-heading">
      <h2 id="you-heading">You</h2>
      <p className="lead">
        Hello, <strong>{data.username}</strong>! You are in group{' '}
        <strong className={`group group-${data.group}`}>{data.group}</strong>.
      </p>
      <dl>
        <dt>Username</dt>
        <dd>{data.username}</dd>
        <dt>Group</dt>
        <dd>{data.group}</dd>
        {data.role && (
          <>
            <dt>Role</dt>
            <dd>{data.role}</dd>
          </>
        )}
      </dl>
    </section>
  );
}

function Backend() {
  const loadVersion = useCallback(() => version(), []);
  const { loading, data, error, reload } = useLoad(loadVersion);

  let body;
  if (loading) body = <p role="status">Asking the backend which version answered…</p>;
  else if (error) {
    body = (
      <ErrorNotice onRetry={reload}>The backend version could not be loaded: {error.message}</ErrorNotice>
    );
  } else {
    body = (
      <>
        <dl>
          <dt>Variant</dt>
          <dd className={`variant variant-${data.variant}`}>{data.variant || 'unknown'}</dd>
          <dt>Commit</dt>
          <dd>
            <code title={data.commit}>{shortCommit(data.commit)}</code>
          </dd>
          <dt>Version</dt>
          <dd>{data.version || 'unknown'}</dd>
        </dl>
        <button type="button" onClick={reload}>
          Ask again
        </button>
      </>
    );
  }
  return (
    <section aria-labelledby="backend-heading">
      <h2 id="backend-heading">Backend that answered</h2>
      <p className="hint">
        Traffic is split between two backend variants; each request may be answered by a different one.
      </p>
      {body}
    </section>
  );
}

export function Welcome() {
  const { token, endedBecause } = useSession();
  if (!token) {
    const notice = endedBecause ?? 'Please log in to see your welcome page.';
    return <Navigate to="/login" replace state={{ notice }} />;
  }
  return (
    <>
      <Heading>Welcome</Heading>
      <Profile token={token} />
      <Backend />
      <p>
        <Link to="/logout">Log out</Link>
      </p>
    </>
  );
}
