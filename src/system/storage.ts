/**
 * Output folders the user names (the results folder, the cache folder): made and checked before any
 * work, within a time limit, and every operating-system error on them turned into one `StorageError`
 * that names the path, the cause and what to do, never a stack trace.
 *
 * Folders are made one component at a time: Node 20's `mkdirSync(dir, { recursive: true })` loops
 * forever under /proc. The check itself runs in a child process that is abandoned after `timeoutMs`,
 * so a path on a hung mount becomes an error naming it instead of an endless wait.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { inspect } from "node:util";

/** A path could not be used: a full or read-only disk, no permission, a file where a folder belongs... */
export class StorageError extends Error {
  override name = "StorageError";
  constructor(
    message: string,
    readonly file: string,
    readonly code: string,
  ) {
    super(message);
    // A notebook cell shows a failed cell's error with console.error: the message, not a stack of the
    // project's internals (the path is the user's, not the code's).
    this.stack = `${this.name}: ${message}`;
  }

  /** How console.error shows it (node would put a stack-less error in brackets). */
  [inspect.custom](): string {
    return this.stack as string;
  }
}

/** What each system error means for a path we write to, and the first thing to do about it. */
const STORAGE_FAULTS: Record<string, { reason: string; fix: string }> = {
  ENOSPC: { reason: "no space left on the device", fix: "Free space on that disk" },
  EDQUOT: { reason: "the disk quota is used up", fix: "Free space within the quota" },
  EROFS: { reason: "the file system is read-only", fix: "Remount it read-write" },
  EACCES: { reason: "permission denied", fix: "Make the folder writable" },
  EPERM: { reason: "operation not permitted", fix: "Make the folder writable" },
  EIO: { reason: "input/output error", fix: "Check the disk" },
  ENOTDIR: { reason: "a file stands where a folder is needed", fix: "Move that file away" },
  EEXIST: { reason: "a file stands where a folder is needed", fix: "Move that file away" },
  EISDIR: { reason: "a folder stands where a file is needed", fix: "Move that folder away" },
  ENOENT: { reason: "no such file or folder", fix: "Choose a folder on an ordinary disk" },
  ELOOP: { reason: "too many symbolic links (a loop)", fix: "Fix the symbolic links" },
  ENAMETOOLONG: { reason: "the path is too long", fix: "Use a shorter path" },
  EBUSY: { reason: "the device is busy", fix: "Try again later" },
  EMFILE: { reason: "too many open files", fix: "Close other programs" },
  ETIMEDOUT: { reason: "the file system did not answer in time (a hung network mount?)", fix: "Check the mount" },
};

/** Advice for a file of any kind; callers that know the file's role name their own flag instead. */
export const WRITE_ELSEWHERE = "or write to another folder";

/** The error as a `StorageError` when it is an operating-system error (it has a code), else unchanged. */
export function asStorageError(error: unknown, file: string, elsewhere: string = WRITE_ELSEWHERE): unknown {
  const code = (error as NodeJS.ErrnoException)?.code;
  if (error instanceof StorageError || typeof code !== "string" || !/^E[A-Z0-9]+$/.test(code)) return error;
  // The path the system names may be a component of `file` (the file standing where a folder belongs).
  const where = (error as NodeJS.ErrnoException).path;
  return storageError(
    `Cannot write ${file}`,
    code,
    where && where !== file ? where : undefined,
    elsewhere,
    "Nothing half-written was kept.",
    file,
  );
}

function storageError(
  what: string,
  code: string,
  at: string | undefined,
  elsewhere: string,
  tail: string,
  file: string,
  reason?: string,
): StorageError {
  const fault = STORAGE_FAULTS[code] ?? { reason: "the system refused it", fix: "Check the path" };
  return new StorageError(
    `${what}: ${reason ?? fault.reason} (${code}${at ? ` at ${at}` : ""}). ${fault.fix}, ${elsewhere}. ${tail}`,
    file,
    code,
  );
}

/**
 * Makes `dir` and its missing parents, one component at a time (see the module's note on /proc).
 * Throws the system's error, whose `path` is the component that failed.
 */
export function makeFolder(dir: string): void {
  const absolute = path.resolve(dir);
  const { root } = path.parse(absolute);
  let current = root;
  for (const part of absolute.slice(root.length).split(path.sep).filter(Boolean)) {
    current = path.join(current, part);
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    if (stat?.isDirectory()) continue;
    if (stat) throw Object.assign(new Error(`not a directory: ${current}`), { code: "ENOTDIR", path: current });
    try {
      fs.mkdirSync(current);
    } catch (error) {
      // Another process made it meanwhile.
      if ((error as NodeJS.ErrnoException).code === "EEXIST" && fs.statSync(current).isDirectory()) continue;
      throw error;
    }
  }
}

/**
 * What the checking process runs: makes the folder (as `makeFolder`), writes, flushes and removes a
 * probe file, and prints the outcome as JSON. Plain JavaScript, so that it starts in tens of milliseconds.
 */
const PROBE_SCRIPT = `
process.stdout.write(" ");
const fs = require("fs"), path = require("path");
const dir = path.resolve(process.argv[1]);
let at = dir;
try {
  const root = path.parse(dir).root;
  let current = root;
  for (const part of dir.slice(root.length).split(path.sep).filter(Boolean)) {
    current = path.join(current, part);
    at = current;
    let stat;
    try { stat = fs.statSync(current); } catch (e) { if (e.code !== "ENOENT") throw e; }
    if (stat && stat.isDirectory()) continue;
    if (stat) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" });
    try { fs.mkdirSync(current); } catch (e) {
      let link; try { link = fs.lstatSync(current).isSymbolicLink(); } catch {}
      if (link) throw Object.assign(new Error("dangling"), { code: "ENOENT", detail: "a symbolic link to a place that does not exist" });
      if (e.code === "ENOENT") e.detail = "this file system refuses new folders (such as /proc)";
      if (!(e.code === "EEXIST" && fs.statSync(current).isDirectory())) throw e;
    }
  }
  const probe = path.join(dir, ".write-probe." + process.pid + ".tmp");
  at = dir;
  const fd = fs.openSync(probe, "wx");
  try { fs.writeSync(fd, "probe"); fs.fsyncSync(fd); } finally { fs.closeSync(fd); fs.rmSync(probe, { force: true }); }
  // A check killed with its process group leaves its probe behind: remove those whose process is gone.
  // Tidying only: the folder is usable whatever happens here.
  try {
    for (const name of fs.readdirSync(dir)) {
      const pid = Number((/^\\.write-probe\\.(\\d+)\\.tmp$/.exec(name) || [])[1]);
      if (!pid) continue;
      try { process.kill(pid, 0); } catch (e) { if (e.code === "ESRCH") fs.rmSync(path.join(dir, name), { force: true }); }
    }
  } catch {}
  process.stdout.write(JSON.stringify({ ok: true }));
} catch (e) {
  process.stdout.write(JSON.stringify({ ok: false, code: e.code || "EIO", at, detail: e.detail }));
}
`;

/** The default time limit of a folder check: generous for a loaded machine, short for a person waiting. */
export const STORAGE_TIMEOUT_MS = 5_000;
/** How long the checking process may take to start before its file system calls are timed. */
const STARTUP_TIMEOUT_MS = 60_000;

export interface FolderRole {
  /** What the folder is for, e.g. "the results folder (--out)". */
  readonly role: string;
  /** The end of the advice, naming how to choose another place, e.g. "or choose another one with --out DIR". */
  readonly elsewhere: string;
  readonly timeoutMs?: number;
}

/**
 * Makes `dir` if needed and checks that a file can be written in it, in a child process whose file
 * system calls are limited to `timeoutMs` (counted from the moment it has started: starting Node on a
 * busy machine can take longer than any file system call should, and has a limit of its own). Resolves
 * when it can; rejects with a `StorageError` naming the folder, the component at fault, the cause and
 * what to do. Changes nothing but the folders it makes, and removes the probe files of earlier checks
 * whose process is gone (killed with a sweep's process group).
 */
export function checkOutputFolder(
  dir: string,
  { role, elsewhere, timeoutMs = STORAGE_TIMEOUT_MS }: FolderRole,
): Promise<void> {
  const absolute = path.resolve(dir);
  const what = `Cannot use ${absolute} as ${role}`;
  const tail = "Nothing was trained.";
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", PROBE_SCRIPT, absolute], { stdio: ["ignore", "pipe", "ignore"] });
    let stdout = "";
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(onTimeout, ms);
    };
    child.stdout.on("data", (chunk) => {
      // The first byte says the process runs: from now on only the file system calls are timed.
      if (stdout === "") arm(timeoutMs);
      stdout += chunk;
    });
    const onTimeout = () => {
      // A process stuck in the kernel may not die at once: it is left behind, not waited for.
      child.kill("SIGKILL");
      child.unref();
      child.stdout.destroy();
      const started = stdout !== "";
      const waited = started
        ? `It did not answer within ${(timeoutMs / 1000).toFixed(1)} s.`
        : `The process checking it did not start within ${STARTUP_TIMEOUT_MS / 1000} s.`;
      reject(storageError(what, "ETIMEDOUT", undefined, elsewhere, `${waited} ${tail}`, absolute));
    };
    arm(STARTUP_TIMEOUT_MS);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", () => {
      clearTimeout(timer);
      let outcome: { ok: boolean; code?: string; at?: string; detail?: string };
      try {
        outcome = JSON.parse(stdout.trim()) as typeof outcome;
      } catch {
        return reject(
          storageError(
            what,
            "EIO",
            undefined,
            elsewhere,
            `The check of the folder ended without an answer. ${tail}`,
            absolute,
          ),
        );
      }
      const at = outcome.at && outcome.at !== absolute ? outcome.at : undefined;
      if (outcome.ok) resolve();
      else reject(storageError(what, outcome.code ?? "EIO", at, elsewhere, tail, absolute, outcome.detail));
    });
  });
}
