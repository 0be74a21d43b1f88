import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { addUser } from '../test/backend.js';
import { renderApp } from '../test/render.jsx';

describe('Logout page', () => {
  it('forgets the token and offers to log in again', async () => {
    addUser('alice', 'password1');
    const { user } = renderApp('/welcome', { token: 'token-for-alice' });
    await screen.findByText(/You are in group/);

    await user.click(screen.getAllByRole('link', { name: 'Log out' })[0]);
    expect(screen.getByRole('heading', { level: 1, name: 'Logged out' })).toBeInTheDocument();
    expect(screen.getByRole('status')).toHaveTextContent('You have been logged out.');
    expect(window.sessionStorage.getItem('lab.token')).toBeNull();
    expect(screen.getByRole('navigation', { name: 'Main' })).toHaveTextContent('Log in');

    await user.click(screen.getByRole('link', { name: 'Log in again' }));
    expect(screen.getByRole('heading', { level: 1, name: 'Log in' })).toBeInTheDocument();
  });
});
