import { screen } from '@testing-library/react';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { addUser, handlers, server } from '../test/backend.js';
import { renderApp } from '../test/render.jsx';

const loginHandler = handlers.find((h) => h.info.path === '*/api/login');

async function logIn(user, username, password) {
  if (username) await user.type(screen.getByLabelText('Username'), username);
  if (password) await user.type(screen.getByLabelText('Password'), password);
  await user.click(screen.getByRole('button', { name: 'Log in' }));
}

describe('Login page', () => {
  it('logs in, keeps the token for the session and opens Welcome', async () => {
    addUser('alice', 'password1', 'beta');
    const { user } = renderApp('/login');
    expect(screen.getByRole('heading', { level: 1, name: 'Log in' })).toHaveFocus();
    await logIn(user, 'alice', 'password1');
    expect(await screen.findByRole('heading', { level: 1, name: 'Welcome' })).toBeInTheDocument();
    expect(window.sessionStorage.getItem('lab.token')).toBe('token-for-alice');
    expect(await screen.findByText(/You are in group/)).toHaveTextContent('Hello, alice! You are in group beta.');
  });

  it('says the credentials are wrong on 401', async () => {
    addUser('alice', 'password1');
    const { user } = renderApp('/login');
    await logIn(user, 'alice', 'wrong-password');
    expect(await screen.findByRole('alert')).toHaveTextContent('Login failed: The username or password is not correct.');
    expect(screen.queryByRole('button', { name: 'Try again' })).not.toBeInTheDocument();
    expect(window.sessionStorage.getItem('lab.token')).toBeNull();
  });

  it('asks for both fields before calling the backend', async () => {
    const { user } = renderApp('/login');
    await logIn(user, '', '');
    expect(screen.getByLabelText('Username')).toHaveAccessibleDescription('Enter your username.');
    expect(screen.getByLabelText('Username')).toHaveFocus();
    expect(screen.getByLabelText('Password')).toHaveAccessibleDescription('Enter your password.');
    await user.type(screen.getByLabelText('Username'), 'alice');
    await user.click(screen.getByRole('button', { name: 'Log in' }));
    expect(screen.getByLabelText('Password')).toHaveFocus();
  });

  it('says when the backend fails and lets the user retry', async () => {
    addUser('alice', 'password1');
    server.use(http.post('*/api/login', () => new HttpResponse('Bad Gateway', { status: 502 })));
    const { user } = renderApp('/login');
    await logIn(user, 'alice', 'password1');
    expect(await screen.findByRole('alert')).toHaveTextContent(/not available right now \(HTTP 502\)/);

    server.use(loginHandler);
    await user.click(screen.getByRole('button', { name: 'Try again' }));
    expect(await screen.findByRole('heading', { level: 1, name: 'Welcome' })).toBeInTheDocument();
  });
});
