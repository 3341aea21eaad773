// The one option system of every command: each option has a flag, a ZKROUTE_* environment
// variable, a key in the optional JSON file (the flag's name), a default, a parser and a help
// line, in one table per command (config/<command>.ts). Precedence: flags > environment > file
// > defaults. A bad value stops the command with a ConfigError naming the option and the value.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { ListenAddress } from '../listen.js';
import { parseConnectString } from '../zookeeper/connect-string.js';

/** A usage or configuration error: the message names the option and the value (exit 2). */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type Parser<T> = (raw: string) => T | { problem: string };

function problem(p: string): { problem: string } {
  return { problem: p };
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `250ms`, `1s`, `1.5s`, `5m`, `1h`; a bare number is milliseconds. */
export function parseDurationMs(raw: string): number | { problem: string } {
  const m = DURATION.exec(raw.trim());
  if (!m) return problem('expected a duration such as 250ms, 1s, 5m (a bare number is milliseconds)');
  const ms = Number(m[1]) * DURATION_UNIT_MS[m[2] ?? 'ms']!;
  if (ms <= 0) return problem('must be above zero');
  if (ms > 2_147_483_647) return problem('is longer than a timer can hold (about 24 days)');
  return Math.round(ms);
}

/** Like parseDurationMs, but 0 (`0`, `0s`) is allowed: "no delay". */
export function parseDurationOrZeroMs(raw: string): number | { problem: string } {
  const m = DURATION.exec(raw.trim());
  if (m && Number(m[1]) === 0) return 0;
  return parseDurationMs(raw);
}

const SIZE = /^(\d+)(b|k|kb|kib|m|mb|mib)?$/i;

/** A size (`65536`, `64k`, `64KiB`, `1m`: binary units) from `min` to `max` bytes. */
export function size(min: number, max: number, tooLarge: string): Parser<number> {
  return (raw) => {
    const m = SIZE.exec(raw.trim());
    if (!m) return problem('expected a size such as 65536, 64KiB or 1MiB');
    const unit = (m[2] ?? 'b').toLowerCase();
    const bytes = Number(m[1]) * (unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1);
    if (bytes > max) return problem(tooLarge);
    if (bytes < min) return problem(`must be at least ${min} bytes`);
    return bytes;
  };
}

/** A request body size, up to what the proxy holds per request. */
export const parseBytes = size(0, 64 * 1024 * 1024, 'is above the 64 MiB the proxy will hold per request');

export function integer(min: number, max: number): Parser<number> {
  return (raw) => {
    if (!/^-?\d+$/.test(raw.trim())) return problem(`expected a whole number from ${min} to ${max}`);
    const n = Number(raw);
    return n >= min && n <= max ? n : problem(`expected a whole number from ${min} to ${max}`);
  };
}

export function oneOf<T extends string>(choices: readonly T[]): Parser<T> {
  return (raw) => ((choices as readonly string[]).includes(raw) ? (raw as T) : problem(`expected one of ${choices.join(', ')}`));
}

export function parseBoolean(raw: string): boolean | { problem: string } {
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return problem('expected true or false');
}

/** `127.0.0.1:4700`, `[::1]:4700`, `localhost:0`, or `:4700` (loopback). */
export function parseListen(raw: string): ListenAddress | { problem: string } {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(raw.trim());
  if (!m) return problem('expected HOST:PORT, e.g. 127.0.0.1:4700 or [::1]:4700');
  const port = Number(m[3]);
  if (port > 65535) return problem('port must be 0-65535');
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export function connectString(raw: string): string | { problem: string } {
  try {
    parseConnectString(raw);
    return raw;
  } catch (err) {
    return problem((err as Error).message);
  }
}

export function checked(check: (raw: string) => string | undefined): Parser<string> {
  return (raw) => {
    const p = check(raw);
    return p ? problem(p) : raw;
  };
}

/** One option: its flag, its variable (ZKROUTE_ + upper snake case of the flag), parser, default. */
export interface OptionSpec<K extends string = string> {
  readonly flag: string;
  readonly key: K;
  readonly parse: Parser<unknown>;
  /** Default as text (parsed like user input); undefined: required unless `optional`. */
  readonly fallback: string | undefined;
  readonly optional?: boolean;
  readonly boolean?: boolean;
  /** Repeatable flag; the variable and the file take a comma-separated list. The value is an array. */
  readonly multiple?: boolean;
  /** Never printed (--print-config shows "[redacted]"). */
  readonly secret?: boolean;
  /** The file may give an object of objects (settings per name): kept raw in ConfigFile.sections, the names as the value. */
  readonly section?: boolean;
  readonly help: string;
}

export interface SpecExtra {
  readonly boolean?: boolean;
  readonly optional?: boolean;
  readonly multiple?: boolean;
  readonly secret?: boolean;
  readonly section?: boolean;
}

export function spec<K extends string>(flag: string, key: K, parse: Parser<unknown>, fallback: string | undefined, help: string, extra: SpecExtra = {}): OptionSpec<K> {
  return { flag, key, parse, fallback, help, ...extra };
}

function isProblem(value: unknown): value is { problem: string } {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && 'problem' in value;
}

/** One option's raw text (or texts, for a repeatable one) and where it came from. */
function rawValue(option: OptionSpec, flags: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv, file: ConfigFile | undefined): { values: string[]; source: string } | undefined {
  const list = (text: string) => (option.multiple ? text.split(',').filter((v) => v !== '') : [text]);
  const flagValue = flags[option.flag];
  if (flagValue !== undefined && !(Array.isArray(flagValue) && flagValue.length === 0)) {
    // A repeatable flag may also be given once as a comma list (`--services a,b`).
    return { values: (Array.isArray(flagValue) ? flagValue.map(String) : [String(flagValue)]).flatMap(list), source: `--${option.flag}` };
  }
  const envValue = env[envName(option.flag)];
  if (envValue !== undefined && envValue !== '') return { values: list(envValue), source: envName(option.flag) };
  const fileValue = file?.values[option.flag];
  if (fileValue !== undefined) return { values: Array.isArray(fileValue) ? fileValue.map(String) : list(String(fileValue)), source: `${file!.name} key "${option.flag}"` };
  if (option.fallback !== undefined) return { values: list(option.fallback), source: `default of --${option.flag}` };
  return undefined;
}

/**
 * Reads every option from flag values (as parseArgs gives them: strings, `true` for boolean
 * flags, arrays for repeatable ones), else the environment, else the file, else the default.
 * Throws ConfigError naming the option and the value.
 */
export function buildConfig<K extends string>(specs: readonly OptionSpec<K>[], flags: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv, file?: ConfigFile): Record<K, unknown> {
  const out: Record<string, unknown> = {};
  for (const option of specs) {
    const raw = rawValue(option, flags, env, file);
    if (!raw) {
      if (option.optional) continue;
      throw new ConfigError(`--${option.flag} is required (or set ${envName(option.flag)})`);
    }
    const parsed = raw.values.map((value) => {
      const result = option.parse(value);
      if (isProblem(result)) throw new ConfigError(`${raw.source} ${JSON.stringify(value)}: ${result.problem}`);
      return result;
    });
    out[option.key] = option.multiple ? parsed : parsed[0];
  }
  return out as Record<K, unknown>;
}

/** A parsed configuration file: option values by flag name. */
export interface ConfigFile {
  readonly name: string;
  readonly values: Readonly<Record<string, string | number | boolean | readonly string[]>>;
  /** Section options given as objects of objects (`"services": {"orders": {"retries": 1}}`), by flag, raw. */
  readonly sections?: Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, unknown>>>>>>;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads a JSON configuration file whose keys are the flag names (`"retries": 2`,
 * `"preserve-host": true`). Unknown keys and non-scalar values are errors naming the key.
 */
export function readConfigFile(path: string, specs: readonly OptionSpec[], read: (path: string) => string = (p) => readFileSync(p, 'utf8')): ConfigFile {
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    throw new ConfigError(`--config ${JSON.stringify(path)}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`--config ${JSON.stringify(path)}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`--config ${JSON.stringify(path)}: expected a JSON object of option names to values`);
  const bySpec = new Map(specs.map((s) => [s.flag, s]));
  const values: Record<string, string | number | boolean | readonly string[]> = {};
  const sections: Record<string, Record<string, Record<string, unknown>>> = {};
  for (const [key, value] of Object.entries(parsed)) {
    const option = bySpec.get(key);
    if (!option) throw new ConfigError(`${path} key "${key}": not an option (keys are the flag names, e.g. "listen", "retries")`);
    if (option.section && isRecord(value) && Object.values(value).every(isRecord)) {
      sections[key] = value as Record<string, Record<string, unknown>>;
      values[key] = Object.keys(value);
    } else if (option.multiple && Array.isArray(value) && value.every((v) => typeof v === 'string')) values[key] = value as string[];
    else if (option.multiple && typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string')) {
      // {"127.0.0.1:9090": "example-service"}: each entry is one KEY=VALUE value.
      values[key] = Object.entries(value as Record<string, string>).map(([k, v]) => `${k}=${v}`);
    }
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') values[key] = value;
    else throw new ConfigError(`${path} key "${key}": expected a string, number or boolean${option.multiple ? ', a list of strings or an object of strings' : ''}, got ${JSON.stringify(value)}`);
  }
  return { name: path, values, ...(Object.keys(sections).length > 0 ? { sections } : {}) };
}

/** Options that replaced others: the old flag's error says what to use now. */
export type Renamed = Readonly<Record<string, string>>;

/**
 * Parses a command line against a command's table (plus `--help`), with every error a
 * ConfigError: unknown flags, a missing value, a renamed flag.
 */
export function parseCommandLine(argv: readonly string[], specs: readonly OptionSpec[], extra: Readonly<Record<string, { type: 'string' | 'boolean' }>> = {}, renamed: Renamed = {}): { values: Record<string, unknown>; positionals: string[] } {
  for (const arg of argv) {
    if (arg === '--') break;
    const flag = /^--([^=]+)/.exec(arg)?.[1];
    if (flag !== undefined && renamed[flag]) throw new ConfigError(`--${flag} is now ${renamed[flag]}`);
  }
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = { help: { type: 'boolean' }, ...extra };
  for (const o of specs) options[o.flag] = { type: o.boolean ? 'boolean' : 'string', ...(o.multiple ? { multiple: true } : {}) };
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
    return { values: values as Record<string, unknown>, positionals };
  } catch (err) {
    throw new ConfigError((err as Error).message, { cause: err });
  }
}

/** The options block of a command's --help. */
export function optionsHelp(specs: readonly OptionSpec[]): string {
  return specs.map((o) => {
    const left = `  --${o.flag}${o.boolean ? '' : ' VALUE'}`;
    const suffix = o.fallback !== undefined ? (o.fallback === '' ? '' : ` [${o.fallback}]`) : o.optional ? '' : ' (required)';
    return `${left.padEnd(34)} ${o.help}${o.multiple ? ' (repeatable)' : ''}${suffix}\n${' '.repeat(35)}env ${envName(o.flag)}`;
  }).join('\n');
}

/** A configuration as JSON for --print-config, with secret options redacted. */
export function printable(config: object, specs: readonly OptionSpec[]): string {
  const secret = new Set(specs.filter((s) => s.secret).map((s) => s.key as string));
  return JSON.stringify(config, (key, value: unknown) => (secret.has(key) && value !== undefined ? '[redacted]' : value), 2);
}

export function envName(flag: string): string {
  return `ZKROUTE_${flag.toUpperCase().replace(/-/g, '_')}`;
}
