// Process checks for the tests and the benchmarks (Linux /proc).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** The pids of a process's children. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Is a process with this pid still there? */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The descriptor numbers of a process's sockets. */
export function socketFds(pid: number): number[] {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
    } catch {
      return false; // closed while listing
    }
  }).map(Number);
}
