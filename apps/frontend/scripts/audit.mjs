#!/usr/bin/env node
// `npm audit --audit-level=high` with the exit codes of docs/CONTRACTS.md:
//   0  OK: ...            the advisory database was consulted; nothing high or critical
//   1  FAIL: ...          high or critical findings, or npm audit could not run at all
//   3  UNVERIFIED: vulnerability database unreachable (...)
//   2  ERROR: ...         npm itself is missing or cannot start
// npm itself exits 1 both for findings and for an unreachable registry, so we read its
// JSON report instead of its exit code.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const OK = 0;
export const FAIL = 1;
export const UNVERIFIED = 3;
export const ERROR = 2; // the audit could not run at all (npm missing)

const NETWORK_HINTS =
  /request to .* failed|ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|socket hang up|audit endpoint|network/i;

const unverified = (reason) => ({
  code: UNVERIFIED,
  line: `UNVERIFIED: vulnerability database unreachable (${reason})`,
});

function lastLine(text) {
  const lines = String(text ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.at(-1) ?? '';
}

/**
 * Decides the outcome from what `npm audit --json` printed.
 * @param {{stdout: string, stderr?: string}} run
 * @returns {{code: number, line: string}}
 */
export function classifyAudit({ stdout, stderr = '' }) {
  let report;
  try {
    report = JSON.parse(stdout);
  } catch {
    return unverified(`npm audit printed no report: ${lastLine(stderr) || 'no output'}`);
  }
  if (report === null || typeof report !== 'object') {
    return unverified('npm audit printed no report');
  }

  if (report.error) {
    const code = report.error.code;
    const message = report.message || report.error.summary || code || 'unknown error';
    const fromNetwork =
      report.statusCode !== undefined || report.uri !== undefined || NETWORK_HINTS.test(`${message} ${code ?? ''}`);
    if (fromNetwork) {
      const status = report.statusCode ? `HTTP ${report.statusCode} from the advisory endpoint: ` : '';
      return unverified(`${status}${message}`);
    }
    // e.g. ENOLOCK: the project is broken, not the network.
    return { code: FAIL, line: `FAIL: npm audit could not run: ${[code, message].filter(Boolean).join(': ')}` };
  }

  const counts = report.metadata?.vulnerabilities;
  if (report.auditReportVersion === undefined || !counts) {
    return unverified('npm audit returned a report without advisory data');
  }

  const serious = Object.entries(report.vulnerabilities ?? {})
    .filter(([, v]) => v.severity === 'high' || v.severity === 'critical')
    .map(([name, v]) => `${name} (${v.severity})`);
  const high = (counts.high ?? 0) + (counts.critical ?? 0);
  const dependencies = report.metadata.dependencies?.total;
  const checked = dependencies === undefined ? '' : ` in ${dependencies} dependencies`;
  if (high > 0) {
    const names = serious.length ? `: ${serious.join(', ')}` : '';
    return { code: FAIL, line: `FAIL: npm audit found ${high} high or critical vulnerabilities${checked}${names}` };
  }
  const minor = (counts.low ?? 0) + (counts.moderate ?? 0) + (counts.info ?? 0);
  const note = minor ? ` (${minor} low or moderate, below the threshold)` : '';
  return { code: OK, line: `OK: npm audit found no high or critical vulnerabilities${checked}${note}` };
}

/** Runs npm audit in `cwd` and returns the outcome; never throws. */
export function runAudit({ cwd, extraArgs = [], env = process.env, timeoutMs = 120000 } = {}) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['audit', '--audit-level=high', '--json', ...extraArgs], {
    cwd,
    env,
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error?.code === 'ETIMEDOUT') {
    return unverified(`npm audit timed out after ${Math.round(timeoutMs / 1000)} s`);
  }
  if (result.error?.code === 'ENOENT') {
    return {
      code: ERROR,
      line: 'ERROR: npm is not installed (not found on PATH): install Node.js 20 with npm, e.g. `apt-get install nodejs npm`',
    };
  }
  if (result.error) {
    return { code: ERROR, line: `ERROR: could not start npm audit: ${result.error.message}` };
  }
  return classifyAudit({ stdout: result.stdout, stderr: result.stderr });
}

function main() {
  const projectDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const outcome = runAudit({ cwd: projectDir, extraArgs: process.argv.slice(2) });
  (outcome.code === OK ? console.log : console.error)(outcome.line);
  process.exitCode = outcome.code;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
