import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { initBackend } from "../../src/backend/select";
import { readResults, ResultsFileError } from "../../src/experiment/results";
import { RESULTS_SCHEMA, runSweep, writeResults } from "../../src/experiment/sweep";
import { resolveConfig } from "../../src/vae/config";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vae-results-"));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
before(async () => {
  await initBackend({ quiet: true });
});

const refused = (file: string, message: RegExp) =>
  assert.throws(
    () => readResults(file),
    (error: unknown) => error instanceof ResultsFileError && message.test(error.message),
  );

test("a results file written by writeResults reads back, and a rewrite leaves no temporary file", async () => {
  const config = resolveConfig({
    klCoefficients: [0, 1],
    epochs: 1,
    trainSize: 256,
    testSize: 64,
    dataSource: "embedded",
    intermediateDim: 16,
    manifoldSize: 4,
  });
  const result = await runSweep({ config, cacheDir: false });
  const file = path.join(dir, "latest.json");
  writeResults(file, result);
  writeResults(file, result);
  const read = readResults(file);
  assert.equal(read.schema, RESULTS_SCHEMA);
  assert.deepEqual(
    read.coefficients.map((c) => c.klCoefficient),
    [0, 1],
  );
  assert.deepEqual(read.coefficients[1].test, result.runs[1].test);
  assert.deepEqual(fs.readdirSync(dir), ["latest.json"]);
});

test("a file of another schema version is refused, naming both versions and what to do", () => {
  const file = path.join(dir, "future.json");
  fs.writeFileSync(file, JSON.stringify({ schema: "vae-kl-sweep/2", coefficients: [] }));
  refused(
    file,
    /future\.json: schema "vae-kl-sweep\/2" is not "vae-kl-sweep\/1", the version this code reads\. Run `npm run sweep` to write the results again/,
  );
});

test("a missing file, invalid JSON, another kind of file and a damaged one are refused by name", () => {
  refused(path.join(dir, "absent.json"), /absent\.json: cannot be read \(ENOENT\)\. Run `npm run sweep` to write it\./);
  const put = (name: string, text: string) => {
    fs.writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };
  refused(put("cut.json", '{"schema": "vae-kl-sweep/1", "coeff'), /cut\.json: not valid JSON/);
  refused(
    put("package.json", '{"name": "x"}'),
    /package\.json: not a sweep results file \(no "schema": "vae-kl-sweep\/1" field\)/,
  );
  refused(put("null.json", "null"), /null\.json: not a sweep results file/);
  refused(
    put("damaged.json", '{"schema": "vae-kl-sweep/1", "config": {}}'),
    /damaged\.json: schema vae-kl-sweep\/1 but fields missing \(config, coefficients\)/,
  );
});
