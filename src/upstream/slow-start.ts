// Slow start (Envoy's): an instance that just joined, or came back from an ejection, gets a
// weight that ramps linearly from 10% to 100% of its own over the window, whatever the balancer.
import type { Instance } from '../discovery/provider-table.js';

const FIRST_SHARE = 0.1;

export class SlowStart {
  readonly #now: () => number;
  /** When each ramping instance (by uid) started. */
  readonly #since = new Map<string, number>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The instance starts ramping now. */
  begin(uid: string): void {
    this.#since.set(uid, this.#now());
  }

  forget(uids: Iterable<string>): void {
    for (const uid of uids) this.#since.delete(uid);
  }

  /** The share (0.1..1) of its weight an instance gets now, ramping over `windowMs`. */
  share(uid: string, windowMs: number): number {
    const since = this.#since.get(uid);
    if (since === undefined) return 1;
    const elapsed = this.#now() - since;
    if (elapsed >= windowMs) {
      this.#since.delete(uid);
      return 1;
    }
    return FIRST_SHARE + (1 - FIRST_SHARE) * (Math.max(0, elapsed) / windowMs);
  }

  /** `candidates` with ramping instances' weights scaled (copies; the uid says which instance), or the same array when none ramps. */
  weigh(candidates: readonly Instance[], windowMs: number): readonly Instance[] {
    if (this.#since.size === 0) return candidates;
    let weighed: Instance[] | undefined;
    for (let i = 0; i < candidates.length; i++) {
      const c = candidates[i]!;
      const share = this.share(c.uid, windowMs);
      if (share < 1) {
        weighed ??= candidates.slice();
        weighed[i] = { ...c, weight: c.weight * share };
      }
    }
    return weighed ?? candidates;
  }
}
