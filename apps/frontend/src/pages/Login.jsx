import { Link, useLocation, useNavigate } from 'react-router';
import { login } from '../api.js';
import { Field } from '../components/Field.jsx';
import { Heading } from '../components/Heading.jsx';
import { ErrorNotice, InfoNotice } from '../components/Notice.jsx';
import { useSession } from '../session.js';
import { useCredentialsForm } from '../useCredentialsForm.js';
import { validateLogin } from '../validation.js';

export function Login() {
  const navigate = useNavigate();
  const location = useLocation();
  const { signIn } = useSession();
  const notice = location.state?.notice;
  const form = useCredentialsForm(
    { username: location.state?.username ?? '', password: '' },
    validateLogin,
    async (values) => {
      signIn(await login(values.username, values.password));
      navigate('/welcome', { replace: true });
    },
  );
  const { values, fieldErrors, failure, busy, usernameRef, passwordRef, update, submit } = form;
  const { onSubmit, retryable } = form;
  const message =
    failure?.status === 401 ? 'The username or password is not correct.' : failure?.message;

  return (
    <>
      <Heading>Log in</Heading>
      {notice && !failure && <InfoNotice>{notice}</InfoNotice>}
      {failure && (
        <ErrorNotice onRetry={retryable ? submit : undefined}>Login failed: {message}</ErrorNotice>
      )}
      <form onSubmit={onSubmit} noValidate aria-label="Log in">
        <Field
          id="username"
          label="Username"
          error={fieldErrors.username}
          value={values.username}
          onChange={update}
          autoComplete="username"
          autoCapitalize="none"
          spellCheck="false"
          inputRef={usernameRef}
          required
        />
        <Field
          id="password"
          label="Password"
          type="password"
          error={fieldErrors.password}
          value={values.password}
          onChange={update}
          autoComplete="current-password"
          inputRef={passwordRef}
          required
        />
        <button type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
      <p>
        New here? <Link to="/register">Create an account</Link>
      </p>
    </>
  );
}
