import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import { initBackend } from "../../src/backend/select";
import { spawnSync } from "node:child_process";
import {
  CACHE_VERSION,
  CacheCorruptError,
  EntryStore,
  hashKey,
  stableStringify,
  writeFileAtomic,
} from "../../src/experiment/cache";
import { resolveConfig } from "../../src/vae/config";
import { loadMnist } from "../../src/vae/data";
import { runSweep } from "../../src/experiment/sweep";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "vae-cache-"));

describe("EntryStore", () => {
  const damage: [string, (dir: string) => void, RegExp][] = [
    [
      "a truncated blob",
      (dir) => fs.truncateSync(path.join(dir, "e.values.f32"), 8),
      /e\.values\.f32: 8 bytes, expected 16/,
    ],
    [
      "a flipped byte",
      (dir) => {
        const f = path.join(dir, "e.values.f32");
        const b = fs.readFileSync(f);
        b[5] ^= 0xff;
        fs.writeFileSync(f, b);
      },
      /e\.values\.f32: checksum mismatch/,
    ],
    [
      "invalid JSON",
      (dir) => fs.writeFileSync(path.join(dir, "e.json"), '{"cacheVersion": 1,'),
      /e\.json: not valid JSON/,
    ],
    ["a missing blob", (dir) => fs.rmSync(path.join(dir, "e.values.f32")), /e\.values\.f32: missing \(listed by/],
    [
      "another cache version",
      (dir) => {
        const f = path.join(dir, "e.json");
        fs.writeFileSync(f, fs.readFileSync(f, "utf8").replace(`"cacheVersion":${CACHE_VERSION}`, '"cacheVersion":0'));
      },
      new RegExp(`not a cache entry of version ${CACHE_VERSION}`),
    ],
  ];

  test("writes an entry atomically and reads back exactly what was written", () => {
    const dir = tmp();
    const store = new EntryStore(dir);
    store.write("e", { note: "hello" }, { values: Float32Array.from([1.5, -2, 3.25, 0]) });
    assert.deepEqual(store.read("e"), {
      meta: { note: "hello" },
      blobs: { values: Float32Array.from([1.5, -2, 3.25, 0]) },
    });
    assert.deepEqual(fs.readdirSync(dir).sort(), ["e.json", "e.values.f32"], "no temporary file is left");
    assert.equal(store.read("absent"), undefined);
  });

  for (const [what, harm, message] of damage) {
    test(`reports ${what} instead of serving it`, () => {
      const dir = tmp();
      const store = new EntryStore(dir);
      store.write("e", { note: "hello" }, { values: Float32Array.from([1.5, -2, 3.25, 0]) });
      harm(dir);
      assert.throws(
        () => store.read("e"),
        (error: unknown) => error instanceof CacheCorruptError && message.test(error.message),
      );
    });
  }

  test("removing a damaged entry leaves the entries whose names start the same (c=1 and c=1.5) and every lock", () => {
    const dir = tmp();
    const store = new EntryStore(dir);
    store.write("c=1", { c: 1 }, { values: Float32Array.from([1]) });
    store.write("c=1.5", { c: 1.5 }, { values: Float32Array.from([1.5]) });
    fs.writeFileSync(path.join(dir, "c=1.lock"), "{}");
    fs.writeFileSync(path.join(dir, "c=1.5.lock"), "{}");
    fs.writeFileSync(path.join(dir, "c=1.values.f32.12345.abc.tmp"), "left by a killed writer");
    store.remove("c=1");
    assert.deepEqual(fs.readdirSync(dir).sort(), ["c=1.5.json", "c=1.5.lock", "c=1.5.values.f32", "c=1.lock"]);
    assert.deepEqual(store.read("c=1.5")?.blobs.values, Float32Array.from([1.5]));
  });

  test("a write removes the temporary files of its target left by dead writers, not those of live ones", () => {
    const dir = tmp();
    const target = path.join(dir, "latest.json");
    // A pid that has certainly ended: a child process that ran and was reaped.
    const deadPid = spawnSync(process.execPath, ["-e", "0"]).pid as number;
    const dead = `${target}.${deadPid}.k1.tmp`;
    const live = `${target}.${process.pid}.k2.tmp`;
    const otherTarget = path.join(dir, `other.json.${deadPid}.k3.tmp`);
    for (const file of [dead, live, otherTarget]) fs.writeFileSync(file, "partial");
    writeFileAtomic(target, "{}");
    assert.deepEqual(
      fs.readdirSync(dir).sort(),
      [path.basename(target), path.basename(live), path.basename(otherTarget)].sort(),
    );
  });

  test("an entry whose JSON was edited, even consistently with its blobs, is refused by its checksum", () => {
    const dir = tmp();
    const store = new EntryStore(dir);
    store.write("e", { loss: 150.25 }, { values: Float32Array.from([1]) });
    const file = path.join(dir, "e.json");
    fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("150.25", "150.26"));
    assert.throws(() => store.read("e"), /e\.json: checksum mismatch/);
  });

  test("keys do not depend on the order of object fields", () => {
    assert.equal(stableStringify({ b: 1, a: [2, { d: 3, c: 4 }] }), '{"a":[2,{"c":4,"d":3}],"b":1}');
    assert.equal(hashKey({ a: 1, b: 2 }), hashKey({ b: 2, a: 1 }));
    assert.notEqual(hashKey({ a: 1 }), hashKey({ a: 2 }));
  });
});

describe("a damaged cache entry in a sweep", () => {
  before(async () => {
    await initBackend({ quiet: true });
  });

  test("is reported, recomputed and replaced, never served", async () => {
    const cacheDir = tmp();
    const config = resolveConfig({
      klCoefficients: [1],
      epochs: 1,
      trainSize: 256,
      testSize: 128,
      dataSource: "embedded",
      manifoldSize: 4,
    });
    const data = loadMnist(config);
    const first = await runSweep({ config, data, cacheDir });
    const blob = path.join(cacheDir, first.key, "c=1.zMean.f32");
    const bytes = fs.readFileSync(blob);
    bytes[0] ^= 0x40;
    fs.writeFileSync(blob, bytes);
    const log: string[] = [];
    const second = await runSweep({ config, data, cacheDir, log: (line) => log.push(line) });
    assert.equal(second.runs[0].fromCache, false, "recomputed");
    assert.match(
      log.join("\n"),
      /Cache entry for c = 1 is damaged and will be recomputed: .*c=1\.zMean\.f32: checksum mismatch/,
    );
    assert.deepEqual(second.runs[0].zMean, first.runs[0].zMean, "the recomputed run equals the original (seeded)");
    const third = await runSweep({ config, data, cacheDir });
    assert.equal(third.runs[0].fromCache, true, "the entry was replaced by a valid one");
  });
});
