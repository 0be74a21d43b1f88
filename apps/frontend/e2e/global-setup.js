import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildBackend } from './stack.js';

// Builds the real backend once per run, unless BACKEND_BIN names a binary to use.
export default function globalSetup() {
  if (process.env.BACKEND_BIN) return undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-frontend-backend-'));
  process.env.BACKEND_BIN = buildBackend(dir);
  return () => fs.rmSync(dir, { recursive: true, force: true });
}
