import { screen, within } from '@testing-library/react';
import { http, HttpResponse } from 'msw';
import { describe, expect, it } from 'vitest';
import { addUser, handlers, server, VERSION } from '../test/backend.js';
import { renderApp } from '../test/render.jsx';

const versionHandler = handlers.find((h) => h.info.path === '*/api/version');
const profileHandler = handlers.find((h) => h.info.path === '*/api/profile');

function backendSection() {
  return screen.getByRole('region', { name: 'Backend that answered' });
}

describe('Welcome page', () => {
  it('shows the user, the group, and the variant and short commit of the backend', async () => {
    addUser('alice', 'password1', 'beta');
    renderApp('/welcome', { token: 'token-for-alice' });
    expect(screen.getByRole('heading', { level: 1, name: 'Welcome' })).toHaveFocus();

    const you = await screen.findByRole('region', { name: 'You' });
    expect(you).toHaveTextContent('Hello, alice! You are in group beta.');
    expect(within(you).getByText('user')).toBeInTheDocument();

    const backend = backendSection();
    expect(await within(backend).findByText('v2')).toBeInTheDocument();
    const commit = within(backend).getByText('0123456');
    expect(commit).toHaveAttribute('title', VERSION.commit);
    expect(within(backend).getByText('1.4.0')).toBeInTheDocument();
  });

  it('asks the backend again on request, showing whichever variant answered', async () => {
    addUser('alice', 'password1');
    const { user } = renderApp('/welcome', { token: 'token-for-alice' });
    expect(await within(backendSection()).findByText('v2')).toBeInTheDocument();

    server.use(http.get('*/api/version', () => HttpResponse.json({ ...VERSION, variant: 'v1', commit: 'fedcba9876543210' })));
    await user.click(screen.getByRole('button', { name: 'Ask again' }));
    expect(await within(backendSection()).findByText('v1')).toBeInTheDocument();
    expect(within(backendSection()).getByText('fedcba9')).toBeInTheDocument();
  });

  it('says when the backend is down and recovers on retry', async () => {
    addUser('alice', 'password1');
    server.use(
      http.get('*/api/version', () => HttpResponse.error()),
      http.get('*/api/profile', () => new HttpResponse(null, { status: 503 })),
    );
    const { user } = renderApp('/welcome', { token: 'token-for-alice' });

    const alerts = await screen.findAllByRole('alert');
    expect(alerts.map((a) => a.textContent).join(' ')).toMatch(/profile could not be loaded: The backend is not available right now \(HTTP 503\)/);
    expect(within(backendSection()).getByRole('alert')).toHaveTextContent(/version could not be loaded: The backend could not be reached/);

    server.use(versionHandler, profileHandler);
    for (const button of screen.getAllByRole('button', { name: 'Try again' })) await user.click(button);
    expect(await screen.findByRole('region', { name: 'You' })).toHaveTextContent('You are in group alpha.');
    expect(await within(backendSection()).findByText('v2')).toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });

  it('sends the user back to Login with a message when the token has expired', async () => {
    renderApp('/welcome', { token: 'expired-token' });
    expect(await screen.findByRole('heading', { level: 1, name: 'Log in' })).toBeInTheDocument();
    expect(screen.getByRole('status')).toHaveTextContent('Your session has expired. Please log in again.');
    expect(window.sessionStorage.getItem('lab.token')).toBeNull();
  });

  it('sends a visitor without a session to Login', () => {
    renderApp('/welcome');
    expect(screen.getByRole('heading', { level: 1, name: 'Log in' })).toBeInTheDocument();
    expect(screen.getByRole('status')).toHaveTextContent('Please log in to see your welcome page.');
  });

  it('shows "unknown" for missing version fields', async () => {
    addUser('alice', 'password1');
    server.use(http.get('*/api/version', () => HttpResponse.json({})));
    renderApp('/welcome', { token: 'token-for-alice' });
    expect(await within(backendSection()).findAllByText('unknown')).toHaveLength(3);
  });
});
