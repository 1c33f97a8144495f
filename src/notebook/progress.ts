/**
 * Terminal progress for the command line: one bar per coefficient (epoch, losses, ETA) redrawn in
 * place on a terminal, one line per epoch elsewhere (CI logs), and the final table.
 */
import type { LossTerms } from "../vae/loss";
import type { CoefficientRun } from "../experiment/sweep";
import type { BatchEndEvent, EpochEndEvent } from "../vae/train";

export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

function bar(fraction: number, width = 24): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
}

function terms(label: string, t: LossTerms): string {
  return `${label} rec ${t.reconstruction.toFixed(2)} kl ${t.kl.toFixed(2)} total ${t.total.toFixed(2)}`;
}

export class ProgressPrinter {
  private lastDraw = 0;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly live = Boolean(stream.isTTY),
  ) {}

  runStart(event: { klCoefficient: number; index: number; count: number; cached: boolean }): void {
    const where = `[${event.index + 1}/${event.count}] KL coefficient ${event.klCoefficient}`;
    this.stream.write(`${where}${event.cached ? ": loaded from cache" : ""}\n`);
  }

  batchEnd(event: BatchEndEvent, epochs: number): void {
    if (!this.live) return;
    const now = performance.now();
    if (now - this.lastDraw < 100 && event.batch !== event.batches) return;
    this.lastDraw = now;
    const done = (event.epoch - 1 + event.batch / event.batches) / epochs;
    this.stream.write(`\r  ${bar(done)} epoch ${event.epoch}/${epochs} batch ${event.batch}/${event.batches} ${terms("train", event.terms)}\x1b[K`);
  }

  epochEnd(event: EpochEndEvent): void {
    const { record, epochs } = event;
    const line = `  ${bar(record.epoch / epochs)} epoch ${record.epoch}/${epochs} ${terms("train", record.train)} | ${terms("test", record.test)} | ${record.seconds.toFixed(1)}s/epoch ETA ${formatSeconds(event.etaSeconds)}`;
    this.stream.write(this.live ? `\r${line}\x1b[K${record.epoch === epochs ? "\n" : ""}` : `${line}\n`);
  }
}

/** The final table: one row per coefficient with its last epoch's train and test terms. */
export function summaryTable(runs: readonly CoefficientRun[]): string {
  const header = ["c", "train rec", "train KL", "train total", "test rec", "test KL", "test total", "train s", "cached"];
  const rows = runs.map((run) => {
    const last = run.history[run.history.length - 1];
    return [
      String(run.klCoefficient),
      last.train.reconstruction.toFixed(2),
      last.train.kl.toFixed(2),
      last.train.total.toFixed(2),
      run.test.reconstruction.toFixed(2),
      run.test.kl.toFixed(2),
      run.test.total.toFixed(2),
      run.trainSeconds.toFixed(1),
      run.fromCache ? "yes" : "no",
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const format = (cells: string[]) => `| ${cells.map((cell, i) => cell.padStart(widths[i])).join(" | ")} |`;
  return [format(header), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map(format)].join("\n");
}
