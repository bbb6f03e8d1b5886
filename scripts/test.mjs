#!/usr/bin/env node
// `npm test`: type-check, unit tests (Vitest, Node; GPU tests through Dawn on SwiftShader or a
// real GPU) and e2e tests (Playwright, headless Debian Chromium with WebGPU), then one summary
// line "N passed, N failed[, N skipped]" counting every test, and a non-zero exit on failure.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'test-results', 'summary');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const bin = (name) => join(root, 'node_modules', '.bin', name);
const only = process.argv[2]; // optional: "unit" | "e2e" | "types"

const totals = { passed: 0, failed: 0, skipped: 0 };

function step(title, cmd, args, env = {}) {
  process.stdout.write(`\n=== ${title}\n`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, env: { ...process.env, ...env } });
  return r.status === 0;
}

if (!only || only === 'types') {
  const ok = step('type-check (tsc --noEmit)', bin('tsc'), ['--noEmit', '-p', '.']);
  totals[ok ? 'passed' : 'failed'] += 1;
}

if (!only || only === 'unit') {
  const json = join(out, 'vitest.json');
  const ok = step('unit tests (vitest)', bin('vitest'), ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${json}`]);
  const counted = countVitest(json);
  if (!counted) totals.failed += 1; // the runner itself broke: count it, never hide it
  else if (!ok && counted.failed === 0) totals.failed += 1;
}

if (!only || only === 'e2e') {
  const json = join(out, 'playwright.json');
  const ok = step('browser tests (playwright, headless chromium)', bin('playwright'), ['test', '--reporter=list,json'], {
    PLAYWRIGHT_JSON_OUTPUT_NAME: json,
  });
  const counted = countPlaywright(json);
  if (!counted) totals.failed += 1;
  else if (!ok && counted.failed === 0) totals.failed += 1;
}

const line = `${totals.passed} passed, ${totals.failed} failed${totals.skipped ? `, ${totals.skipped} skipped` : ''}`;
process.stdout.write(`\n${line}\n`);
process.exit(totals.failed ? 1 : 0);

function countVitest(file) {
  if (!existsSync(file)) return null;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  const c = {
    passed: r.numPassedTests ?? 0,
    failed: (r.numFailedTests ?? 0) + (r.numFailedTestSuites ?? 0) - countSuiteOnlyFailures(r),
    skipped: (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0),
  };
  add(c);
  return c;
}

// A test file that fails to load counts as a failed suite with no failed tests inside it.
function countSuiteOnlyFailures(r) {
  let withTests = 0;
  for (const f of r.testResults ?? []) {
    if (f.status === 'failed' && (f.assertionResults ?? []).some((a) => a.status === 'failed')) withTests++;
  }
  return withTests;
}

function countPlaywright(file) {
  if (!existsSync(file)) return null;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  const s = r.stats ?? {};
  const c = { passed: (s.expected ?? 0) + (s.flaky ?? 0), failed: s.unexpected ?? 0, skipped: s.skipped ?? 0 };
  if ((r.errors ?? []).length && c.failed === 0) c.failed = r.errors.length;
  add(c);
  return c;
}

function add(c) {
  totals.passed += c.passed;
  totals.failed += c.failed;
  totals.skipped += c.skipped;
}
