// @vitest-environment node
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { classifyAudit, FAIL, OK, runAudit, UNVERIFIED } from './audit.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = (name) => readFileSync(path.join(here, 'fixtures', name), 'utf8');

describe('classifyAudit', () => {
  it.each([
    ['audit-clean.json', OK, /^OK: npm audit found no high or critical vulnerabilities in 283 dependencies$/],
    ['audit-findings.json', FAIL, /^FAIL: npm audit found 1 high or critical vulnerabilities in 2 dependencies: lodash \(high\)$/],
    ['audit-registry-405.json', UNVERIFIED, /^UNVERIFIED: vulnerability database unreachable \(HTTP 405 from the advisory endpoint: 405 Method Not Allowed/],
    ['audit-connection-refused.json', UNVERIFIED, /^UNVERIFIED: vulnerability database unreachable \(request to .* failed, reason: connect ECONNREFUSED/],
    ['audit-no-lockfile.json', FAIL, /^FAIL: npm audit could not run: ENOLOCK: This command requires an existing lockfile\.$/],
  ])('classifies %s', (name, code, line) => {
    const outcome = classifyAudit({ stdout: fixture(name) });
    expect(outcome.code).toBe(code);
    expect(outcome.line).toMatch(line);
  });

  it('mentions findings below the threshold in an OK line', () => {
    const report = JSON.parse(fixture('audit-clean.json'));
    report.metadata.vulnerabilities.moderate = 2;
    expect(classifyAudit({ stdout: JSON.stringify(report) }).line).toMatch(/\(2 low or moderate, below the threshold\)$/);
  });

  it('never passes without a report from the database', () => {
    expect(classifyAudit({ stdout: '', stderr: 'npm error something\n' })).toEqual({
      code: UNVERIFIED,
      line: 'UNVERIFIED: vulnerability database unreachable (npm audit printed no report: npm error something)',
    });
    expect(classifyAudit({ stdout: 'null' }).code).toBe(UNVERIFIED);
    expect(classifyAudit({ stdout: '{"auditReportVersion": 2}' }).code).toBe(UNVERIFIED);
  });
});

function closedPort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

describe('audit script', () => {
  it('exits 3 with UNVERIFIED when the registry cannot be reached', async () => {
    const port = await closedPort();
    const run = spawnSync(process.execPath, [path.join(here, 'audit.mjs')], {
      cwd: path.join(here, '..'),
      encoding: 'utf8',
      timeout: 60000,
      env: { ...process.env, npm_config_registry: `http://127.0.0.1:${port}/`, npm_config_fetch_retries: '0' },
    });
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/^UNVERIFIED: vulnerability database unreachable \(.*ECONNREFUSED/m);
  });

  it('says so when npm audit hangs past its deadline', () => {
    const outcome = runAudit({ cwd: path.join(here, '..'), timeoutMs: 1 });
    expect(outcome).toEqual({ code: UNVERIFIED, line: 'UNVERIFIED: vulnerability database unreachable (npm audit timed out after 0 s)' });
  });

  it('reports an unreachable registry from runAudit too', async () => {
    const port = await closedPort();
    const outcome = runAudit({
      cwd: path.join(here, '..'),
      env: { ...process.env, npm_config_registry: `http://127.0.0.1:${port}/`, npm_config_fetch_retries: '0' },
    });
    expect(outcome.code).toBe(UNVERIFIED);
  });
});
