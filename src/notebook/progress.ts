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

/** What a progress display is told when a coefficient starts: by this process or by a helper process. */
export interface RunStartEvent {
  readonly klCoefficient: number;
  readonly index: number;
  readonly count: number;
  readonly cached: boolean;
  /** The helper process training it (1-based); absent when this process does. */
  readonly worker?: number;
}

type CoefficientState =
  | { readonly state: "waiting" }
  | { readonly state: "cached" }
  | { readonly state: "done"; readonly seconds: number; readonly last?: EpochEndEvent }
  | {
      readonly state: "training";
      readonly worker?: number;
      readonly since: number;
      readonly last?: EpochEndEvent;
      readonly batch?: BatchEndEvent;
    };

/**
 * The state of a sweep as its displays show it: every coefficient waiting, training (in which process,
 * at which epoch and batch, its losses and ETA), loaded from the cache or done, and an ETA for the
 * whole sweep. Events come from this process and, forwarded by `runSweep`, from its helper processes,
 * so every running coefficient has its line. Used by the terminal (`ProgressPrinter`) and notebook 03's
 * live display (`LiveProgress` in `display.ts`).
 */
export class SweepProgress {
  private readonly states = new Map<number, CoefficientState>();
  private readonly epochSeconds: number[] = [];

  constructor(
    readonly coefficients: readonly number[],
    readonly epochs: number,
    /** Coefficients trained at once (`--jobs`). */
    readonly jobs: number,
    private readonly now: () => number = () => performance.now() / 1000,
  ) {
    for (const c of coefficients) this.states.set(c, { state: "waiting" });
  }

  runStart(event: RunStartEvent): void {
    const previous = this.states.get(event.klCoefficient);
    // A helper's coefficient is read from the cache once the helper has written it: it is done. This
    // process reads it only between its own coefficients, so the helper's training time is the one shown.
    if (event.cached && previous?.state === "training") {
      this.states.set(event.klCoefficient, {
        state: "done",
        seconds: previous.last?.elapsedSeconds ?? this.now() - previous.since,
        last: previous.last,
      });
    } else if (event.cached && previous?.state !== "done") this.states.set(event.klCoefficient, { state: "cached" });
    else if (!event.cached)
      this.states.set(event.klCoefficient, { state: "training", worker: event.worker, since: this.now() });
  }

  batchEnd(event: BatchEndEvent): void {
    const previous = this.states.get(event.klCoefficient);
    if (previous?.state === "training") this.states.set(event.klCoefficient, { ...previous, batch: event });
  }

  epochEnd(event: EpochEndEvent): void {
    const previous = this.states.get(event.klCoefficient);
    this.epochSeconds.push(event.record.seconds);
    const since = previous?.state === "training" ? previous.since : this.now() - event.elapsedSeconds;
    const worker = previous?.state === "training" ? previous.worker : undefined;
    this.states.set(event.klCoefficient, { state: "training", worker, since, last: event });
  }

  /** This process finished the coefficient (trained, decoded, measured, cached). */
  runEnd(klCoefficient: number): void {
    const previous = this.states.get(klCoefficient);
    if (previous?.state === "training")
      this.states.set(klCoefficient, { state: "done", seconds: this.now() - previous.since, last: previous.last });
  }

  /** Whether the coefficient is done or was loaded from the cache. */
  finished(c: number): boolean {
    const state = this.states.get(c)?.state;
    return state === "done" || state === "cached";
  }

  /** The coefficients now training, in sweep order. */
  running(): number[] {
    return this.coefficients.filter((c) => this.states.get(c)?.state === "training");
  }

  /** Epochs finished so far by the coefficient (all of them once it is done or cached). */
  private epochsDone(c: number): number {
    const entry = this.states.get(c);
    if (!entry || entry.state === "waiting") return 0;
    if (entry.state === "cached" || entry.state === "done") return this.epochs;
    return entry.last?.record.epoch ?? 0;
  }

  /**
   * Seconds left for the whole sweep: the epochs still to train times the mean epoch so far, shared
   * among the processes (as many as `jobs`, at most one per coefficient left); 0 when nothing is left,
   * NaN before the first epoch otherwise.
   */
  etaSeconds(): number {
    const left = this.coefficients.filter((c) => this.epochsDone(c) < this.epochs);
    if (left.length === 0) return 0;
    if (this.epochSeconds.length === 0) return Number.NaN;
    const meanEpoch = this.epochSeconds.reduce((a, b) => a + b, 0) / this.epochSeconds.length;
    const epochsLeft = left.reduce((sum, c) => sum + this.epochs - this.epochsDone(c), 0);
    return (epochsLeft * meanEpoch) / Math.min(this.jobs, left.length);
  }

  /** One line for a coefficient: its state, and while training the epoch, losses and ETA. */
  line(c: number): string {
    const entry = this.states.get(c) ?? { state: "waiting" };
    const name = `c = ${c}`;
    if (entry.state === "waiting") return `${name}: waiting`;
    if (entry.state === "cached") return `${name}: loaded from the cache`;
    if (entry.state === "done")
      return (
        `${name}: done in ${formatSeconds(entry.seconds)}` +
        `${entry.last ? ` ${terms("test", entry.last.record.test)}` : ""}`
      );
    const where = entry.worker ? ` (process ${entry.worker + 1})` : "";
    const last = entry.last;
    const batch = entry.batch && (!last || entry.batch.epoch > last.record.epoch) ? entry.batch : undefined;
    const fraction = batch
      ? (batch.epoch - 1 + batch.batch / batch.batches) / this.epochs
      : this.epochsDone(c) / this.epochs;
    const position = batch
      ? `epoch ${batch.epoch}/${this.epochs} batch ${batch.batch}/${batch.batches}`
      : `epoch ${last?.record.epoch ?? 0}/${this.epochs}`;
    const losses = last
      ? ` ${terms("train", last.record.train)} | ${terms("test", last.record.test)} | ` +
        `${last.record.seconds.toFixed(1)}s/epoch ETA ${formatSeconds(last.etaSeconds)}`
      : batch
        ? ` ${terms("batch", batch.terms)}`
        : " starting";
    return `${name}${where} ${bar(fraction, 16)} ${position}${losses}`;
  }

  /** The sweep's line: coefficients done, training and waiting, and the ETA of the whole. */
  overall(): string {
    const count = (state: CoefficientState["state"]) =>
      this.coefficients.filter((c) => this.states.get(c)?.state === state).length;
    const finished = count("done") + count("cached");
    return (
      `sweep: ${finished}/${this.coefficients.length} coefficients done, ${count("training")} training, ` +
      `${count("waiting")} waiting; ETA ${formatSeconds(this.etaSeconds())}`
    );
  }
}

/**
 * The sweep's progress in the terminal. On a terminal: a block redrawn in place, one line per running
 * coefficient (in whichever process) and the sweep's ETA, with a line kept for each coefficient as it
 * finishes. Elsewhere (CI logs): one line per epoch of every coefficient, with the sweep's ETA.
 */
export class ProgressPrinter {
  private lastDraw = 0;
  private drawnLines = 0;
  private readonly reported = new Set<number>();

  constructor(
    private readonly progress: SweepProgress,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly live = Boolean(stream.isTTY),
  ) {}

  runStart(event: RunStartEvent): void {
    this.progress.runStart(event);
    if (!this.live && !(event.cached && this.reported.has(event.klCoefficient))) {
      const where = event.worker ? ` in process ${event.worker + 1}` : "";
      this.stream.write(
        `[${event.index + 1}/${event.count}] KL coefficient ${event.klCoefficient}` +
          `${event.cached ? ": loaded from cache" : `: training${where}`}\n`,
      );
    }
    this.draw(true);
  }

  batchEnd(event: BatchEndEvent): void {
    this.progress.batchEnd(event);
    this.draw(false);
  }

  epochEnd(event: EpochEndEvent): void {
    this.progress.epochEnd(event);
    if (!this.live) {
      this.stream.write(`  ${this.progress.line(event.klCoefficient)} | ${this.progress.overall()}\n`);
      // Its later "loaded from cache" (a helper's coefficient, read back here) is not news.
      if (event.record.epoch === event.epochs) this.reported.add(event.klCoefficient);
    }
    this.draw(true);
  }

  runEnd(klCoefficient: number): void {
    this.progress.runEnd(klCoefficient);
    this.draw(true);
  }

  private draw(force: boolean): void {
    if (!this.live) return;
    const now = performance.now();
    if (!force && now - this.lastDraw < 100) return;
    this.lastDraw = now;
    // Finished coefficients are written once, above the block, and stay.
    const finished = this.progress.coefficients.filter((c) => !this.reported.has(c) && this.progress.finished(c));
    const lines = [
      ...finished.map((c) => this.progress.line(c)),
      ...this.progress.running().map((c) => this.progress.line(c)),
      this.progress.overall(),
    ];
    for (const c of finished) this.reported.add(c);
    const up = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : "";
    // A line wider than the terminal would wrap, and the block would no longer be redrawn in place.
    const width = Math.max(20, (this.stream.columns ?? 160) - 1);
    this.stream.write(`${up}\r${lines.map((line) => `${line.slice(0, width)}\x1b[K`).join("\n")}\n\x1b[J`);
    this.drawnLines = lines.length - finished.length;
  }
}

/** The final table: one row per coefficient with its last epoch's train and test terms. */
export function summaryTable(runs: readonly CoefficientRun[]): string {
  const header = [
    "c",
    "train rec",
    "train KL",
    "train total",
    "test rec",
    "test KL",
    "test total",
    "train s",
    "cached",
  ];
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
