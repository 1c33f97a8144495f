/**
 * The on-disk cache of trained coefficients: one entry per KL coefficient inside a folder named by a
 * key that hashes everything that changes a result (config, data, backend, code version).
 *
 * An entry is a JSON file plus float32 blobs. Blobs are written first and the JSON last, each to a
 * per-process temporary name and then renamed, so a reader sees a complete entry or none; the JSON
 * holds each blob's SHA-256 and length, checked on every read. A damaged entry is reported and
 * treated as missing, never served.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

/** Bumped whenever training or stored fields change meaning, so stale entries stop matching. */
export const CACHE_VERSION = 4;

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

/** Writes through a temporary file in the same folder and renames it over the target. */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    fs.writeFileSync(temporary, data);
    fs.renameSync(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    throw error;
  }
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
  readonly meta: M;
  readonly blobs: Record<string, BlobRef>;
}

export class CacheCorruptError extends Error {
  override name = "CacheCorruptError";
}

/** A folder of named entries, each some JSON metadata plus named float32 arrays. */
export class EntryStore {
  constructor(readonly dir: string) {}

  private jsonPath(name: string): string {
    return path.join(this.dir, `${name}.json`);
  }

  /** The lock file guarding an entry while one process computes it (see `src/experiment/lock.ts`). */
  lockPath(name: string): string {
    fs.mkdirSync(this.dir, { recursive: true });
    return path.join(this.dir, `${name}.lock`);
  }

  has(name: string): boolean {
    return fs.existsSync(this.jsonPath(name));
  }

  write<M>(name: string, meta: M, blobs: Record<string, Float32Array>): void {
    const refs: Record<string, BlobRef> = {};
    for (const [blobName, array] of Object.entries(blobs)) {
      const bytes = asBytes(array);
      const file = `${name}.${blobName}.f32`;
      writeFileAtomic(path.join(this.dir, file), bytes);
      refs[blobName] = { file, length: array.length, sha256: sha256Hex(bytes) };
    }
    const entry: EntryFile<M> = { cacheVersion: CACHE_VERSION, meta, blobs: refs };
    writeFileAtomic(this.jsonPath(name), JSON.stringify(entry));
  }

  /**
   * Reads an entry; undefined when absent. Throws `CacheCorruptError` naming the file and the fault
   * when the JSON does not parse, the version differs, or a blob is missing, short or altered.
   */
  read<M>(name: string): { meta: M; blobs: Record<string, Float32Array> } | undefined {
    const jsonFile = this.jsonPath(name);
    if (!fs.existsSync(jsonFile)) return undefined;
    let entry: EntryFile<M>;
    try {
      entry = JSON.parse(fs.readFileSync(jsonFile, "utf8")) as EntryFile<M>;
    } catch (error) {
      throw new CacheCorruptError(`${jsonFile}: not valid JSON (${(error as Error).message}).`);
    }
    if (!entry || entry.cacheVersion !== CACHE_VERSION || typeof entry.blobs !== "object" || entry.meta === undefined) {
      throw new CacheCorruptError(`${jsonFile}: not a cache entry of version ${CACHE_VERSION}.`);
    }
    const blobs: Record<string, Float32Array> = {};
    for (const [blobName, ref] of Object.entries(entry.blobs)) {
      const file = path.join(this.dir, ref.file);
      if (!fs.existsSync(file)) throw new CacheCorruptError(`${file}: missing (listed by ${jsonFile}).`);
      const bytes = fs.readFileSync(file);
      if (bytes.length !== ref.length * 4) throw new CacheCorruptError(`${file}: ${bytes.length} bytes, expected ${ref.length * 4}.`);
      if (sha256Hex(bytes) !== ref.sha256) throw new CacheCorruptError(`${file}: checksum mismatch; the file was altered or damaged.`);
      const array = new Float32Array(ref.length);
      new Uint8Array(array.buffer).set(bytes);
      blobs[blobName] = array;
    }
    return { meta: entry.meta, blobs };
  }

  /** Removes an entry's JSON and blobs (after a corrupt read, before recomputing). */
  remove(name: string): void {
    for (const file of fs.existsSync(this.dir) ? fs.readdirSync(this.dir) : []) {
      if (file === `${name}.lock`) continue;
      if (file === `${name}.json` || file.startsWith(`${name}.`)) fs.rmSync(path.join(this.dir, file), { force: true });
    }
  }
}
