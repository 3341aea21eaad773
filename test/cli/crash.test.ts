import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const crashModule = fileURLToPath(new URL('../../src/cli/crash.ts', import.meta.url));

for (const [what, code] of [['an uncaught exception', "setTimeout(() => { throw new Error('boom in a timer'); })"], ['an unhandled rejection', "Promise.reject(new Error('boom in a promise'))"]] as const) {
  test(`${what} is logged as one JSON line with its stack, and the process exits 70`, (t) => {
    const script = `import { installCrashHandler } from ${JSON.stringify(crashModule)}; installCrashHandler(); ${code};`;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    t.is(run.status, 70);
    const line = JSON.parse(run.stderr.trim().split('\n').pop()!) as { level: number; msg: string; err: { message: string; stack: string } };
    t.is(line.level, 60);
    t.regex(line.msg, /; exiting$/);
    t.regex(line.err.message, /^boom in a /);
    t.regex(line.err.stack, /at /);
  });
}
