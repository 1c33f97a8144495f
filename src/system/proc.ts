/**
 * Readings of Linux's /proc: a process's (or thread's) name, state, start time and CPU time. Used to
 * tell a live lock owner from a zombie or a reused pid (`src/experiment/lock.ts`) and to say what a kernel that
 * overran its time limit was doing (`src/notebook/kernel.ts`). Undefined wherever /proc is not there.
 */
import * as fs from "node:fs";

/** Clock ticks per second of /proc's times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

export interface ProcStat {
  readonly name: string;
  /** R running, S sleeping, D disk wait, Z zombie, X dead, ... */
  readonly state: string;
  /** Clock ticks after boot at which it started. */
  readonly startTime: number;
  /** User plus system CPU time used, in seconds. */
  readonly cpuSeconds: number;
}

/** Parses a /proc/.../stat file; `path` is `/proc/PID/stat` or `/proc/PID/task/TID/stat`. */
export function readProcStat(path: string): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after its last ")".
  const close = text.lastIndexOf(")");
  const fields = text.slice(close + 2).split(" ");
  return {
    name: text.slice(text.indexOf("(") + 1, close),
    state: fields[0],
    startTime: Number(fields[19]),
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND,
  };
}

export function procStat(pid: number): ProcStat | undefined {
  return readProcStat(`/proc/${pid}/stat`);
}

/** True where /proc can be read (Linux). */
export function hasProc(): boolean {
  return fs.existsSync("/proc/self/stat");
}

/** Each thread of a process with its state and CPU time; empty where /proc is not there. */
export function procThreads(pid: number): ProcStat[] {
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tids
    .map((tid) => readProcStat(`/proc/${pid}/task/${tid}/stat`))
    .filter((stat): stat is ProcStat => stat !== undefined);
}
