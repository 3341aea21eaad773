// What SIGHUP may change in a running proxy, and what only a restart can: the plan is computed
// here from the configuration in force and the one just read, so the rule is written once.
import { PROXY_OPTIONS, type ProxyConfig, type ServiceOverride } from './proxy.js';

/** Options a reload applies to the next requests; every other option needs a restart. */
export const RELOADABLE: ReadonlySet<keyof ProxyConfig> = new Set<keyof ProxyConfig>([
  'connectTimeoutMs', 'tryTimeoutMs', 'deadlineMs', 'retries', 'balancer',
  'consecutive5xx', 'ejectionBaseMs', 'ejectionMaxMs', 'maxEjectionPercent',
  'services', 'logLevel', 'accessLog', 'accessLogQuery',
  'retryBudgetPercent', 'slowStartMs', 'zoneAware',
  // Compared apart (planReload): a service's base path and layout need a restart.
  'serviceSettings',
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
  // Per-service settings: all of them reload but a service's base path and layout (its watch).
  if (!same(current.serviceSettings, next.serviceSettings)) {
    const merged: Record<string, ServiceOverride> = {};
    for (const service of new Set([...Object.keys(current.serviceSettings), ...Object.keys(next.serviceSettings)])) {
      const before = current.serviceSettings[service] ?? {};
      const { basePath, layout, ...traffic } = next.serviceSettings[service] ?? {};
      if (basePath !== before.basePath) restartOnly.push(`services.${service}.base-path`);
      if (layout !== before.layout) restartOnly.push(`services.${service}.layout`);
      const kept = { ...traffic, ...(before.basePath !== undefined ? { basePath: before.basePath } : {}), ...(before.layout !== undefined ? { layout: before.layout } : {}) };
      if (Object.keys(kept).length > 0) merged[service] = Object.freeze(kept);
    }
    if (!same(current.serviceSettings, merged)) {
      config['serviceSettings'] = Object.freeze(merged);
      changed.push({ flag: 'services (per-service settings)', from: current.serviceSettings, to: merged });
    }
  }
  return { config: Object.freeze(config) as unknown as ProxyConfig, changed, restartOnly };
}
