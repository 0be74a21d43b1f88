import { render } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { MemoryRouter } from 'react-router';
import { AppRoutes } from '../App.jsx';
import { SessionProvider } from '../SessionProvider.jsx';

/** Renders the whole app at `path`, optionally already logged in with `token`. */
export function renderApp(path, { token } = {}) {
  if (token) window.sessionStorage.setItem('lab.token', token);
  const user = userEvent.setup();
  const view = render(
    <SessionProvider>
      <MemoryRouter initialEntries={[path]}>
        <AppRoutes />
      </MemoryRouter>
    </SessionProvider>,
  );
  return { user, ...view };
}
