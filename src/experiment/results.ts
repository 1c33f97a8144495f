/**
 * Reading the results file that `npm run sweep` writes (`data/results/latest.json` and
 * `sweep-<key>.json`, schema in docs/cache-and-results.md). Files of another schema version are refused by name
 * rather than misread: fields may have changed meaning between versions.
 */
import * as fs from "node:fs";
import { RESULTS_SCHEMA, type resultsSummary } from "./sweep";

/** The results file as written by `writeResults`. */
export type SweepResultsFile = ReturnType<typeof resultsSummary>;

/** A results file that is missing, unreadable, or of another schema. */
export class ResultsFileError extends Error {
  override name = "ResultsFileError";
}

/** Reads and checks a results file: JSON, this schema version, one record per coefficient. */
export function readResults(file: string): SweepResultsFile {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new ResultsFileError(
      `${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}). ` +
        "Run `npm run sweep` to write it.",
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ResultsFileError(
      `${file}: not valid JSON (${(error as Error).message}). Run \`npm run sweep\` to write it again.`,
    );
  }
  const schema = typeof value === "object" && value !== null ? (value as { schema?: unknown }).schema : undefined;
  if (typeof schema !== "string" || !schema.startsWith("vae-kl-sweep/")) {
    throw new ResultsFileError(`${file}: not a sweep results file (no "schema": "${RESULTS_SCHEMA}" field).`);
  }
  if (schema !== RESULTS_SCHEMA) {
    throw new ResultsFileError(
      `${file}: schema "${schema}" is not "${RESULTS_SCHEMA}", the version this code reads. ` +
        "Run `npm run sweep` to write the results again with this code " +
        "(the cache makes it quick when nothing changed), " +
        "or read the file with the version of the project that wrote it.",
    );
  }
  const results = value as SweepResultsFile;
  if (!Array.isArray(results.coefficients) || typeof results.config !== "object" || results.config === null) {
    throw new ResultsFileError(
      `${file}: schema ${RESULTS_SCHEMA} but fields missing (config, coefficients); the file is damaged. ` +
        "Run `npm run sweep` to write it again.",
    );
  }
  return results;
}
