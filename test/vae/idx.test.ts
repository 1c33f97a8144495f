import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { loadMnist } from "../../src/vae/data";
import {
  downloadIdxMnist,
  encodeIdx,
  hasIdxMnist,
  IDX_FILES,
  IdxError,
  parseIdx,
  readIdxMnist,
} from "../../src/vae/idx";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-idx-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** n images whose pixel (row r, column c) of image i is (i + r + c) mod 256, and labels i mod 10. */
function images(n: number): Uint8Array {
  return encodeIdx(
    [n, 28, 28],
    Uint8Array.from({ length: n * 784 }, (_, k) => (Math.floor(k / 784) + Math.floor((k % 784) / 28) + (k % 28)) % 256),
  );
}
function labels(n: number): Uint8Array {
  return encodeIdx(
    [n],
    Uint8Array.from({ length: n }, (_, i) => i % 10),
  );
}

function writeSet(target: string, train = 30, testCount = 12, gzip = false): void {
  fs.mkdirSync(target, { recursive: true });
  const put = (name: string, bytes: Uint8Array) =>
    fs.writeFileSync(path.join(target, gzip ? `${name}.gz` : name), gzip ? gzipSync(bytes) : bytes);
  put(IDX_FILES.trainImages, images(train));
  put(IDX_FILES.trainLabels, labels(train));
  put(IDX_FILES.testImages, images(testCount));
  put(IDX_FILES.testLabels, labels(testCount));
}

describe("reading IDX files", () => {
  test("the header by hand: magic 0x00000801, one big-endian size, then the body", () => {
    const bytes = Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]);
    assert.deepEqual(parseIdx(bytes, "x"), { shape: [3], data: Uint8Array.from([7, 8, 9]) });
  });

  for (const gzip of [false, true]) {
    test(`a full set of ${gzip ? "gzipped" : "raw"} files loads, scaled to [0, 1]`, () => {
      const target = path.join(dir, gzip ? "gz" : "raw");
      writeSet(target, 30, 12, gzip);
      assert.ok(hasIdxMnist(target));
      const data = loadMnist({ dataSource: "auto", trainSize: 60000, testSize: 10000, seed: 1 }, { idxDir: target });
      assert.equal(data.source, "idx");
      assert.equal(data.trainSize, 30);
      assert.equal(data.testSize, 12);
      // Image 2, row 3, column 4: (2 + 3 + 4) / 255.
      assert.ok(Math.abs(data.xTrain[2 * 784 + 3 * 28 + 4] - 9 / 255) < 1e-7);
      assert.deepEqual([...data.yTest], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
      const capped = loadMnist({ dataSource: "idx", trainSize: 10, testSize: 5, seed: 1 }, { idxDir: target });
      assert.deepEqual([capped.trainSize, capped.testSize], [10, 5]);
    });
  }

  const broken: [string, (target: string) => void, RegExp][] = [
    [
      "a wrong magic number",
      (t) => fs.writeFileSync(path.join(t, IDX_FILES.trainLabels), Uint8Array.from([1, 2, 8, 1, 0, 0, 0, 0])),
      /train-labels-idx1-ubyte: wrong magic number 0x01020801/,
    ],
    [
      "a gzipped file without .gz",
      (t) => fs.writeFileSync(path.join(t, IDX_FILES.trainLabels), gzipSync(labels(30))),
      /It looks gzipped: name it with a \.gz suffix/,
    ],
    [
      "wrong image dimensions",
      (t) =>
        fs.writeFileSync(path.join(t, IDX_FILES.trainImages), encodeIdx([30, 28, 27], new Uint8Array(30 * 28 * 27))),
      /images must have shape N x 28 x 28; got 30 x 28 x 27/,
    ],
    [
      "a truncated body",
      (t) => fs.writeFileSync(path.join(t, IDX_FILES.testImages), images(12).subarray(0, 5000)),
      /t10k-images-idx3-ubyte: truncated: the header promises 12 x 28 x 28 = 9408 bytes but the body has 4984/,
    ],
    [
      "a truncated gzip stream",
      (t) => {
        fs.rmSync(path.join(t, IDX_FILES.testImages));
        fs.writeFileSync(
          path.join(t, `${IDX_FILES.testImages}.gz`),
          (() => {
            const gz = gzipSync(images(12));
            return gz.subarray(0, gz.length >> 1);
          })(),
        );
      },
      /t10k-images-idx3-ubyte\.gz: not a valid gzip stream/,
    ],
    [
      "labels and images of different counts",
      (t) => fs.writeFileSync(path.join(t, IDX_FILES.trainLabels), labels(29)),
      /holds 30 images but .*train-labels-idx1-ubyte holds 29 labels/,
    ],
    [
      "a label that is not a digit",
      (t) => fs.writeFileSync(path.join(t, IDX_FILES.trainLabels), encodeIdx([30], new Uint8Array(30).fill(12))),
      /label 12 at row 0 is not a digit 0-9/,
    ],
    [
      "a missing file",
      (t) => fs.rmSync(path.join(t, IDX_FILES.testLabels)),
      /t10k-labels-idx1-ubyte\(\.gz\) is missing; run `npm run fetch-mnist`/,
    ],
  ];
  for (const [what, damage, message] of broken) {
    test(`refuses ${what}, naming the file and the problem`, () => {
      const target = fs.mkdtempSync(path.join(dir, "broken-"));
      writeSet(target);
      damage(target);
      assert.throws(
        () => readIdxMnist(target),
        (error: unknown) => error instanceof IdxError && message.test(error.message),
      );
    });
  }
});

describe("downloading from a loopback server", () => {
  let server: http.Server;
  let base: string;
  const served = new Map<string, { status: number; body: Uint8Array }>();
  before(async () => {
    server = http.createServer((request, response) => {
      const file = served.get(path.basename(request.url ?? ""));
      response.writeHead(file?.status ?? 404);
      response.end(file ? Buffer.from(file.body) : undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}/mnist/`;
  });
  after(() => server.close());

  const serveAll = () => {
    served.set(`${IDX_FILES.trainImages}.gz`, { status: 200, body: gzipSync(images(30)) });
    served.set(`${IDX_FILES.trainLabels}.gz`, { status: 200, body: gzipSync(labels(30)) });
    served.set(`${IDX_FILES.testImages}.gz`, { status: 200, body: gzipSync(images(12)) });
    served.set(`${IDX_FILES.testLabels}.gz`, { status: 200, body: gzipSync(labels(12)) });
  };

  test("fetches, checks and keeps the four files", async () => {
    serveAll();
    const target = path.join(dir, "downloaded");
    const written = await downloadIdxMnist(target, { baseUrl: base });
    assert.equal(written.length, 4);
    assert.equal(readIdxMnist(target).train.count, 30);
    assert.deepEqual(
      fs.readdirSync(target).filter((f) => f.endsWith(".tmp")),
      [],
    );
  });

  test("a truncated download never becomes a valid-looking file", async () => {
    serveAll();
    served.set(`${IDX_FILES.testImages}.gz`, {
      status: 200,
      body: (() => {
        const gz = gzipSync(images(12));
        return gz.subarray(0, gz.length >> 1);
      })(),
    });
    const target = path.join(dir, "partial");
    await assert.rejects(
      downloadIdxMnist(target, { baseUrl: base }),
      /t10k-images-idx3-ubyte\.gz is not a valid gzipped IDX file/,
    );
    assert.ok(!fs.existsSync(path.join(target, `${IDX_FILES.testImages}.gz`)));
    assert.deepEqual(
      fs.readdirSync(target).filter((f) => f.endsWith(".tmp")),
      [],
    );
    assert.ok(!hasIdxMnist(target));
  });

  test("an HTTP error names the address", async () => {
    served.clear();
    await assert.rejects(
      downloadIdxMnist(path.join(dir, "missing"), { baseUrl: base }),
      /Could not download http:\/\/127\.0\.0\.1:\d+\/mnist\/train-images-idx3-ubyte\.gz: HTTP 404/,
    );
  });
});
