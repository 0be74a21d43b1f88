import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The backend that `npm run dev` forwards /api to. The built app always calls the
// relative /api, so the same build works behind the Istio gateway and under nginx.
const backendUrl = process.env.BACKEND_URL || 'http://127.0.0.1:3000';

export default defineConfig({
  base: '/app/',
  plugins: [react()],
  server: {
    proxy: {
      '/api': { target: backendUrl, changeOrigin: true },
    },
  },
  preview: {
    proxy: {
      '/api': { target: backendUrl, changeOrigin: true },
    },
  },
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    sourcemap: false,
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.js'],
    include: ['src/**/*.test.{js,jsx}', 'scripts/**/*.test.{js,mjs}'],
    restoreMocks: true,
    coverage: {
      provider: 'v8',
      include: ['src/**/*.{js,jsx}', 'scripts/**/*.mjs'],
      exclude: ['src/test/**', '**/*.test.*', 'src/main.jsx'],
      reporter: ['text', 'html', 'lcov', 'json-summary'],
      reportsDirectory: 'coverage',
      thresholds: { lines: 80, functions: 80, branches: 70, statements: 80 },
    },
  },
});
