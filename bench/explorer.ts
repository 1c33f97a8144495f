/**
 * What the latent explorer costs in the page and how far its decoders are from float32, for several
 * packings of the output kernels (rank, bits per factor entry): characters of packed weights for every
 * coefficient together, characters of the whole figure, and the pixel error (values in [0, 1]) of the
 * page's decoders against the float32 decoders, at every test code and on a 15 x 15 grid over each window.
 * Run with `npx tsx bench/explorer.ts [options of npm run sweep]` (the sweep comes from the cache).
 */
import { parseFlags } from "../src/cli/args";
import { SWEEP_FLAGS, sweepFromFlags } from "../src/cli/sweep";
import { buildExplorer, EXPLORER_PACKING, explorerHtml, explorerSummary } from "../src/plots/explorer";

async function main(): Promise<void> {
  const values = parseFlags(process.argv.slice(2), SWEEP_FLAGS);
  const { result } = await sweepFromFlags(values);
  console.log(
    `${result.runs.length} coefficients, ${result.config.epochs} epochs, ${result.data.testSize} test codes each`,
  );
  console.log(
    "rank, bits | weights (chars) | figure (chars) | as float32 | test codes: max |error|, mean | window grids: max, mean | seconds",
  );
  for (const packing of [EXPLORER_PACKING, { rank: 32, bits: 12 }, { rank: 64, bits: 12 }]) {
    const started = performance.now();
    const explorer = buildExplorer(result, { packing });
    const seconds = (performance.now() - started) / 1000;
    const summary = explorerSummary(result, explorer, explorerHtml(result, explorer), Infinity);
    const { atTestCodes: codes, onWindowGrid: grid } = summary;
    console.log(
      `${packing.rank}, ${packing.bits} | ${summary.weightChars} | ${summary.htmlChars} | ${summary.float32Chars} | ${codes.maxAbs.toFixed(4)}, ${codes.meanAbs.toFixed(5)} | ${grid.maxAbs.toFixed(4)}, ${grid.meanAbs.toFixed(5)} | ${seconds.toFixed(1)}`,
    );
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
