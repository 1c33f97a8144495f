/**
 * Per-coefficient lock files, so that two processes running the same sweep never train (and write)
 * the same coefficient at once: the second skips to other coefficients and later reads the first's
 * result from the cache. A lock names its owner's pid (and, on Linux, its start time); a lock whose
 * owner is dead (a killed run), a zombie, or a later process given the same pid is stale and is taken
 * over.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { crashPoint } from "../system/crashPoint";
import { hasProc, procStat } from "../system/proc";
import { asStorageError, CACHE_ELSEWHERE, removeDeadTemporaries } from "./cache";

export interface LockInfo {
  readonly pid: number;
  readonly host: string;
  readonly createdAt: string;
  /**
   * The owner's start time in clock ticks since boot (Linux), which tells it from a later process given the
   * same pid.
   */
  readonly startTime?: number;
}

/**
 * Whether the lock's owner still runs: a pid that answers signal 0, is not a zombie (exited, not yet
 * reaped: it will never release its lock) and, where the lock recorded it, started when the owner did
 * (pids are reused).
 */
function alive(info: LockInfo): boolean {
  try {
    process.kill(info.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const stat = procStat(info.pid);
  // No /proc (not Linux): signal 0 is all there is to go by. On Linux a pid without an entry is gone.
  if (!stat) return !hasProc();
  if (stat.state === "Z" || stat.state === "X") return false;
  return info.startTime === undefined || info.startTime === stat.startTime;
}

export function readLock(file: string): LockInfo | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as LockInfo;
  } catch {
    return undefined;
  }
}

/** True when the lock's owner is gone (or the lock is unreadable and older than a minute). */
export function isStale(file: string): boolean {
  const info = readLock(file);
  if (!info) {
    try {
      return Date.now() - fs.statSync(file).mtimeMs > 60_000;
    } catch {
      return true;
    }
  }
  return info.host === os.hostname() && !alive(info);
}

/** The locks this process holds, so that a process asked to stop can release them first (`releaseHeldLocks`). */
const held = new Set<string>();

/** Releases every lock this process holds. */
export function releaseHeldLocks(): void {
  for (const file of held) {
    if (readLock(file)?.pid === process.pid) fs.rmSync(file, { force: true });
  }
  held.clear();
}

/**
 * On SIGTERM or SIGINT, releases the locks this process holds, then ends by the same signal. A sweep's
 * helper process is stopped with SIGTERM once every coefficient is done, possibly while it reads a
 * finished coefficient under its lock, and gets SIGINT with its whole process group when a user
 * interrupts (Ctrl-C in a terminal; Jupyter's Interrupt signals the kernel's group); without this its
 * lock would stay behind, stale, until another run took it over. Entries are written synchronously, so
 * a signal arrives between whole steps: a coefficient being trained is simply not cached.
 */
export function releaseLocksOnSignals(): void {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      releaseHeldLocks();
      process.kill(process.pid, signal);
    });
  }
}

/**
 * Takes the lock or returns undefined when another live process holds it. The returned function
 * releases it. The lock is written in full under a temporary name and then hard-linked into place, which
 * fails if the lock exists: so a lock file is never seen empty, even from a process killed while
 * creating it. A folder that cannot be written raises a `StorageError`.
 */
export function tryLock(file: string): (() => void) | undefined {
  const info: LockInfo = {
    pid: process.pid,
    host: os.hostname(),
    createdAt: new Date().toISOString(),
    startTime: procStat(process.pid)?.startTime,
  };
  const temporary = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    removeDeadTemporaries(file);
    fs.writeFileSync(temporary, JSON.stringify(info), { flag: "wx" });
    crashPoint("lock-temporary-written");
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.linkSync(temporary, file);
        held.add(file);
        return () => {
          held.delete(file);
          if (readLock(file)?.pid === process.pid) fs.rmSync(file, { force: true });
        };
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        if (!isStale(file)) return undefined;
        fs.rmSync(file, { force: true });
      }
    }
    return undefined;
  } catch (error) {
    throw asStorageError(error, file, CACHE_ELSEWHERE);
  } finally {
    try {
      fs.rmSync(temporary, { force: true });
    } catch {
      // A read-only folder: the temporary file was never created.
    }
  }
}
