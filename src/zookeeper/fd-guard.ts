// Works around a defect of the native `zookeeper` binding (7.3.0) seen here: after a handle is
// closed (by us or by session expiry), the file descriptor number its socket used is unusable
// for the next ZooKeeper handle that gets it; that handle's connect never completes. Keeping the
// number occupied (by /dev/null) after a close means the next handle gets a fresh one.
// Cost: one descriptor per closed ZooKeeper handle, which happens at shutdown and on expiry.
import { closeSync, openSync, readdirSync, readlinkSync } from 'node:fs';

const FD_DIR = '/proc/self/fd';
const parked: number[] = [];

/** The descriptor numbers of this process's open sockets (empty where /proc is missing). */
export function socketFds(): Set<number> {
  const result = new Set<number>();
  let entries: string[];
  try {
    entries = readdirSync(FD_DIR);
  } catch {
    return result;
  }
  for (const entry of entries) {
    try {
      if (readlinkSync(`${FD_DIR}/${entry}`).startsWith('socket:')) result.add(Number(entry));
    } catch {
      // closed while listing
    }
  }
  return result;
}

/** Occupies each descriptor number in `fds` that is free now, so no later socket receives it. */
export function parkFreedFds(before: ReadonlySet<number>): void {
  const now = socketFds();
  const freed = [...before].filter((fd) => !now.has(fd));
  for (const target of freed) {
    const spare: number[] = [];
    try {
      for (let i = 0; i < 64; i++) {
        const fd = openSync('/dev/null', 'r');
        if (fd === target) {
          parked.push(fd);
          break;
        }
        spare.push(fd);
        if (fd > target) break; // the number was taken by someone else meanwhile
      }
    } catch {
      // out of descriptors: nothing to protect
    } finally {
      for (const fd of spare) closeSync(fd);
    }
  }
}

/**
 * After a close we did not start (session expiry inside the native client), the freed number is
 * not known; it was the lowest free one when the client reconnected moments earlier, so it is
 * almost always the lowest free one now: occupy that.
 */
export function parkLowestFreeFd(): void {
  try {
    parked.push(openSync('/dev/null', 'r'));
  } catch {
    // out of descriptors: nothing to protect
  }
}

/** How many descriptor numbers are held back (for diagnostics). */
export function parkedFdCount(): number {
  return parked.length;
}
