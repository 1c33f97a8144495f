/**
 * The body of the IDX fuzzer (test/vae/idxFuzz.test.ts), bundled with esbuild and run by plain Node
 * under an address-space limit (`ulimit -v`), so that a loader that allocated memory from a header's
 * claim before checking it against the file would fail here with "Array buffer allocation failed"
 * instead of passing unnoticed (untouched memory does not show in the resident size).
 *
 * Arguments: `--probe` (print the process's address-space size and exit), or WORKDIR SEED COUNT. Prints
 * one line of JSON: the counts by outcome and by mutation, every crash or invalid load, times and memory.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { loadMnist } from "../../src/vae/data";
import { encodeIdx, IDX_FILES, IdxError, type IdxRole } from "../../src/vae/idx";
import { Random } from "../../src/vae/random";

const ROLES = Object.keys(IDX_FILES) as IdxRole[];
const TRAIN_ROWS = 6;
const TEST_ROWS = 4;

function procStatus(field: string): number {
  const line = fs
    .readFileSync("/proc/self/status", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${field}:`));
  return line ? Number(/\d+/.exec(line)?.[0]) : NaN;
}

/** Image i's pixel k is (7 i + k) mod 256; label i is i mod 10. */
function baseFiles(): Record<IdxRole, Uint8Array> {
  const images = (n: number) =>
    encodeIdx(
      [n, 28, 28],
      Uint8Array.from({ length: n * 784 }, (_, k) => (7 * Math.floor(k / 784) + k) % 256),
    );
  const labels = (n: number) =>
    encodeIdx(
      [n],
      Uint8Array.from({ length: n }, (_, i) => i % 10),
    );
  return {
    trainImages: images(TRAIN_ROWS),
    trainLabels: labels(TRAIN_ROWS),
    testImages: images(TEST_ROWS),
    testLabels: labels(TEST_ROWS),
  };
}

/** What a loader's error says, as a short class; anything but an IdxError is a crash. */
function classify(error: unknown): string {
  if (!(error instanceof IdxError)) return `crashed: ${(error as Error)?.name}: ${(error as Error)?.message}`;
  const classes: [RegExp, string][] = [
    [/too short for an IDX header/, "too short for a header"],
    [/wrong magic number/, "wrong magic number"],
    [/element type/, "wrong element type"],
    [/rank \d+ is not/, "wrong rank"],
    [/truncated header/, "truncated header"],
    [/truncated: the header promises/, "body shorter than the header's claim"],
    [/bytes follow the/, "bytes after the body"],
    [/more than a gzip stream of/, "claim beyond what the gzip stream can hold"],
    [/decompresses to more than/, "gzip stream longer than the claim"],
    [/not a valid gzip stream/, "gzip damage"],
    [/images must have shape/, "image shape not N x 28 x 28"],
    [/labels must have rank 1/, "label rank not 1"],
    [/images but .* labels/, "image and label counts differ"],
    [/is not a digit/, "label not a digit"],
  ];
  const found = classes.find(([pattern]) => pattern.test(error.message));
  return `refused: ${found ? found[1] : `other (${error.message})`}`;
}

/** The IDX bytes as a reader independent of the loader sees them: header sizes by hand, then the body. */
function decodeByHand(bytes: Uint8Array): { shape: number[]; body: Uint8Array } {
  const rank = bytes[3];
  const shape = Array.from(
    { length: rank },
    (_, i) => ((bytes[4 + 4 * i] << 24) >>> 0) + (bytes[5 + 4 * i] << 16) + (bytes[6 + 4 * i] << 8) + bytes[7 + 4 * i],
  );
  return { shape, body: bytes.subarray(4 + 4 * rank) };
}

interface Mutation {
  readonly kind: string;
  /** The file's new bytes, given the valid raw IDX bytes and the format the case writes. */
  readonly apply: (random: Random, raw: Uint8Array, gzipped: boolean, index: number) => Uint8Array;
}

const pick = <T>(random: Random, items: readonly T[]): T => items[random.int(items.length)];
const randomBytes = (random: Random, n: number) => Uint8Array.from({ length: n }, () => random.int(256));
const encode = (raw: Uint8Array, gzipped: boolean) => (gzipped ? new Uint8Array(gzipSync(raw)) : raw);

function flipBits(random: Random, bytes: Uint8Array): Uint8Array {
  const out = Uint8Array.from(bytes);
  const flips = 1 + random.int(8);
  for (let i = 0; i < flips; i++) out[random.int(out.length)] ^= 1 << random.int(8);
  return out;
}

/**
 * Truncation lengths by class, cycled through by case number: empty, inside the magic number, inside
 * the sizes, exactly the header, inside the body, one byte short; for gzip also inside the gzip header,
 * inside the deflate data and inside the 8-byte trailer (checksum and length).
 */
function truncationLength(
  random: Random,
  length: number,
  headerLength: number,
  gzipped: boolean,
  index: number,
): number {
  const between = (low: number, high: number) =>
    Math.max(0, Math.min(length - 1, low + random.int(Math.max(1, high - low))));
  const classes = gzipped
    ? [
        () => 0,
        () => between(1, 10),
        () => 10,
        () => between(11, length - 8),
        () => between(length - 8, length - 4),
        () => between(length - 4, length),
        () => length - 1,
      ]
    : [
        () => 0,
        () => between(1, 4),
        () => 4,
        () => between(5, headerLength),
        () => headerLength,
        () => between(headerLength + 1, length - 1),
        () => length - 1,
      ];
  return classes[index % classes.length]();
}

/** 16 MB of zeros as one gzip member (about 16 KB): repeated, a stream far longer than any claim. */
const ZEROS_MEMBER = new Uint8Array(gzipSync(new Uint8Array(16 * 2 ** 20)));

const MUTATIONS: readonly Mutation[] = [
  {
    kind: "bit flips",
    apply: (random, raw, gzipped) => (gzipped ? flipBits(random, encode(raw, true)) : flipBits(random, raw)),
  },
  {
    kind: "truncation",
    apply: (random, raw, gzipped, index) => {
      const bytes = encode(raw, gzipped);
      return bytes.subarray(0, truncationLength(random, bytes.length, 4 + 4 * raw[3], gzipped, index));
    },
  },
  {
    kind: "random header",
    apply: (random, raw, gzipped) => {
      const rank = random.next() < 0.8 ? 1 + random.int(3) : random.int(256);
      const header = Uint8Array.from([
        random.next() < 0.8 ? 0 : random.int(256),
        random.next() < 0.8 ? 0 : random.int(256),
        random.next() < 0.7 ? 8 : random.int(256),
        rank,
      ]);
      const sizes = randomBytes(random, 4 * Math.min(rank, 3));
      const body = random.next() < 0.5 ? raw.subarray(4 + 4 * raw[3]) : randomBytes(random, random.int(200));
      return encode(Uint8Array.from([...header, ...sizes, ...body]), gzipped);
    },
  },
  {
    kind: "huge claimed dimensions",
    apply: (random, raw, gzipped) => {
      const big = () => pick(random, [2 ** 31, 2 ** 32 - 1, 2 ** 21, 2 ** 20 + random.int(2 ** 31)]);
      const shape =
        raw[3] === 1
          ? [big()]
          : pick(random, [
              [big(), 28, 28],
              [big(), big(), big()],
              [1, 2 ** 16, 2 ** 16 - 1],
              [big(), 28, 2 ** 20],
            ]);
      const header = encodeIdx(shape, new Uint8Array(0));
      return encode(Uint8Array.from([...header, ...randomBytes(random, random.int(100 - header.length))]), gzipped);
    },
  },
  {
    kind: "bytes appended",
    apply: (random, raw, gzipped) =>
      Uint8Array.from([...encode(raw, gzipped), ...randomBytes(random, 1 + random.int(64))]),
  },
  {
    kind: "gzip damage",
    apply: (random, raw) => {
      const bytes = Uint8Array.from(encode(raw, true));
      const end = bytes.length;
      switch (random.int(7)) {
        case 0: // the CRC-32 of the data
          bytes[end - 8 + random.int(4)] ^= 1 + random.int(255);
          return bytes;
        case 1: // the length of the data modulo 2^32
          bytes[end - 4 + random.int(4)] ^= 1 + random.int(255);
          return bytes;
        case 2: // the flags byte: optional fields announced that are not there
          bytes[3] = 1 + random.int(255);
          return bytes;
        case 3: // the compression method
          bytes[2] = random.int(256);
          return bytes;
        case 4: // a run of the deflate data overwritten
          {
            const run = Math.max(1, Math.min(1 + random.int(32), end - 18));
            bytes.set(randomBytes(random, run), 10 + random.int(Math.max(1, end - 18 - run)));
          }
          return bytes;
        case 5: // the data in two gzip members, which gunzip joins: still the same file
          return Uint8Array.from([
            ...gzipSync(raw.subarray(0, raw.length >> 1)),
            ...gzipSync(raw.subarray(raw.length >> 1)),
          ]);
        default: // a gzip bomb: the valid file followed by members of zeros, 16 MB each
          return Uint8Array.from([
            ...bytes,
            ...Array.from({ length: 1 + random.int(40) }, () => [...ZEROS_MEMBER]).flat(),
          ]);
      }
    },
  },
  {
    kind: "label not a digit",
    apply: (random, raw, gzipped) => {
      const out = Uint8Array.from(raw);
      const header = 4 + 4 * raw[3];
      out[header + random.int(out.length - header)] = 10 + random.int(246);
      return encode(out, gzipped);
    },
  },
  {
    kind: "another count or shape",
    apply: (random, raw, gzipped) => {
      const count = random.int(9);
      const shape =
        raw[3] === 1
          ? [count]
          : pick(random, [
              [count, 28, 28],
              [count, 28, 27],
              [count, 784],
              [count, 14, 56],
            ]);
      const size = shape.reduce((a, b) => a * b, 1);
      return encode(
        encodeIdx(
          shape,
          Uint8Array.from({ length: size }, (_, k) => (raw[3] === 1 ? k % 10 : k % 256)),
        ),
        gzipped,
      );
    },
  },
];

/** What one fuzz run reports back to the test. */
export interface Report {
  cases: number;
  byOutcome: Record<string, number>;
  byMutation: Record<string, Record<string, number>>;
  problems: string[];
  maxMilliseconds: number;
  slowest: string;
  claim: Record<string, { outcome: string; milliseconds: number }>;
  control: string;
  vmPeakKb: number;
  vmHwmKb: number;
}

function writeSet(dir: string, files: Record<IdxRole, Uint8Array>, gzipped: boolean): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const role of ROLES)
    fs.writeFileSync(path.join(dir, `${IDX_FILES[role]}${gzipped ? ".gz" : ""}`), encode(files[role], gzipped));
}

/** Loads through the real loader and checks a loaded set against the files read by hand. */
function loadCase(dir: string, gzipped: boolean): { outcome: string; milliseconds: number; problem?: string } {
  const started = performance.now();
  try {
    const data = loadMnist({ dataSource: "idx", trainSize: 60000, testSize: 10000, seed: 1 }, { idxDir: dir });
    const milliseconds = performance.now() - started;
    try {
      return checkLoaded(dir, gzipped, data)
        ? { outcome: "loaded", milliseconds }
        : { outcome: "loaded", milliseconds, problem: "loaded data differs from the files read by hand" };
    } catch (error) {
      return {
        outcome: "loaded",
        milliseconds,
        problem: `loaded, but the files do not read by hand: ${(error as Error).message}`,
      };
    }
  } catch (error) {
    return { outcome: classify(error), milliseconds: performance.now() - started };
  }
}

/** True when every pixel is its file's byte / 255 and every label its file's byte, read by hand. */
function checkLoaded(dir: string, gzipped: boolean, data: ReturnType<typeof loadMnist>): boolean {
  const read = (role: IdxRole) => {
    const bytes = fs.readFileSync(path.join(dir, `${IDX_FILES[role]}${gzipped ? ".gz" : ""}`));
    return decodeByHand(gzipped ? gunzipSync(bytes) : bytes);
  };
  for (const [images, labels, x, y] of [
    ["trainImages", "trainLabels", data.xTrain, data.yTrain],
    ["testImages", "testLabels", data.xTest, data.yTest],
  ] as const) {
    const imageFile = read(images);
    const labelFile = read(labels);
    const rows = labelFile.shape[0];
    const pixelsMatch =
      x.length === rows * 784 &&
      imageFile.body.length === x.length &&
      x.every((value, i) => value === Math.fround(imageFile.body[i] / 255));
    const labelsMatch = y.length === rows && y.every((label, i) => label === labelFile.body[i] && label <= 9);
    if (!pixelsMatch || !labelsMatch) return false;
  }
  return true;
}

function run(workdir: string, seed: number, count: number): Report {
  const random = new Random(seed);
  const base = baseFiles();
  const report: Report = {
    cases: 0,
    byOutcome: {},
    byMutation: {},
    problems: [],
    maxMilliseconds: 0,
    slowest: "",
    claim: {},
    control: "",
    vmPeakKb: 0,
    vmHwmKb: 0,
  };
  const dirs = { raw: path.join(workdir, "raw"), gz: path.join(workdir, "gz") };
  writeSet(dirs.raw, base, false);
  writeSet(dirs.gz, base, true);
  const record = (kind: string, result: { outcome: string; milliseconds: number; problem?: string }, label: string) => {
    report.cases++;
    report.byOutcome[result.outcome] = (report.byOutcome[result.outcome] ?? 0) + 1;
    const perKind = (report.byMutation[kind] ??= {});
    perKind[result.outcome] = (perKind[result.outcome] ?? 0) + 1;
    if (result.outcome.startsWith("crashed") || result.problem)
      report.problems.push(`${label}: ${result.problem ?? result.outcome}`);
    if (result.milliseconds > report.maxMilliseconds) {
      report.maxMilliseconds = result.milliseconds;
      report.slowest = label;
    }
  };

  // The named case: a header claiming 2^31 images of 28 x 28 in a 100-byte file, raw and gzipped.
  for (const gzipped of [false, true]) {
    const role: IdxRole = "trainImages";
    const file = path.join(gzipped ? dirs.gz : dirs.raw, `${IDX_FILES[role]}${gzipped ? ".gz" : ""}`);
    fs.writeFileSync(file, encode(encodeIdx([2 ** 31, 28, 28], new Uint8Array(84)), gzipped));
    const result = loadCase(gzipped ? dirs.gz : dirs.raw, gzipped);
    report.claim[gzipped ? "gzipped" : "raw"] = { outcome: result.outcome, milliseconds: result.milliseconds };
    record("huge claimed dimensions", result, `2^31 x 28 x 28 in 100 bytes (${gzipped ? "gzipped" : "raw"})`);
    fs.writeFileSync(file, encode(base[role], gzipped));
  }

  for (let index = 0; report.cases < count; index++) {
    const role = pick(random, ROLES);
    const mutation =
      role.endsWith("Labels") || MUTATIONS[index % MUTATIONS.length].kind !== "label not a digit"
        ? MUTATIONS[index % MUTATIONS.length]
        : MUTATIONS[0];
    const gzipped = mutation.kind === "gzip damage" || random.next() < 0.5;
    const dir = gzipped ? dirs.gz : dirs.raw;
    const file = path.join(dir, `${IDX_FILES[role]}${gzipped ? ".gz" : ""}`);
    fs.writeFileSync(file, mutation.apply(random, base[role], gzipped, index));
    record(
      mutation.kind,
      loadCase(dir, gzipped),
      `case ${index} (${mutation.kind}, ${role}, ${gzipped ? "gzipped" : "raw"})`,
    );
    fs.writeFileSync(file, encode(base[role], gzipped));
  }

  // The limit is real: allocating what a large claim asks for (2^21 x 28 x 28 bytes, 1.6 GB) fails under it.
  try {
    const claimed = new Uint8Array(2 ** 21 * 784);
    report.control = `allocated ${claimed.length} bytes: the limit does not hold`;
  } catch (error) {
    report.control = `refused: ${(error as Error).message}`;
  }
  report.vmPeakKb = procStatus("VmPeak");
  report.vmHwmKb = procStatus("VmHWM");
  return report;
}

if (process.argv[2] === "--probe") {
  console.log(JSON.stringify({ vmSizeKb: procStatus("VmSize") }));
} else {
  const [workdir, seed, count] = process.argv.slice(2);
  console.log(JSON.stringify(run(workdir, Number(seed), Number(count))));
}
