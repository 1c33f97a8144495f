/**
 * The full MNIST as the tutorial loads it (`keras.datasets.mnist`): four IDX files, raw or gzipped,
 * read from `data/mnist/`, validated, and fetched by `npm run fetch-mnist` for users with a network.
 * Format (Y. LeCun's page): a 4-byte magic number 0x00 0x00 <type> <rank>, then `rank` big-endian
 * uint32 sizes, then the body; MNIST uses type 0x08 (unsigned byte).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { constants as bufferConstants } from "node:buffer";
import { constants as zlibConstants, gunzipSync } from "node:zlib";
import { asStorageError, makeFolder } from "../system/storage";

export const IDX_FILES = Object.freeze({
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
});
export type IdxRole = keyof typeof IDX_FILES;

/** Default base address of the four gzipped files; `--base-url` or `MNIST_BASE_URL` replaces it. */
export const DEFAULT_MNIST_BASE_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/";

export class IdxError extends Error {
  override name = "IdxError";
}

export interface IdxArray {
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

interface IdxHeader {
  readonly shape: number[];
  readonly headerLength: number;
  /** Bytes the header promises for the body: the product of its sizes (up to 2^96, exact enough to compare). */
  readonly bodyLength: number;
}

/** Reads and checks the header of an IDX buffer; `file` names it in every error. Allocates nothing. */
function parseIdxHeader(buffer: Uint8Array, file: string): IdxHeader {
  if (buffer.length < 4)
    throw new IdxError(`${file}: ${buffer.length} bytes is too short for an IDX header (4 bytes of magic number).`);
  if (buffer[0] !== 0 || buffer[1] !== 0) {
    const gz = buffer[0] === 0x1f && buffer[1] === 0x8b ? " It looks gzipped: name it with a .gz suffix." : "";
    const remedy =
      gz ||
      " It is not an MNIST IDX file (or it is damaged): delete it and run `npm run fetch-mnist`, " +
        "or use the embedded digits (--data embedded).";
    throw new IdxError(`${file}: wrong magic number 0x${hex(buffer, 4)}; an IDX file starts with 0x0000.${remedy}`);
  }
  if (buffer[2] !== 0x08)
    throw new IdxError(
      `${file}: element type 0x${buffer[2].toString(16)} is not 0x08 (unsigned byte), the type of MNIST files.`,
    );
  const rank = buffer[3];
  if (rank < 1 || rank > 3) throw new IdxError(`${file}: rank ${rank} is not 1 (labels) or 3 (images).`);
  const headerLength = 4 + 4 * rank;
  if (buffer.length < headerLength)
    throw new IdxError(`${file}: truncated header (${buffer.length} of ${headerLength} bytes).`);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  return { shape, headerLength, bodyLength: shape.reduce((a, b) => a * b, 1) };
}

/**
 * Parses one IDX buffer of unsigned bytes; `file` names it in every error. The sizes the header claims
 * are checked against the buffer's length before anything is read or allocated, so a header claiming
 * billions of images in a small file fails at once.
 */
export function parseIdx(buffer: Uint8Array, file: string): IdxArray {
  const { shape, headerLength, bodyLength: expected } = parseIdxHeader(buffer, file);
  const body = buffer.length - headerLength;
  if (body < expected) {
    throw new IdxError(
      `${file}: truncated: the header promises ${shape.join(" x ")} = ${expected} bytes but the body has ${body}. ` +
        "Delete it and fetch it again.",
    );
  }
  if (body > expected)
    throw new IdxError(
      `${file}: ${body - expected} bytes follow the ${shape.join(" x ")} body; the file is not a valid IDX file.`,
    );
  return { shape, data: buffer.subarray(headerLength) };
}

/**
 * Deflate compresses at most about 1032 to 1 (258-byte matches coded in as little as 2 bits), so a gzip
 * stream of n bytes cannot hold more than this many times n; the margin covers a stream's fixed costs.
 */
const DEFLATE_MAX_RATIO = 1032;
const GZIP_SLACK = 1024;

/** Start of the decompressed stream (at most 1 MB), enough for an IDX header; decompresses a prefix only. */
function peekGunzip(bytes: Uint8Array, file: string): Uint8Array {
  const largestHeader = 16;
  for (const prefix of [512, 65536, bytes.length]) {
    const part = bytes.subarray(0, Math.min(prefix, bytes.length));
    let start: Uint8Array;
    try {
      // A sync flush returns what the prefix decodes to instead of failing on the stream's missing end.
      start = gunzipSync(part, { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: 2 ** 20 });
    } catch (error) {
      throw new IdxError(
        `${file}: not a valid gzip stream (${(error as Error).message}); ` +
          "it may be damaged. Delete it and fetch it again.",
      );
    }
    if (start.length >= largestHeader || part.length === bytes.length) return start;
  }
  throw new IdxError(`${file}: not a valid gzip stream.`);
}

/**
 * Decompresses a gzipped IDX file, reading its header first: a header that claims more than the stream
 * could hold is refused before decompressing, and decompression stops one byte past the claim, so
 * memory never grows with a claim or a gzip bomb beyond what the file's size allows.
 */
function gunzipIdx(bytes: Uint8Array, file: string): Uint8Array {
  const { shape, headerLength, bodyLength } = parseIdxHeader(peekGunzip(bytes, file), file);
  const claimed = headerLength + bodyLength;
  const most = bytes.length * DEFLATE_MAX_RATIO + GZIP_SLACK;
  if (claimed > most) {
    throw new IdxError(
      `${file}: the header promises ${shape.join(" x ")} = ${bodyLength} bytes, ` +
        `more than a gzip stream of ${bytes.length} bytes can hold (at most ${most}); ` +
        "the file is damaged. Delete it and fetch it again.",
    );
  }
  try {
    return gunzipSync(bytes, { maxOutputLength: Math.min(claimed + 1, bufferConstants.MAX_LENGTH) });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw new IdxError(
        `${file}: decompresses to more than the ${claimed} bytes its ${shape.join(" x ")} header promises; ` +
          "the file is not a valid IDX file.",
      );
    }
    throw new IdxError(
      `${file}: not a valid gzip stream (${(error as Error).message}); ` +
        "it may be truncated. Delete it and fetch it again.",
    );
  }
}

function hex(buffer: Uint8Array, count: number): string {
  return Array.from(buffer.subarray(0, count), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Encodes an IDX file of unsigned bytes (used by the tests and by anyone preparing their own data). */
export function encodeIdx(shape: readonly number[], data: Uint8Array): Uint8Array {
  const header = new Uint8Array(4 + 4 * shape.length);
  header[2] = 0x08;
  header[3] = shape.length;
  const view = new DataView(header.buffer);
  shape.forEach((size, i) => view.setUint32(4 + 4 * i, size, false));
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(data, header.length);
  return out;
}

/** The path of a role's file in `dir`, raw preferred over `.gz`; undefined when neither exists. */
export function findIdxFile(dir: string, role: IdxRole): string | undefined {
  const base = path.join(dir, IDX_FILES[role]);
  if (fs.existsSync(base)) return base;
  if (fs.existsSync(`${base}.gz`)) return `${base}.gz`;
  return undefined;
}

/** True when all four files are present (then the sweep uses them instead of the embedded digits). */
export function hasIdxMnist(dir: string): boolean {
  return missingIdxFiles(dir).length === 0;
}

/** The paths (without `.gz`) of the four files that are in neither form, in `IDX_FILES` order. */
export function missingIdxFiles(dir: string): string[] {
  return (Object.keys(IDX_FILES) as IdxRole[])
    .filter((role) => findIdxFile(dir, role) === undefined)
    .map((role) => path.join(dir, IDX_FILES[role]));
}

/** Reads one IDX file, raw or gzipped (by its `.gz` suffix); every fault is an `IdxError` naming the file. */
export function readIdxFile(file: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new IdxError(
      `${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`,
    );
  }
  return parseIdx(file.endsWith(".gz") ? gunzipIdx(bytes, file) : bytes, file);
}

export interface IdxSplit {
  readonly images: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
  readonly files: readonly string[];
}

/** Reads and cross-checks one images/labels pair. */
export function readIdxPair(imagesFile: string, labelsFile: string): IdxSplit {
  const images = readIdxFile(imagesFile);
  const labels = readIdxFile(labelsFile);
  if (images.shape.length !== 3 || images.shape[1] !== 28 || images.shape[2] !== 28) {
    throw new IdxError(`${imagesFile}: images must have shape N x 28 x 28; got ${images.shape.join(" x ")}.`);
  }
  if (labels.shape.length !== 1)
    throw new IdxError(`${labelsFile}: labels must have rank 1; got shape ${labels.shape.join(" x ")}.`);
  if (images.shape[0] !== labels.shape[0]) {
    throw new IdxError(
      `${imagesFile} holds ${images.shape[0]} images but ${labelsFile} holds ${labels.shape[0]} labels; ` +
        "they must match.",
    );
  }
  const bad = labels.data.findIndex((label) => label > 9);
  if (bad >= 0) throw new IdxError(`${labelsFile}: label ${labels.data[bad]} at row ${bad} is not a digit 0-9.`);
  return { images: images.data, labels: labels.data, count: labels.shape[0], files: [imagesFile, labelsFile] };
}

export function readIdxMnist(dir: string): { train: IdxSplit; test: IdxSplit } {
  const need = (role: IdxRole): string => {
    const file = findIdxFile(dir, role);
    if (!file)
      throw new IdxError(
        `${path.join(dir, IDX_FILES[role])}(.gz) is missing; run \`npm run fetch-mnist\` or use the embedded data.`,
      );
    return file;
  };
  return {
    train: readIdxPair(need("trainImages"), need("trainLabels")),
    test: readIdxPair(need("testImages"), need("testLabels")),
  };
}

/**
 * Downloads the four gzipped files into `dir`. Each goes to a temporary name, is checked (gunzip and
 * IDX header against its body), and only then renamed into place, so a partial download never looks
 * like a valid file. Files already present and valid are kept.
 */
export async function downloadIdxMnist(
  dir: string,
  options: { baseUrl?: string; log?: (line: string) => void; fetchImpl?: typeof fetch } = {},
): Promise<string[]> {
  const baseUrl = (options.baseUrl ?? DEFAULT_MNIST_BASE_URL).replace(/\/?$/, "/");
  const log = options.log ?? (() => undefined);
  const fetchImpl = options.fetchImpl ?? fetch;
  try {
    makeFolder(dir);
  } catch (error) {
    throw asStorageError(error, dir, "or choose another folder with --dir DIR");
  }
  const written: string[] = [];
  for (const role of Object.keys(IDX_FILES) as IdxRole[]) {
    const name = `${IDX_FILES[role]}.gz`;
    const target = path.join(dir, name);
    const existing = findIdxFile(dir, role);
    if (existing) {
      readIdxFile(existing);
      log(`${existing}: present and valid, kept.`);
      continue;
    }
    const url = new URL(name, baseUrl).toString();
    let response: Response;
    try {
      response = await fetchImpl(url);
    } catch (error) {
      throw new IdxError(
        `Could not download ${url}: ${(error as Error).message}. Check the network or pass --base-url.`,
      );
    }
    if (!response.ok)
      throw new IdxError(`Could not download ${url}: HTTP ${response.status}. Check the address or pass --base-url.`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const temporary = `${target}.${process.pid}.tmp`;
    fs.writeFileSync(temporary, bytes);
    try {
      parseIdx(gunzipIdx(bytes, url), url);
    } catch (error) {
      fs.rmSync(temporary, { force: true });
      throw new IdxError(`Downloaded ${url} is not a valid gzipped IDX file: ${(error as Error).message}`);
    }
    fs.renameSync(temporary, target);
    log(`${target}: downloaded ${bytes.length} bytes, checked.`);
    written.push(target);
  }
  return written;
}

/** SHA-256 of byte arrays, used to key caches by the data they were computed from. */
export function sha256(...parts: ArrayBufferView[]): string {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
  return hash.digest("hex");
}
