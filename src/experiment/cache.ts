/**
 * The on-disk cache of trained coefficients: one entry per KL coefficient inside a folder named by a
 * key that hashes everything that changes a result (config, data, backend, code version).
 * An entry is a JSON file plus float32 blobs, blobs first and JSON last, each flushed under a temporary
 * name and then renamed, so a reader sees a complete entry or none. The JSON holds the blobs' and its own
 * SHA-256, checked on every read: a damaged entry is reported and treated as missing, never served. A failed
 * write raises a `StorageError` naming the file and the fix, and leaves no part of the entry behind.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { crashPoint } from "../system/crashPoint";
import { asStorageError, makeFolder, WRITE_ELSEWHERE } from "../system/storage";

/**
 * Bumped whenever training or stored fields change meaning, so stale entries stop matching.
 * 5: entries carry a checksum of their own JSON.
 * 6: on wasm a training step's gradients come from one fused kernel (`src/backend/fusedGradients.ts`)
 *    and the loss from another (`src/backend/fusedLoss.ts`, also on cpu), whose sums are closer to
 *    float64 than the composed ops'; with fused multiply-adds, the latent layers' thin products use
 *    them too. Every wasm result changes in the last digits.
 */
export const CACHE_VERSION = 6;

export function hashKey(value: unknown): string {
  return createHash("sha256").update(stableStringify(value)).digest("hex").slice(0, 16);
}

/** JSON with object keys sorted, so that equal values hash equally whatever their key order. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.keys(value as object)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${stableStringify((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(",")}}`;
  }
  return JSON.stringify(value);
}

export { asStorageError, StorageError, WRITE_ELSEWHERE } from "../system/storage";

const TEMPORARY = /^(.*)\.(\d+)\.[0-9a-z]+\.tmp$/;

/** True when no process has this pid (signal 0 fails with ESRCH). */
function pidGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/**
 * Removes temporary files of `file` left by processes that died while writing it (a killed run): each
 * names its writer's pid, so the files of live writers are kept.
 */
export function removeDeadTemporaries(file: string): void {
  const dir = path.dirname(file);
  const base = path.basename(file);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const match = TEMPORARY.exec(name);
    if (match && match[1] === base && pidGone(Number(match[2]))) fs.rmSync(path.join(dir, name), { force: true });
  }
}

/**
 * Writes through a temporary file in the same folder, flushed to disk, and renames it over the target,
 * so the target is always either its old or its new contents. `elsewhere` completes the advice of a
 * `StorageError` (for example "or choose another folder with --out DIR").
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, elsewhere: string = WRITE_ELSEWHERE): void {
  const temporary = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    makeFolder(path.dirname(file));
    removeDeadTemporaries(file);
    const descriptor = fs.openSync(temporary, "wx");
    try {
      fs.writeFileSync(descriptor, data);
      // Flushed before the rename, so that a full disk or an I/O error shows here, while the old
      // contents are still in place, and not later.
      fs.fsyncSync(descriptor);
    } finally {
      fs.closeSync(descriptor);
    }
    crashPoint("file-temporary-written");
    fs.renameSync(temporary, file);
  } catch (error) {
    try {
      fs.rmSync(temporary, { force: true });
    } catch {
      // The temporary file was never created (a read-only folder); there is nothing to remove.
    }
    throw asStorageError(error, file, elsewhere);
  }
  crashPoint("file-renamed");
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function asBytes(array: Float32Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

interface BlobRef {
  readonly file: string;
  readonly length: number;
  readonly sha256: string;
}

interface EntryFile<M> {
  readonly cacheVersion: number;
  /** SHA-256 of `stableStringify({ meta, blobs })`: any change to the JSON's values shows. */
  readonly checksum: string;
  readonly meta: M;
  readonly blobs: Record<string, BlobRef>;
}

export class CacheCorruptError extends Error {
  override name = "CacheCorruptError";
}

/** Advice completing a `StorageError` raised while writing the cache. */
export const CACHE_ELSEWHERE =
  "or use another cache folder (--cache-dir DIR, VAE_CACHE_DIR in a notebook, cacheDir in runSweep) " +
  "or none (--no-cache)";

const BLOB_NAME = /^[A-Za-z][A-Za-z0-9]*$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function entryChecksum(meta: unknown, blobs: unknown): string {
  return sha256Hex(new TextEncoder().encode(stableStringify({ meta, blobs })));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Reads a file of the cache; a path that is a folder or otherwise unreadable as a file is damage. */
function readCacheFile(file: string, listedBy?: string): Buffer | undefined {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      if (listedBy) throw new CacheCorruptError(`${file}: missing (listed by ${listedBy}).`);
      return undefined;
    }
    if (code === "EISDIR" || code === "ENOTDIR" || code === "ELOOP")
      throw new CacheCorruptError(`${file}: not a readable file (${code}).`);
    throw error;
  }
}

/** A folder of named entries, each some JSON metadata plus named float32 arrays. */
export class EntryStore {
  constructor(readonly dir: string) {}

  private jsonPath(name: string): string {
    return path.join(this.dir, `${name}.json`);
  }

  /** The lock file guarding an entry while one process computes it (see `src/experiment/lock.ts`). */
  lockPath(name: string): string {
    try {
      makeFolder(this.dir);
    } catch (error) {
      throw asStorageError(error, this.dir, CACHE_ELSEWHERE);
    }
    return path.join(this.dir, `${name}.lock`);
  }

  has(name: string): boolean {
    return fs.existsSync(this.jsonPath(name));
  }

  write<M>(name: string, meta: M, blobs: Record<string, Float32Array>): void {
    try {
      const refs: Record<string, BlobRef> = {};
      for (const [blobName, array] of Object.entries(blobs)) {
        if (!BLOB_NAME.test(blobName))
          throw new RangeError(`Blob name "${blobName}" must be letters and digits, starting with a letter.`);
        const bytes = asBytes(array);
        const file = `${name}.${blobName}.f32`;
        writeFileAtomic(path.join(this.dir, file), bytes, CACHE_ELSEWHERE);
        refs[blobName] = { file, length: array.length, sha256: sha256Hex(bytes) };
      }
      const entry: EntryFile<M> = {
        cacheVersion: CACHE_VERSION,
        checksum: entryChecksum(meta, refs),
        meta,
        blobs: refs,
      };
      writeFileAtomic(this.jsonPath(name), JSON.stringify(entry), CACHE_ELSEWHERE);
    } catch (error) {
      // A failed write (a full disk) leaves no part of the entry behind: its blobs alone would only
      // take space.
      try {
        this.remove(name);
      } catch {
        // A read-only folder: nothing was written to it either.
      }
      throw error;
    }
  }

  /**
   * Reads an entry; undefined when absent. Throws `CacheCorruptError` naming the file and the fault
   * when the JSON does not parse, is not an entry of this version, does not match its checksum, or a
   * blob is missing, short or altered. Sizes are checked against the files before anything is allocated.
   */
  read<M>(name: string): { meta: M; blobs: Record<string, Float32Array> } | undefined {
    const jsonFile = this.jsonPath(name);
    const text = readCacheFile(jsonFile);
    if (text === undefined) return undefined;
    let entry: unknown;
    try {
      entry = JSON.parse(text.toString("utf8"));
    } catch (error) {
      throw new CacheCorruptError(`${jsonFile}: not valid JSON (${(error as Error).message}).`);
    }
    if (!isRecord(entry) || entry.cacheVersion !== CACHE_VERSION)
      throw new CacheCorruptError(`${jsonFile}: not a cache entry of version ${CACHE_VERSION}.`);
    if (!isRecord(entry.blobs) || entry.meta === undefined || typeof entry.checksum !== "string") {
      throw new CacheCorruptError(`${jsonFile}: fields missing (meta, blobs, checksum).`);
    }
    if (entryChecksum(entry.meta, entry.blobs) !== entry.checksum)
      throw new CacheCorruptError(`${jsonFile}: checksum mismatch; the entry was altered or damaged.`);
    const blobs: Record<string, Float32Array> = {};
    for (const [blobName, ref] of Object.entries(entry.blobs)) {
      // The checksum matched, so these hold only if the entry was written by other code: still no
      // path outside this folder, no blob under another blob's name.
      if (
        !BLOB_NAME.test(blobName) ||
        !isRecord(ref) ||
        ref.file !== `${name}.${blobName}.f32` ||
        !Number.isSafeInteger(ref.length) ||
        (ref.length as number) < 0
      ) {
        throw new CacheCorruptError(`${jsonFile}: blob "${blobName}" is not described as this cache writes it.`);
      }
      const file = path.join(this.dir, ref.file);
      const bytes = readCacheFile(file, jsonFile) as Buffer;
      const length = ref.length as number;
      if (bytes.length !== length * 4)
        throw new CacheCorruptError(`${file}: ${bytes.length} bytes, expected ${length * 4}.`);
      if (sha256Hex(bytes) !== ref.sha256)
        throw new CacheCorruptError(`${file}: checksum mismatch; the file was altered or damaged.`);
      const array = new Float32Array(length);
      new Uint8Array(array.buffer).set(bytes);
      blobs[blobName] = array;
    }
    return { meta: entry.meta as M, blobs };
  }

  /**
   * Removes an entry's JSON, blobs and temporary files (after a corrupt read, before recomputing, after
   * a failed write); never its lock, nor the files of another entry whose name starts the same
   * ("c=1" is not "c=1.5").
   */
  remove(name: string): void {
    const own = new RegExp(`^${escapeRegExp(name)}\\.(json|[A-Za-z][A-Za-z0-9]*\\.f32)(\\.\\d+\\.[0-9a-z]+\\.tmp)?$`);
    for (const file of fs.existsSync(this.dir) ? fs.readdirSync(this.dir) : []) {
      if (!own.test(file)) continue;
      try {
        // Recursive: damage can leave a folder where a file of the entry belongs.
        fs.rmSync(path.join(this.dir, file), { force: true, recursive: true });
      } catch (error) {
        throw asStorageError(error, path.join(this.dir, file), CACHE_ELSEWHERE);
      }
    }
  }
}
