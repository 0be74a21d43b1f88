import path from 'node:path';
import { expect, test } from '@playwright/test';
import { SHORT_COMMIT, Stack, startImageNginx, VARIANT } from './stack.js';

let stack;

test.describe.configure({ mode: 'serial' });

test.beforeAll(async () => {
  stack = await new Stack({ backendBinary: process.env.BACKEND_BIN }).start();
});

// The logs of redis, the backend and nginx end up in test-results/stack-logs/.
test.afterAll(async ({}, testInfo) => { // eslint-disable-line no-empty-pattern
  await stack?.close(path.join(testInfo.project.outputDir, 'stack-logs'));
});

// Uncaught exceptions and unhandled promise rejections in the page fail the test.
let pageErrors = [];
test.beforeEach(({ page }) => {
  pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
});
test.afterEach(() => {
  expect(pageErrors, 'errors thrown in the page').toEqual([]);
});

const password = 'correct-horse-battery';
const uniqueName = (prefix) => `${prefix}_${Date.now().toString(36)}${Math.floor(Math.random() * 1000)}`;

async function tokenFor(request, username) {
  await request.post(`${stack.baseUrl}/api/register`, { data: { username, password } });
  const login = await request.post(`${stack.baseUrl}/api/login`, { data: { username, password } });
  expect(login.status()).toBe(200);
  return (await login.json()).token;
}

async function openWithToken(page, token, path) {
  // Runs in the page, before the app starts.
  await page.addInitScript((value) => globalThis.sessionStorage.setItem('lab.token', value), token);
  await page.goto(`${stack.baseUrl}${path}`);
}

test('nginx serves the build: SPA fallback, cache rules and the probe path', async ({ request }) => {
  const health = await request.get(`${stack.baseUrl}/app/healthz`);
  expect(await health.text()).toBe('ok\n');

  const index = await request.get(`${stack.baseUrl}/app/`);
  expect(index.headers()['cache-control']).toBe('no-store');
  const html = await index.text();
  const asset = html.match(/\/app\/assets\/[\w.-]+\.js/)[0];

  const fallback = await request.get(`${stack.baseUrl}/app/welcome`);
  expect(fallback.status()).toBe(200);
  expect(fallback.headers()['cache-control']).toBe('no-store');
  expect(await fallback.text()).toBe(html);

  const bundle = await request.get(`${stack.baseUrl}${asset}`);
  expect(bundle.status()).toBe(200);
  expect(bundle.headers()['content-type']).toMatch(/javascript/);
  expect(bundle.headers()['cache-control']).toBe('public, max-age=31536000, immutable');

  const missing = await request.get(`${stack.baseUrl}/app/assets/missing-123.js`);
  expect(missing.status()).toBe(404);

  const bare = await request.get(`${stack.baseUrl}/app`, { maxRedirects: 0 });
  expect(bare.status()).toBe(301);
  expect(bare.headers().location).toBe('/app/');
});

test("the image's nginx config (port 8080 in the container) serves the same app", async ({ request }) => {
  const nginx = await startImageNginx(stack.workDir);
  try {
    const root = await request.get(`${nginx.baseUrl}/`, { maxRedirects: 0 });
    expect(root.status()).toBe(302);
    expect(root.headers().location).toBe('/app/');
    const page = await request.get(`${nginx.baseUrl}/app/login`);
    expect(page.status()).toBe(200);
    expect(page.headers()['cache-control']).toBe('no-store');
    expect(await page.text()).toContain('<div id="root"></div>');
    expect((await request.get(`${nginx.baseUrl}/app/healthz`)).status()).toBe(200);
  } finally {
    await nginx.stop();
  }
});

test('register → login → welcome shows group, variant and commit → logout', async ({ page }, testInfo) => {
  const username = uniqueName('e2e');
  await page.goto(`${stack.baseUrl}/app/`);
  await expect(page.getByRole('heading', { level: 1, name: 'Log in' })).toBeVisible();

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Register' }).click();
  await expect(page).toHaveURL(/\/app\/register$/);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();

  const created = page.getByRole('status');
  await expect(created).toContainText(`Account ${username} created in group`);
  const group = (await created.textContent()).match(/in group (alpha|beta)/)[1];
  await expect(page.getByLabel('Username')).toHaveValue(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();

  await expect(page).toHaveURL(/\/app\/welcome$/);
  const you = page.getByRole('region', { name: 'You' });
  await expect(you).toContainText(`Hello, ${username}! You are in group ${group}.`);
  const backend = page.getByRole('region', { name: 'Backend that answered' });
  await expect(backend.locator('dd').nth(0)).toHaveText(VARIANT);
  await expect(backend.locator('dd').nth(1)).toHaveText(SHORT_COMMIT);
  // A stable path for people and CI artifacts: test-results/welcome.png.
  const screenshot = path.join(testInfo.project.outputDir, 'welcome.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  await testInfo.attach('welcome page', { path: screenshot, contentType: 'image/png' });

  // A reload keeps the session (sessionStorage) and is served by the SPA fallback.
  await page.reload();
  await expect(you).toContainText(`You are in group ${group}.`);

  await page.getByRole('main').getByRole('link', { name: 'Log out' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Logged out' })).toBeVisible();
  await expect(page.getByRole('status')).toHaveText('You have been logged out.');
  await page.goto(`${stack.baseUrl}/app/welcome`);
  await expect(page.getByRole('heading', { level: 1, name: 'Log in' })).toBeVisible();
  await expect(page.getByRole('status')).toHaveText('Please log in to see your welcome page.');
});

test('a token the backend refuses sends the user to Login with a message', async ({ page, request }) => {
  const token = await tokenFor(request, uniqueName('stale'));
  await openWithToken(page, `${token.slice(0, -4)}AAAA`, '/app/welcome');
  await expect(page.getByRole('heading', { level: 1, name: 'Log in' })).toBeVisible();
  await expect(page.getByRole('status')).toHaveText('Your session has expired. Please log in again.');
});

test('says so in words when the backend is down, and recovers on retry', async ({ page, request }) => {
  const token = await tokenFor(request, uniqueName('outage'));
  await stack.stopBackend();
  try {
    await openWithToken(page, token, '/app/welcome');
    await expect(page.getByRole('alert').first()).toContainText('The backend is not available right now (HTTP 502)');
    await expect(page.getByRole('button', { name: 'Try again' })).toHaveCount(2);
  } finally {
    await stack.startBackend();
  }
  await page.getByRole('button', { name: 'Try again' }).first().click();
  await page.getByRole('button', { name: 'Try again' }).click();
  await expect(page.getByRole('region', { name: 'You' })).toContainText('You are in group');
  await expect(page.getByRole('region', { name: 'Backend that answered' })).toContainText(VARIANT);
  await expect(page.getByRole('alert')).toHaveCount(0);
});
