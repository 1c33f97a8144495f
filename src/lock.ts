/**
 * Per-coefficient lock files, so that two processes running the same sweep never train (and write)
 * the same coefficient at once: the second skips to other coefficients and later reads the first's
 * result from the cache. A lock names its owner's pid; a lock whose owner is dead (a killed run) is
 * stale and is taken over.
 */
import * as fs from "node:fs";
import * as os from "node:os";

export interface LockInfo {
  readonly pid: number;
  readonly host: string;
  readonly createdAt: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
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
  return info.host === os.hostname() && !alive(info.pid);
}

/**
 * Takes the lock (atomic exclusive create) or returns undefined when another live process holds it.
 * The returned function releases it.
 */
export function tryLock(file: string): (() => void) | undefined {
  const info: LockInfo = { pid: process.pid, host: os.hostname(), createdAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, JSON.stringify(info), { flag: "wx" });
      return () => {
        if (readLock(file)?.pid === process.pid) fs.rmSync(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (!isStale(file)) return undefined;
      fs.rmSync(file, { force: true });
    }
  }
  return undefined;
}
