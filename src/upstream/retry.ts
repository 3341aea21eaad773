// The retry loop, as a wrapper around the provider (undici's RetryHandler is one around its
// pool): a protocol supplies how to make one try and whether an outcome may be tried again.
import { performance } from 'node:perf_hooks';
import type { Instance } from '../discovery/provider-table.js';
import { DEADLINE_CODE, type TryOutcome } from '../outcome.js';
import { CLIENT_GONE, DEADLINE_PASSED, type Cancellation } from './cancellation.js';
import type { ServiceProvider } from './provider.js';
import type { SubsetMatch } from './subset.js';

export interface TryPlan {
  readonly service: string;
  /** Tries after the first, each on an instance (by address) not tried yet. */
  readonly retries: number;
  /** The request's overall limit, all tries included, from `startedAt`. */
  readonly deadlineMs: number;
  /** `performance.now()` when the request arrived. */
  readonly startedAt: number;
  /** Cancelled with CLIENT_GONE by the protocol; with DEADLINE_PASSED here, at the deadline. */
  readonly cancel: Cancellation;
  /** Makes one try on `instance`, given at most `remainingMs`; never rejects. */
  attempt(instance: Instance, remainingMs: number): Promise<TryOutcome>;
  /** May this outcome be tried again on another instance, for this request? */
  retryable(outcome: TryOutcome): boolean;
  /** Only instances this accepts (a subset by header); all when absent. */
  readonly subset?: SubsetMatch;
  /** Called before each retry (a debug log line). */
  onRetry?(instance: Instance, outcome: TryOutcome): void;
  /**
   * Every attempt ends within the `remainingMs` it is given (its own timers are bounded by it),
   * so no deadline timer is needed: one timer less per request.
   */
  readonly selfBounded?: boolean;
}

export interface TriesResult {
  /** The last try's outcome; undefined when no instance could be tried at all. */
  readonly last: TryOutcome | undefined;
  readonly tries: number;
  readonly lastInstance: Instance | undefined;
  /** A retry was due but the service's retry budget was spent: the last outcome stands. */
  readonly retryDenied: boolean;
}

const DEADLINE_OUTCOME: TryOutcome = { kind: 'timeout', code: DEADLINE_CODE };

/**
 * Tries instances from the provider until one answers, an outcome may not be retried, the
 * retries are used up, no untried instance is left, the deadline passes, or the caller goes.
 * Each try's outcome is noted with the provider (health, in-flight) exactly once.
 */
export async function runTries(provider: ServiceProvider, plan: TryPlan): Promise<TriesResult> {
  const deadlineAt = plan.startedAt + plan.deadlineMs;
  const timer = plan.selfBounded ? undefined : setTimeout(() => plan.cancel.cancel(DEADLINE_PASSED), Math.max(0, deadlineAt - performance.now()));
  const tried: Instance[] = [];
  let last: TryOutcome | undefined;
  let retryDenied = false;
  provider.noteRequest(plan.service);
  try {
    while (tried.length <= plan.retries) {
      const reason = plan.cancel.reason;
      const remaining = deadlineAt - performance.now();
      if (reason === DEADLINE_PASSED || remaining <= 0) {
        last = DEADLINE_OUTCOME;
        break;
      }
      if (reason === CLIENT_GONE) {
        last = { kind: 'client-aborted', responseStarted: false };
        break;
      }
      // A retry (connect failures too) must fit the service's retry budget.
      if (tried.length > 0 && !provider.retryAllowed(plan.service)) {
        retryDenied = true;
        break;
      }
      const instance = provider.getInstance(plan.service, tried, plan.subset);
      if (!instance) break;
      if (tried.length > 0) provider.spendRetry(plan.service);
      tried.push(instance);
      const outcome = await plan.attempt(instance, remaining);
      provider.noteOutcome(instance, outcome);
      last = outcome;
      if (!plan.retryable(outcome)) break;
      plan.onRetry?.(instance, outcome);
    }
  } finally {
    if (timer) clearTimeout(timer);
  }
  return { last, tries: tried.length, lastInstance: tried[tried.length - 1], retryDenied };
}

/**
 * The rule every protocol shares (RFC 9110 9.2.2 for HTTP): a connect failure sent nothing, so
 * it may go again whenever the request can be re-sent; a reset or a per-try timeout after
 * sending only when repeating the request is safe (`idempotent`). An answer, a started
 * response, a client abort or the deadline: never.
 */
export function mayRetry(outcome: TryOutcome, request: { readonly idempotent: boolean; readonly replayable: boolean }): boolean {
  if (!request.replayable) return false;
  switch (outcome.kind) {
    case 'connect-failed':
      return true;
    case 'reset-before-response':
      return request.idempotent;
    case 'timeout':
      return outcome.code !== DEADLINE_CODE && request.idempotent;
    default:
      return false;
  }
}
