import '@testing-library/jest-dom/vitest';
import { cleanup } from '@testing-library/react';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { resetUsers, server } from './backend.js';

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
beforeEach(() => {
  resetUsers();
  globalThis.window?.sessionStorage.clear(); // no window in node-environment tests
});
afterEach(() => {
  cleanup();
  server.resetHandlers();
});
afterAll(() => server.close());
