import { useRef, useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { register } from '../api.js';
import { Field } from '../components/Field.jsx';
import { Heading } from '../components/Heading.jsx';
import { ErrorNotice } from '../components/Notice.jsx';
import { PASSWORD_HINT, USERNAME_HINT, validateRegistration } from '../validation.js';

export function Register() {
  const navigate = useNavigate();
  const [values, setValues] = useState({ username: '', password: '' });
  const [fieldErrors, setFieldErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const usernameRef = useRef(null);
  const passwordRef = useRef(null);

  const update = (event) => setValues((v) => ({ ...v, [event.target.name]: event.target.value }));

  async function submit() {
    const errors = validateRegistration(values);
    setFieldErrors(errors);
    setFailure(null);
    if (errors.username) return usernameRef.current?.focus();
    if (errors.password) return passwordRef.current?.focus();

    setBusy(true);
    try {
      const account = await register(values.username, values.password);
      navigate('/login', {
        state: {
          username: account.username,
          notice: `Account ${account.username} created in group ${account.group}. Log in to continue.`,
        },
      });
    } catch (error) {
      setFailure(error);
      setBusy(false);
    }
  }

  const onSubmit = (event) => {
    event.preventDefault();
    submit();
  };

  // Retrying makes sense when the backend was down, not when it refused the input.
  const retryable = failure && (failure.kind !== 'http' || failure.status >= 500);

  return (
    <>
      <Heading>Create an account</Heading>
      {failure && (
        <ErrorNotice onRetry={retryable ? submit : undefined}>
          Registration failed: {failure.message}
        </ErrorNotice>
      )}
      <form onSubmit={onSubmit} noValidate aria-label="Create an account">
        <Field
          id="username"
          label="Username"
          hint={USERNAME_HINT}
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
          hint={PASSWORD_HINT}
          error={fieldErrors.password}
          value={values.password}
          onChange={update}
          autoComplete="new-password"
          inputRef={passwordRef}
          required
        />
        <button type="submit" disabled={busy}>
          {busy ? 'Creating account…' : 'Create account'}
        </button>
      </form>
      <p>
        Already registered? <Link to="/login">Log in</Link>
      </p>
    </>
  );
}
