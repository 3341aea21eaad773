// What SIGHUP may change in a running proxy, and what only a restart can: the plan is computed
// here from the configuration in force and the one just read, so the rule is written once.
import { PROXY_OPTIONS, type ProxyConfig } from './proxy.js';

/** Options a reload applies to the next requests; every other option needs a restart. */
export const RELOADABLE: ReadonlySet<keyof ProxyConfig> = new Set<keyof ProxyConfig>([
  'connectTimeoutMs', 'tryTimeoutMs', 'deadlineMs', 'retries', 'balancer',
  'consecutive5xx', 'ejectionBaseMs', 'ejectionMaxMs', 'maxEjectionPercent',
  'services', 'logLevel', 'accessLog', 'accessLogQuery',
]);

export interface ReloadPlan {
  /** The configuration to run with: `next`'s reloadable options, the current value of every other. */
  readonly config: ProxyConfig;
  /** Flags whose values change now, each with its old and new value. */
  readonly changed: readonly { readonly flag: string; readonly from: unknown; readonly to: unknown }[];
  /** Flags whose values differ in the file but need a restart: left as they are. */
  readonly restartOnly: readonly string[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function planReload(current: ProxyConfig, next: ProxyConfig): ReloadPlan {
  const config: Record<string, unknown> = { ...current };
  const changed: { flag: string; from: unknown; to: unknown }[] = [];
  const restartOnly: string[] = [];
  for (const spec of PROXY_OPTIONS) {
    const key = spec.key;
    if (same(current[key], next[key])) continue;
    if (RELOADABLE.has(key)) {
      config[key] = next[key];
      changed.push({ flag: `--${spec.flag}`, from: spec.secret ? '[redacted]' : current[key], to: spec.secret ? '[redacted]' : next[key] });
    } else {
      restartOnly.push(`--${spec.flag}`);
    }
  }
  return { config: Object.freeze(config) as unknown as ProxyConfig, changed, restartOnly };
}
