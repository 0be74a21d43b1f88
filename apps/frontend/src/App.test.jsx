import { render, screen } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { App } from './App.jsx';
import { routerBasename } from './basename.js';
import { ErrorBoundary } from './components/ErrorBoundary.jsx';
import { renderApp } from './test/render.jsx';

describe('App', () => {
  it('starts at Login when nobody is logged in', () => {
    renderApp('/');
    expect(screen.getByRole('heading', { level: 1, name: 'Log in' })).toBeInTheDocument();
  });

  it('starts at Welcome when a session exists', () => {
    renderApp('/', { token: 'token-for-alice' });
    expect(screen.getByRole('heading', { level: 1, name: 'Welcome' })).toBeInTheDocument();
  });

  it('explains an unknown address', async () => {
    const { user } = renderApp('/nope');
    expect(screen.getByRole('heading', { level: 1, name: 'Page not found' })).toBeInTheDocument();
    await user.click(screen.getByRole('link', { name: 'Go to the start page' }));
    expect(screen.getByRole('heading', { level: 1, name: 'Log in' })).toBeInTheDocument();
  });

  it('routes real browser addresses below the base path', () => {
    window.history.pushState({}, '', `${import.meta.env.BASE_URL}register`);
    render(<App />);
    expect(screen.getByRole('heading', { level: 1, name: 'Create an account' })).toBeInTheDocument();
    window.history.pushState({}, '', '/');
  });

  it.each([
    ['/app/', '/app'],
    ['/', '/'],
  ])('turns the Vite base %j into the router basename %j', (base, expected) => {
    expect(routerBasename(base)).toBe(expected);
  });

  it('shows words instead of a blank page when rendering fails', () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    function Broken() {
      throw new Error('boom');
    }
    render(
      <ErrorBoundary>
        <Broken />
      </ErrorBoundary>,
    );
    expect(screen.getByRole('alert')).toHaveTextContent('Something went wrong while showing this page.');
    expect(screen.getByRole('button', { name: 'Reload the page' })).toBeInTheDocument();
  });
});
