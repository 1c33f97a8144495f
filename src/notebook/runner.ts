/**
 * Headless notebook execution: each notebook in a fresh tslab kernel (`src/notebook/kernel.ts`), cell by cell;
 * the executed copy (`.ipynb`) and a self-contained HTML export are written to a build folder. A
 * failing cell stops the run with the notebook, the cell and tslab's own error message.
 */
import { option, OPTIONS, parseSeconds, type Environment } from "../system/options";
import * as fs from "node:fs";
import * as path from "node:path";
import { marked } from "marked";
import { PROJECT_ROOT } from "../vae/data";
import { makeFolder } from "../system/storage";
import { KernelClient, type Output } from "./kernel";
import { escapeHtml } from "./html";
import { plotlyScriptTag } from "../plots/plot";

export const NOTEBOOK_DIR = path.join(PROJECT_ROOT, "notebooks");
export const NOTEBOOK_BUILD_DIR = path.join(PROJECT_ROOT, "build", "notebooks");

export interface Cell {
  cell_type: "code" | "markdown" | "raw";
  source: string | string[];
  metadata: Record<string, unknown>;
  outputs?: Output[];
  execution_count?: number | null;
  id?: string;
}

export interface Notebook {
  cells: Cell[];
  metadata: Record<string, unknown>;
  nbformat: number;
  nbformat_minor: number;
}

export class CellError extends Error {
  override name = "CellError";
  constructor(
    readonly notebook: string,
    readonly cellIndex: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(
      `${notebook}, cell ${cellIndex + 1} failed:\n${indent(code)}\n` +
        `--- error ---\n${detail.trim() || "(tslab printed no message)"}`,
    );
  }
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n");
}

export function cellSource(cell: Cell): string {
  return Array.isArray(cell.source) ? cell.source.join("") : cell.source;
}

export function readNotebook(file: string): Notebook {
  let notebook: Notebook;
  try {
    notebook = JSON.parse(fs.readFileSync(file, "utf8")) as Notebook;
  } catch (error) {
    throw new Error(`${file}: not a readable notebook (${(error as Error).message}).`);
  }
  if (!Array.isArray(notebook.cells) || notebook.nbformat !== 4)
    throw new Error(`${file}: not an nbformat 4 notebook.`);
  return notebook;
}

/** The notebooks of `notebooks/` in tutorial order (their names start with the step number). */
export function listNotebooks(dir = NOTEBOOK_DIR): string[] {
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith(".ipynb"))
    .sort()
    .map((name) => path.join(dir, name));
}

export interface ExecutedNotebook {
  readonly source: string;
  readonly notebook: Notebook;
  readonly ipynbPath: string;
  readonly htmlPath: string;
  readonly seconds: number;
}

export const CELL_TIMEOUT_ENV = OPTIONS.cellTimeout.name;
/** The default limit on one cell: the tutorial's sweep takes minutes on wasm, hours on the cpu backend. */
export const DEFAULT_CELL_TIMEOUT_SECONDS = OPTIONS.cellTimeout.default;

/** A cell time limit in seconds from `raw` (0 means no limit); `source` names where it came from in the error. */
export function parseCellTimeout(raw: string, source: string): number {
  return parseSeconds(raw, source);
}

/** Seconds a cell may run: `VAE_CELL_TIMEOUT` if set, else the default. */
export function cellTimeoutFromEnv(env?: Environment): number {
  return option("cellTimeout", env);
}

/**
 * Executes one notebook in a fresh kernel. `env` reaches the kernel (for example VAE_PROFILE=quick).
 * Throws `CellError` at the first failing cell, or the first that runs longer than
 * `cellTimeoutSeconds` (default `VAE_CELL_TIMEOUT`, else 4 hours), after writing the partial executed copy.
 */
export async function executeNotebook(
  file: string,
  options: { outDir?: string; env?: NodeJS.ProcessEnv; log?: (line: string) => void; cellTimeoutSeconds?: number } = {},
): Promise<ExecutedNotebook> {
  const started = performance.now();
  const outDir = options.outDir ?? NOTEBOOK_BUILD_DIR;
  const log = options.log ?? (() => undefined);
  const notebook = readNotebook(file);
  const name = path.relative(PROJECT_ROOT, file);
  const base = path.basename(file, ".ipynb");
  const ipynbPath = path.join(outDir, `${base}.ipynb`);
  const htmlPath = path.join(outDir, `${base}.html`);
  makeFolder(outDir);

  const kernel = await KernelClient.start({ env: options.env });
  try {
    for (const [index, cell] of notebook.cells.entries()) {
      if (cell.cell_type !== "code") continue;
      const code = cellSource(cell);
      const cellStarted = performance.now();
      const result = await kernel.execute(code, 1000 * (options.cellTimeoutSeconds ?? cellTimeoutFromEnv()));
      cell.outputs = result.outputs;
      cell.execution_count = result.executionCount;
      if (result.status !== "ok") {
        const detail =
          result.stderr ||
          result.outputs.map((o) => (o.output_type === "error" ? `${o.ename}: ${o.evalue}` : "")).join("\n");
        cell.outputs.push({ output_type: "error", ename: "CellError", evalue: detail.trim(), traceback: [] });
        writeExecuted(notebook, ipynbPath, htmlPath);
        throw new CellError(name, index, code, detail);
      }
      log(
        `${name}: cell ${index + 1}/${notebook.cells.length} ` +
          `ok (${((performance.now() - cellStarted) / 1000).toFixed(1)} s)`,
      );
    }
  } finally {
    await kernel.shutdown();
  }
  writeExecuted(notebook, ipynbPath, htmlPath);
  return { source: file, notebook, ipynbPath, htmlPath, seconds: (performance.now() - started) / 1000 };
}

function writeExecuted(notebook: Notebook, ipynbPath: string, htmlPath: string): void {
  fs.writeFileSync(ipynbPath, `${JSON.stringify(notebook, null, 1)}\n`);
  fs.writeFileSync(htmlPath, notebookHtml(notebook, path.basename(ipynbPath, ".ipynb")));
}

function joinText(value: unknown): string {
  return Array.isArray(value) ? value.join("") : String(value ?? "");
}

/** One output as HTML, preferring the richest type a browser shows, as nbconvert does. */
export function outputHtml(output: Output): string {
  switch (output.output_type) {
    case "stream":
      return `<pre class="stream ${output.name}">${escapeHtml(output.text)}</pre>`;
    case "error":
      return `<pre class="error">${escapeHtml(`${output.ename}: ${output.evalue}`)}</pre>`;
    default: {
      const data = output.data;
      if (data["text/html"] !== undefined) return `<div class="html-output">${joinText(data["text/html"])}</div>`;
      if (data["image/png"] !== undefined) return `<img src="data:image/png;base64,${joinText(data["image/png"])}">`;
      if (data["image/svg+xml"] !== undefined) return joinText(data["image/svg+xml"]);
      return `<pre>${escapeHtml(joinText(data["text/plain"]))}</pre>`;
    }
  }
}

/**
 * A self-contained HTML page of an executed notebook. The notebook file does not hold plotly.js (its
 * figures load it from the Jupyter server), so the page inlines the cartesian bundle once when it has
 * figures: it opens offline, by double-click.
 */
export function notebookHtml(notebook: Notebook, title: string): string {
  const body = notebook.cells
    .map((cell) => {
      const source = cellSource(cell);
      if (cell.cell_type === "markdown")
        return `<section class="markdown">${marked.parse(source, { async: false }) as string}</section>`;
      if (cell.cell_type !== "code") return "";
      const outputs = (cell.outputs ?? []).map(outputHtml).join("\n");
      return (
        `<section class="code"><div class="prompt">[${cell.execution_count ?? " "}]</div>` +
        `<pre class="source"><code>${escapeHtml(source)}</code></pre><div class="outputs">${outputs}</div></section>`
      );
    })
    .join("\n");
  const plotly = body.includes('class="vae-figure"') ? plotlyScriptTag() : "";
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
${plotly}
<style>
body { font-family: "DejaVu Sans", Arial, sans-serif; max-width: 1000px; margin: 2em auto; color: #222; line-height: 1.5; }
pre { background: #f6f8fa; padding: 0.6em; overflow-x: auto; }
pre.stream { background: #fff; border-left: 3px solid #ddd; }
pre.stderr, pre.error { background: #fdd; }
.code { margin: 1em 0; } .prompt { color: #888; font-size: 0.8em; }
table { border-collapse: collapse; } td, th { border: 1px solid #ddd; padding: 0.2em 0.5em; }
</style></head><body>
${body}
</body></html>
`;
}
