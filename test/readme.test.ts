import test from 'ava';
import { readFileSync } from 'node:fs';
import { REGISTER_OPTIONS } from '../src/config/register.js';
import { envName } from '../src/config/options.js';
import { PROXY_OPTIONS } from '../src/config/proxy.js';
import { PROVIDERS_OPTIONS } from '../src/config/providers.js';
import { DEV_OPTIONS } from '../src/config/dev.js';
import { ERROR_STATUS } from '../src/errors.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

test('the README documents every proxy and register option, with its variable', (t) => {
  for (const o of [...PROXY_OPTIONS, ...REGISTER_OPTIONS]) {
    t.true(readme.includes(`--${o.flag}`), `--${o.flag}`);
  }
  for (const o of PROXY_OPTIONS) t.true(readme.includes(envName(o.flag)), envName(o.flag));
});

test('the README lists every error code the proxy can answer', (t) => {
  for (const code of Object.keys(ERROR_STATUS)) {
    if (code === 'internal_error') continue;
    t.true(readme.includes(`\`${code}\``), code);
  }
});

test('the README documents every providers and dev option', (t) => {
  for (const o of [...PROVIDERS_OPTIONS, ...DEV_OPTIONS]) t.true(readme.includes(`--${o.flag}`), `--${o.flag}`);
});
