/**
 * `npm run fetch-mnist -- [--base-url URL] [--dir DIR]`: downloads the four full MNIST IDX files
 * (gzipped) into data/mnist, checking each before it takes its final name. Needs a network.
 */
import { option } from "../system/options";
import * as path from "node:path";
import { DEFAULT_IDX_DIR } from "../vae/data";
import { DEFAULT_MNIST_BASE_URL, downloadIdxMnist } from "../vae/idx";
import { parseFlags, runMain, UsageError } from "./args";

const USAGE = `usage: npm run fetch-mnist -- [options]

  --base-url URL   where the four .gz files are (default MNIST_BASE_URL, else ${DEFAULT_MNIST_BASE_URL})
  --dir DIR        where to put them (default data/mnist)
  --help           this text`;

async function main(): Promise<void> {
  const values = parseFlags(process.argv.slice(2), {
    "base-url": { type: "string" },
    dir: { type: "string" },
    help: { type: "boolean" },
  } as const);
  if (values.help) return console.log(USAGE);
  const baseUrl = values["base-url"] ?? option("mnistBaseUrl") ?? DEFAULT_MNIST_BASE_URL;
  try {
    new URL(baseUrl);
  } catch {
    throw new UsageError(`--base-url "${baseUrl}" is not a URL, e.g. https://example.org/mnist/.`);
  }
  const dir = path.resolve(values.dir ?? DEFAULT_IDX_DIR);
  await downloadIdxMnist(dir, { baseUrl, log: (line) => console.log(line) });
  console.log(`The full MNIST is in ${dir}; the sweep uses it when dataSource is "auto" or "idx".`);
}

if (require.main === module) runMain(main, USAGE);
