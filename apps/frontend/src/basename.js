/** Vite's base is /app/; the router wants it without the trailing slash. */
export function routerBasename(base) {
  return base.replace(/\/$/, '') || '/';
}
