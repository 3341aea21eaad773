#!/usr/bin/env node
// Thin shim: the CLI lives in the compiled dist/cli/main.js (run `npm run build` first).
import { installCrashHandler } from '../dist/cli/crash.js';
import { main } from '../dist/cli/main.js';

installCrashHandler();

main(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (err) => {
    console.error(`zkroute: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
