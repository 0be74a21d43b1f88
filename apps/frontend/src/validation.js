// The same rules the backend enforces, checked first so people get answers without a round trip.
export const USERNAME_PATTERN = /^[a-z0-9_.-]{3,32}$/;
export const PASSWORD_MIN_LENGTH = 8;

export const USERNAME_HINT = '3 to 32 characters: lower-case letters, digits, dot, dash or underscore.';
export const PASSWORD_HINT = `At least ${PASSWORD_MIN_LENGTH} characters.`;

/** Errors keyed by field name; empty when the registration form may be sent. */
export function validateRegistration({ username, password }) {
  const errors = {};
  if (!username) errors.username = 'Enter a username.';
  else if (!USERNAME_PATTERN.test(username)) errors.username = `Username is not valid. ${USERNAME_HINT}`;
  if (!password) errors.password = 'Enter a password.';
  else if (password.length < PASSWORD_MIN_LENGTH)
    errors.password = `Password is too short. ${PASSWORD_HINT}`;
  return errors;
}

/** Errors keyed by field name; empty when the login form may be sent. */
export function validateLogin({ username, password }) {
  const errors = {};
  if (!username) errors.username = 'Enter your username.';
  if (!password) errors.password = 'Enter your password.';
  return errors;
}
