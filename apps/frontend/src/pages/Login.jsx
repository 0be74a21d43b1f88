import { useRef, useState } from 'react';
import { Link, useLocation, useNavigate } from 'react-router';
import { login } from '../api.js';
import { Field } from '../components/Field.jsx';
import { Heading } from '../components/Heading.jsx';
import { ErrorNotice, InfoNotice } from '../components/Notice.jsx';
import { useSession } from '../session.js';
import { validateLogin } from '../validation.js';

export function Login() {
  const navigate = useNavigate();
  const location = useLocation();
  const { signIn } = useSession();
  const notice = location.state?.notice;
  const [values, setValues] = useState({ username: location.state?.username ?? '', password: '' });
  const [fieldErrors, setFieldErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const usernameRef = useRef(null);
  const passwordRef = useRef(null);

  const update = (event) => setValues((v) => ({ ...v, [event.target.name]: event.target.value }));

  async function submit() {
    const errors = validateLogin(values);
    setFieldErrors(errors);
    setFailure(null);
    if (errors.username) return usernameRef.current?.focus();
    if (errors.password) return passwordRef.current?.focus();

    setBusy(true);
    try {
      const token = await login(values.username, values.password);
      signIn(token);
      navigate('/welcome', { replace: true });
    } catch (error) {
      setFailure(error);
      setBusy(false);
    }
  }

  const onSubmit = (event) => {
    event.preventDefault();
    submit();
  };

  const retryable = failure && (failure.kind !== 'http' || failure.status >= 500);
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
