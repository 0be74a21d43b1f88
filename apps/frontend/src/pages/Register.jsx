import { Link, useNavigate } from 'react-router';
import { register } from '../api.js';
import { Field } from '../components/Field.jsx';
import { Heading } from '../components/Heading.jsx';
import { ErrorNotice } from '../components/Notice.jsx';
import { useCredentialsForm } from '../useCredentialsForm.js';
import { PASSWORD_HINT, USERNAME_HINT, validateRegistration } from '../validation.js';

export function Register() {
  const navigate = useNavigate();
  const form = useCredentialsForm(
    { username: '', password: '' },
    validateRegistration,
    async (values) => {
      const account = await register(values.username, values.password);
      navigate('/login', {
        state: {
          username: account.username,
          notice: `Account ${account.username} created in group ${account.group}. Log in to continue.`,
        },
      });
    },
  );
  const { values, fieldErrors, failure, busy, usernameRef, passwordRef, update, submit } = form;
  const { onSubmit, retryable } = form;

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
