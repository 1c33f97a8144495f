/**
 * Fuzzing the cache reader: a real entry (one coefficient trained on real digits, a small model so each
 * case takes a millisecond) mutated in 1,200 seeded ways, its JSON and its blobs, and read back through
 * `readCachedRun`, the reader the sweep uses. Each case must load exactly what was written (bit for
 * bit) or be refused as damaged, reported, and deleted; none may throw anything else.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { initBackend } from "../../src/backend/select";
import { CACHE_VERSION, EntryStore, stableStringify } from "../../src/experiment/cache";
import { readCachedRun, runSweep, type CoefficientRun } from "../../src/experiment/sweep";
import { resolveConfig } from "../../src/vae/config";
import { loadMnist } from "../../src/vae/data";
import { Random } from "../../src/vae/random";

const CASES = 1200;
const SEED = 1202;
const root = fs.mkdtempSync(path.join(os.tmpdir(), "vae-cache-fuzz-"));
after(() => fs.rmSync(root, { recursive: true, force: true }));

before(async () => {
  await initBackend({ quiet: true });
});

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Entry = {
  cacheVersion: number;
  checksum: string;
  meta: Record<string, Json>;
  blobs: Record<string, { file: string; length: number; sha256: string }>;
};

const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");
/** The entry with its checksum made right again: a damaged entry that a careless writer would have written. */
const resealed = (entry: Entry) =>
  JSON.stringify({ ...entry, checksum: sha256(stableStringify({ meta: entry.meta, blobs: entry.blobs })) });
const pick = <T>(random: Random, items: readonly T[]): T => items[random.int(items.length)];
const randomBytes = (random: Random, n: number) => Buffer.from(Array.from({ length: n }, () => random.int(256)));

/** Every path to a value inside a JSON value, the root excluded. */
function paths(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== "object") return [];
  const keys = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  return keys.flatMap((key) => [
    [...prefix, key],
    ...paths((value as Record<string, Json>)[key as string], [...prefix, key]),
  ]);
}

function parentOf(root: Json, at: (string | number)[]): Record<string | number, Json> {
  return at.slice(0, -1).reduce<Json>((node, key) => (node as Record<string, Json>)[key as string], root) as Record<
    string | number,
    Json
  >;
}

const ODD_VALUES: Json[] = [
  null,
  -1,
  0,
  1e308,
  -1e-300,
  "x",
  "",
  [],
  {},
  true,
  2 ** 53 + 2,
  "NaN",
  [1, 2, 3],
  { file: "c=1.zMean.f32" },
];

interface Files {
  json: string;
  blobs: Record<string, Buffer>;
}

type Mutation = (random: Random, dir: string, files: Files) => void;

const BLOBS = ["zMean", "manifold", "weights"];
const blobPath = (dir: string, blob: string) => path.join(dir, `c=1.${blob}.f32`);
const jsonPath = (dir: string) => path.join(dir, "c=1.json");

const MUTATIONS: Record<string, Mutation> = {
  "JSON bit flips": (random, dir, { json }) => {
    const bytes = Buffer.from(json);
    for (let i = 1 + random.int(4); i > 0; i--) bytes[random.int(bytes.length)] ^= 1 << random.int(8);
    fs.writeFileSync(jsonPath(dir), bytes);
  },
  "JSON truncated": (random, dir, { json }) => fs.writeFileSync(jsonPath(dir), json.slice(0, random.int(json.length))),
  "JSON value replaced": (random, dir, { json }) => {
    const entry = JSON.parse(json) as Json;
    const at = pick(random, paths(entry));
    parentOf(entry, at)[at[at.length - 1]] = pick(random, ODD_VALUES);
    fs.writeFileSync(jsonPath(dir), JSON.stringify(entry));
  },
  "JSON key removed": (random, dir, { json }) => {
    const entry = JSON.parse(json) as Json;
    const at = pick(random, paths(entry));
    const parent = parentOf(entry, at);
    if (Array.isArray(parent)) parent.splice(at[at.length - 1] as number, 1);
    else delete parent[at[at.length - 1]];
    fs.writeFileSync(jsonPath(dir), JSON.stringify(entry));
  },
  "JSON number nudged": (random, dir, { json }) => {
    // A plausible-looking change (a loss off in its last digits) that only the entry's checksum shows.
    const entry = JSON.parse(json) as Json;
    const numbers = paths(entry).filter((at) => typeof parentOf(entry, at)[at[at.length - 1]] === "number");
    const at = pick(random, numbers);
    const parent = parentOf(entry, at);
    const value = parent[at[at.length - 1]] as number;
    parent[at[at.length - 1]] = value === 0 ? 1e-12 : value * (1 + pick(random, [1e-15, -1e-12, 1e-6]));
    fs.writeFileSync(jsonPath(dir), JSON.stringify(entry));
  },
  "JSON reformatted": (random, dir, { json }) => {
    // Harmless: the same values indented or with keys in another order load as written.
    const entry = JSON.parse(json) as Entry;
    const reordered = random.next() < 0.5 ? entry : Object.fromEntries(Object.entries(entry).reverse());
    fs.writeFileSync(jsonPath(dir), JSON.stringify(reordered, null, pick(random, [0, 1, 2, "\t"])));
  },
  "JSON not an entry": (random, dir) =>
    fs.writeFileSync(
      jsonPath(dir),
      pick(random, [
        "",
        "[]",
        "null",
        "42",
        '"entry"',
        "{}",
        `{"cacheVersion":${CACHE_VERSION - 1}}`,
        randomBytes(random, 64).toString("latin1"),
      ]),
    ),
  "another cache version": (random, dir, { json }) => {
    const entry = JSON.parse(json) as Entry;
    fs.writeFileSync(
      jsonPath(dir),
      resealed({ ...entry, cacheVersion: pick(random, [0, CACHE_VERSION - 1, CACHE_VERSION + 1, -1]) }),
    );
  },
  "blob descriptions swapped, checksum made right": (random, dir, { json }) => {
    const entry = JSON.parse(json) as Entry;
    const [a, b] = pick(random, [
      ["zMean", "manifold"],
      ["manifold", "weights"],
      ["zMean", "weights"],
    ]);
    fs.writeFileSync(
      jsonPath(dir),
      resealed({ ...entry, blobs: { ...entry.blobs, [a]: entry.blobs[b], [b]: entry.blobs[a] } }),
    );
  },
  "blob path outside the folder, checksum made right": (random, dir, { json }) => {
    const entry = JSON.parse(json) as Entry;
    const blob = pick(random, BLOBS);
    fs.writeFileSync(
      jsonPath(dir),
      resealed({
        ...entry,
        blobs: {
          ...entry.blobs,
          [blob]: {
            ...entry.blobs[blob],
            file: pick(random, [
              "../c=1.zMean.f32",
              "/etc/hostname",
              "c=1.json",
              `../${path.basename(dir)}/c=1.${blob}.f32`,
            ]),
          },
        },
      }),
    );
  },
  "another coefficient, checksum made right": (random, dir, { json }) => {
    const entry = JSON.parse(json) as Entry;
    fs.writeFileSync(
      jsonPath(dir),
      resealed({ ...entry, meta: { ...entry.meta, klCoefficient: pick(random, [0, 2, 0.5, "1"]) } }),
    );
  },
  "arrays of another config, all checksums made right": (random, dir, { json, blobs }) => {
    // A complete, self-consistent entry whose arrays have other sizes, as a sweep with another test
    // size or manifold would write: only the sizes this config gives tell it apart.
    const entry = JSON.parse(json) as Entry;
    const blob = pick(random, BLOBS);
    const bytes = blobs[blob].subarray(0, 4 * Math.max(1, random.int(blobs[blob].length / 4)));
    fs.writeFileSync(blobPath(dir, blob), bytes);
    fs.writeFileSync(
      jsonPath(dir),
      resealed({
        ...entry,
        blobs: { ...entry.blobs, [blob]: { ...entry.blobs[blob], length: bytes.length / 4, sha256: sha256(bytes) } },
      }),
    );
  },
  "blob bit flips": (random, dir, { blobs }) => {
    const blob = pick(random, BLOBS);
    const bytes = Buffer.from(blobs[blob]);
    for (let i = 1 + random.int(4); i > 0; i--) bytes[random.int(bytes.length)] ^= 1 << random.int(8);
    fs.writeFileSync(blobPath(dir, blob), bytes);
  },
  "blob truncated": (random, dir, { blobs }) => {
    const blob = pick(random, BLOBS);
    fs.writeFileSync(blobPath(dir, blob), blobs[blob].subarray(0, random.int(blobs[blob].length)));
  },
  "blob extended": (random, dir, { blobs }) => {
    const blob = pick(random, BLOBS);
    fs.writeFileSync(
      blobPath(dir, blob),
      Buffer.concat([blobs[blob], randomBytes(random, pick(random, [1, 3, 4, 8, 4096]))]),
    );
  },
  "blob replaced by random bytes of its length": (random, dir, { blobs }) => {
    const blob = pick(random, BLOBS);
    fs.writeFileSync(blobPath(dir, blob), randomBytes(random, blobs[blob].length));
  },
  "blob replaced by another blob": (random, dir, { blobs }) => {
    const [a, b] = pick(random, [
      ["zMean", "manifold"],
      ["manifold", "weights"],
      ["weights", "zMean"],
    ]);
    fs.writeFileSync(blobPath(dir, a), blobs[b]);
  },
  "file deleted or made a folder": (random, dir) => {
    const file = pick(random, [...BLOBS.map((blob) => blobPath(dir, blob)), jsonPath(dir)]);
    fs.rmSync(file);
    if (random.next() < 0.5) fs.mkdirSync(file);
  },
};

/** The class of a refusal, from the message the sweep logs. */
function refusalClass(message: string): string {
  const classes: [RegExp, string][] = [
    [/not valid JSON/, "JSON does not parse"],
    [/not a cache entry of version/, "not an entry of this cache version"],
    [/fields missing \(meta/, "entry fields missing"],
    [/\.json: checksum mismatch/, "entry checksum mismatch"],
    [/is not described as this cache writes it/, "blob description not as written"],
    [/missing \(listed by/, "blob missing"],
    [/not a readable file/, "not a readable file"],
    [/bytes, expected/, "blob length differs"],
    [/\.f32: checksum mismatch/, "blob checksum mismatch"],
    [/fields missing or for another coefficient/, "for another coefficient"],
    [/values, this config needs/, "array size not this config's"],
  ];
  return classes.find(([pattern]) => pattern.test(message))?.[1] ?? `other (${message})`;
}

function sameRun(loaded: CoefficientRun, written: CoefficientRun): boolean {
  const bits = (a: Float32Array, b: Float32Array) =>
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  try {
    assert.deepEqual(
      {
        history: loaded.history,
        test: loaded.test,
        metrics: loaded.metrics,
        trainSeconds: loaded.trainSeconds,
        klCoefficient: loaded.klCoefficient,
      },
      {
        history: written.history,
        test: written.test,
        metrics: written.metrics,
        trainSeconds: written.trainSeconds,
        klCoefficient: written.klCoefficient,
      },
    );
  } catch {
    return false;
  }
  return (
    bits(loaded.zMean, written.zMean) &&
    bits(loaded.manifold, written.manifold) &&
    bits(loaded.weights, written.weights)
  );
}

test(`${CASES} mutated cache entries load exactly as written or are refused, reported and deleted`, async (t) => {
  const config = resolveConfig({
    klCoefficients: [1],
    epochs: 1,
    trainSize: 256,
    testSize: 64,
    dataSource: "embedded",
    intermediateDim: 16,
    manifoldSize: 4,
  });
  const data = loadMnist(config);
  const cacheDir = path.join(root, "cache");
  const sweep = await runSweep({ config, data, cacheDir });
  const written = sweep.runs[0];
  const dir = path.join(cacheDir, sweep.key);
  const store = new EntryStore(dir);
  const files: Files = {
    json: fs.readFileSync(jsonPath(dir), "utf8"),
    blobs: Object.fromEntries(BLOBS.map((blob) => [blob, fs.readFileSync(blobPath(dir, blob))])),
  };
  const restore = () => {
    for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    fs.writeFileSync(jsonPath(dir), files.json);
    for (const blob of BLOBS) fs.writeFileSync(blobPath(dir, blob), files.blobs[blob]);
  };

  const random = new Random(SEED);
  const kinds = Object.keys(MUTATIONS);
  const byOutcome: Record<string, number> = {};
  const byMutation: Record<string, Record<string, number>> = {};
  const problems: string[] = [];
  for (let index = 0; index < CASES; index++) {
    const kind = kinds[index % kinds.length];
    restore();
    MUTATIONS[kind](random, dir, files);
    const log: string[] = [];
    let outcome: string;
    try {
      const run = readCachedRun(store, { config, testSize: data.testSize, klCoefficient: 1 }, (line) => log.push(line));
      if (run) {
        outcome = "loaded";
        if (!sameRun(run, written))
          problems.push(`case ${index} (${kind}): served data that differs from what was written`);
      } else if (log.length === 0 && !fs.existsSync(jsonPath(dir))) {
        // No JSON, no entry: the sweep trains the coefficient again, after removing the leftover blobs.
        outcome = "absent (its JSON deleted)";
      } else {
        const message = log.join("\n");
        outcome = `refused: ${refusalClass(message)}`;
        if (!/^Cache entry for c = 1 is damaged and will be recomputed: /.test(message))
          problems.push(`case ${index} (${kind}): refused without the report: ${message}`);
        if (fs.existsSync(jsonPath(dir))) problems.push(`case ${index} (${kind}): the damaged entry was not deleted`);
        if (readCachedRun(store, { config, testSize: data.testSize, klCoefficient: 1 }, () => undefined) !== undefined)
          problems.push(`case ${index} (${kind}): served after refusal`);
      }
    } catch (error) {
      outcome = `crashed: ${(error as Error).name}`;
      problems.push(`case ${index} (${kind}): ${(error as Error).stack}`);
    }
    byOutcome[outcome] = (byOutcome[outcome] ?? 0) + 1;
    const perKind = (byMutation[kind] ??= {});
    perKind[outcome] = (perKind[outcome] ?? 0) + 1;
  }

  t.diagnostic(
    `cache fuzz: ${CASES} cases on one real entry (${Object.values(files.blobs).reduce((sum, b) => sum + b.length, 0)} bytes of blobs)`,
  );
  for (const [outcome, n] of Object.entries(byOutcome).sort((a, b) => b[1] - a[1]))
    t.diagnostic(`  ${String(n).padStart(5)}  ${outcome}`);
  t.diagnostic("by mutation:");
  for (const [kind, outcomes] of Object.entries(byMutation))
    t.diagnostic(
      `  ${kind}: ${Object.entries(outcomes)
        .map(([o, n]) => `${n} ${o.replace(/^refused: /, "")}`)
        .join(", ")}`,
    );

  assert.deepEqual(problems, [], "no crash, nothing wrong served, every refusal reported and deleted");
  assert.deepEqual(Object.keys(byMutation["JSON reformatted"]), ["loaded"], "harmless reformatting always loads");
  for (const kind of kinds.filter((k) => k !== "JSON reformatted"))
    assert.equal(byMutation[kind].loaded ?? 0, 0, `${kind}: never loads`);
  for (const expected of [
    "entry checksum mismatch",
    "blob checksum mismatch",
    "blob length differs",
    "blob missing",
    "not a readable file",
    "JSON does not parse",
    "not an entry of this cache version",
    "blob description not as written",
    "for another coefficient",
    "array size not this config's",
  ]) {
    assert.ok(byOutcome[`refused: ${expected}`] > 0, `some case is refused for "${expected}"`);
  }
});
