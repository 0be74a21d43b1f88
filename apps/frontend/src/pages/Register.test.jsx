import { screen } from '@testing-library/react';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { addUser, handlers, server } from '../test/backend.js';
import { renderApp } from '../test/render.jsx';

const registerHandler = handlers.find((h) => h.info.path === '*/api/register');

async function fillAndSubmit(user, username, password) {
  if (username) await user.type(screen.getByLabelText('Username'), username);
  if (password) await user.type(screen.getByLabelText('Password'), password);
  await user.click(screen.getByRole('button', { name: 'Create account' }));
}

describe('Register page', () => {
  it('has labelled fields with their hints', () => {
    renderApp('/register');
    expect(screen.getByRole('heading', { level: 1, name: 'Create an account' })).toHaveFocus();
    expect(screen.getByLabelText('Username')).toHaveAccessibleDescription(/3 to 32 characters/);
    expect(screen.getByLabelText('Password')).toHaveAccessibleDescription('At least 8 characters.');
  });

  it('creates the account and sends the user to Login with a message', async () => {
    const { user } = renderApp('/register');
    await fillAndSubmit(user, 'alice', 'password1');
    expect(await screen.findByRole('heading', { name: 'Log in' })).toBeInTheDocument();
    expect(screen.getByRole('status')).toHaveTextContent('Account alice created in group alpha. Log in to continue.');
    expect(screen.getByLabelText('Username')).toHaveValue('alice');
  });

  it('marks invalid fields and announces why, without calling the backend', async () => {
    let called = false;
    server.use(
      http.post('*/api/register', () => {
        called = true;
        return HttpResponse.json({}, { status: 500 });
      }),
    );
    const { user } = renderApp('/register');
    await fillAndSubmit(user, 'Al', 'short');
    const username = screen.getByLabelText('Username');
    expect(username).toHaveAttribute('aria-invalid', 'true');
    expect(username).toHaveAccessibleDescription(/Username is not valid/);
    expect(username).toHaveFocus();
    expect(screen.getByLabelText('Password')).toHaveAccessibleDescription(/Password is too short/);
    expect(called).toBe(false);
  });

  it('asks for a missing password and focuses it', async () => {
    const { user } = renderApp('/register');
    await fillAndSubmit(user, 'alice', '');
    expect(screen.getByLabelText('Password')).toHaveFocus();
    expect(screen.getByLabelText('Password')).toHaveAccessibleDescription(/Enter a password/);
    expect(screen.getByLabelText('Username')).not.toHaveAttribute('aria-invalid');
  });

  it("shows the backend's refusal when the name is taken, with no retry button", async () => {
    addUser('alice', 'password1');
    const { user } = renderApp('/register');
    await fillAndSubmit(user, 'alice', 'password1');
    expect(await screen.findByRole('alert')).toHaveTextContent('Registration failed: username already exists');
    expect(screen.queryByRole('button', { name: 'Try again' })).not.toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Create account' })).toBeEnabled();
  });

  it('says when the backend is down and lets the user retry', async () => {
    server.use(http.post('*/api/register', () => HttpResponse.error()));
    const { user } = renderApp('/register');
    await fillAndSubmit(user, 'alice', 'password1');
    expect(await screen.findByRole('alert')).toHaveTextContent(/Registration failed: The backend could not be reached/);

    server.use(registerHandler); // the backend is back
    await user.click(screen.getByRole('button', { name: 'Try again' }));
    expect(await screen.findByRole('heading', { name: 'Log in' })).toBeInTheDocument();
  });
});
