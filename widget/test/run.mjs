// Runs the widget's unit tests (test/*.test.ts) with Node's test runner: each file is bundled
// by esbuild (as the widget is) into a temporary folder first.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'widget-tests-'));
try {
  const files = readdirSync('test').filter((f) => f.endsWith('.test.ts'));
  await build({
    entryPoints: files.map((f) => join('test', f)),
    outdir: dir,
    bundle: true,
    platform: 'node',
    format: 'esm',
    outExtension: { '.js': '.mjs' },
    define: { __VERSION__: '"test"' },
    logLevel: 'warning',
  });
  const outputs = readdirSync(dir).map((f) => join(dir, f));
  const run = spawnSync(process.execPath, ['--test', ...outputs], { stdio: 'inherit' });
  process.exitCode = run.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
