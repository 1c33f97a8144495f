import { test } from "node:test";
import * as assert from "node:assert/strict";
import { localPipSources } from "../../src/system/pythonEnv";

test("local pip sources replace the default index; remote ones are left to pip", () => {
  const configList = [
    ":env:.find-links='/opt/wheels'",
    "global.extra-index-url='file:///opt/a/simple file:///opt/b/simple'",
    "global.find-links='/opt/wheels'",
    "global.cert='/etc/ssl/certs/ca-certificates.crt'",
  ].join("\n");
  assert.deepEqual(localPipSources(configList), [
    "--index-url",
    "file:///opt/a/simple",
    "--extra-index-url",
    "file:///opt/b/simple",
    "--find-links",
    "/opt/wheels",
  ]);
  assert.deepEqual(localPipSources("global.find-links='/srv/w'"), ["--no-index", "--find-links", "/srv/w"]);
  assert.deepEqual(localPipSources("global.index-url='https://pypi.example.org/simple'"), []);
  assert.deepEqual(localPipSources(""), []);
});
