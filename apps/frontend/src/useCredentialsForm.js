import { useRef, useState } from 'react';

/**
 * The state and submit flow both credential forms (Register, Login) share: field values,
 * client-side validation that focuses the first invalid field, a busy flag, and the
 * failure to show. `send(values)` does the request and what follows a success; a thrown
 * error becomes `failure`.
 */
export function useCredentialsForm(initial, validate, send) {
  const [values, setValues] = useState(initial);
  const [fieldErrors, setFieldErrors] = useState({});
  const [failure, setFailure] = useState(null);
  const [busy, setBusy] = useState(false);
  const usernameRef = useRef(null);
  const passwordRef = useRef(null);

  const update = (event) => setValues((v) => ({ ...v, [event.target.name]: event.target.value }));

  async function submit() {
    const errors = validate(values);
    setFieldErrors(errors);
    setFailure(null);
    if (errors.username) return usernameRef.current?.focus();
    if (errors.password) return passwordRef.current?.focus();

    setBusy(true);
    try {
      await send(values);
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
  const retryable = Boolean(failure) && (failure.kind !== 'http' || failure.status >= 500);

  return { values, fieldErrors, failure, busy, usernameRef, passwordRef, update, submit, onSubmit, retryable };
}
