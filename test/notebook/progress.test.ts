import assert from "node:assert/strict";
import { test } from "node:test";
import { ProgressPrinter, SweepProgress } from "../../src/notebook/progress";
import type { EpochEndEvent } from "../../src/vae/train";

const terms = (total: number) => ({ reconstruction: total - 1, kl: 1, total });

function epochEnd(klCoefficient: number, epoch: number, seconds: number, epochs = 10): EpochEndEvent {
  return {
    klCoefficient,
    epochs,
    elapsedSeconds: epoch * seconds,
    etaSeconds: (epochs - epoch) * seconds,
    record: { epoch, seconds, train: terms(200), test: terms(190) },
  };
}

test("the sweep's ETA: epochs left times the mean epoch, shared among the processes", () => {
  let now = 0;
  const progress = new SweepProgress([0, 1, 2, 3], 10, 2, () => now);
  assert.match(progress.overall(), /0\/4 coefficients done, 0 training, 4 waiting; ETA \?/);
  progress.runStart({ klCoefficient: 0, index: 0, count: 4, cached: false });
  progress.runStart({ klCoefficient: 1, index: 1, count: 4, cached: false, worker: 1 });
  progress.epochEnd(epochEnd(0, 1, 2));
  progress.epochEnd(epochEnd(1, 1, 4));
  // Mean epoch (2 + 4) / 2 = 3 s; epochs left 9 + 9 + 10 + 10 = 38; two processes: 38 x 3 / 2 = 57 s.
  assert.equal(progress.etaSeconds(), 57);
  assert.equal(progress.overall(), "sweep: 0/4 coefficients done, 2 training, 2 waiting; ETA 57s");
  assert.deepEqual(progress.running(), [0, 1]);
  assert.match(
    progress.line(1),
    /^c = 1 \(process 2\) \[#+\.+\] epoch 1\/10 train rec 199\.00 kl 1\.00 total 200\.00 \| test rec 189\.00 kl 1\.00 total 190\.00 \| 4\.0s\/epoch ETA 36s$/,
  );
  assert.equal(progress.line(2), "c = 2: waiting");
  // The helper's coefficient, read back from the cache here, is done; one left for one process.
  now = 44;
  progress.runStart({ klCoefficient: 1, index: 1, count: 4, cached: true });
  progress.runEnd(0);
  progress.runStart({ klCoefficient: 3, index: 3, count: 4, cached: true });
  // Its time is the helper's training time (1 epoch of 4 s), not the 44 s until this process read it.
  assert.match(progress.line(1), /^c = 1: done in 4s test rec 189\.00/);
  // Left: c = 2, all 10 epochs, on min(2 processes, 1 coefficient) = 1: 10 x 3 = 30 s.
  assert.equal(progress.etaSeconds(), 30);
  assert.equal(progress.overall(), "sweep: 3/4 coefficients done, 0 training, 1 waiting; ETA 30s");
});

test("a sweep served from the cache has nothing left: ETA 0", () => {
  const progress = new SweepProgress([0, 1], 40, 2);
  progress.runStart({ klCoefficient: 0, index: 0, count: 2, cached: true });
  assert.match(progress.overall(), /1\/2 coefficients done, 0 training, 1 waiting; ETA \?$/);
  progress.runStart({ klCoefficient: 1, index: 1, count: 2, cached: true });
  assert.equal(progress.overall(), "sweep: 2/2 coefficients done, 0 training, 0 waiting; ETA 0s");
});

/** A stream that records what is written to it, as wide as a terminal. */
function recorder(columns = 200) {
  const writes: string[] = [];
  const stream = {
    columns,
    isTTY: true,
    write: (text: string) => writes.push(text) === writes.length,
  } as unknown as NodeJS.WriteStream;
  return { writes, stream };
}

test("on a terminal the block of running coefficients is redrawn in place; finished ones stay above it", () => {
  const { writes, stream } = recorder();
  const printer = new ProgressPrinter(new SweepProgress([0, 1], 10, 2), stream, true);
  printer.runStart({ klCoefficient: 0, index: 0, count: 2, cached: false });
  printer.runStart({ klCoefficient: 1, index: 1, count: 2, cached: false, worker: 1 });
  printer.epochEnd(epochEnd(1, 1, 4));
  // The last drawing had two running lines and the sweep's: it first moves up those three lines.
  assert.ok(writes[writes.length - 1].startsWith("\x1b[3A\r"), JSON.stringify(writes[writes.length - 1].slice(0, 8)));
  assert.equal(writes[writes.length - 1].split("\n").length - 1, 3);
  printer.runEnd(0);
  const last = writes[writes.length - 1];
  assert.match(
    last,
    /^\x1b\[3A\rc = 0: done in .*\x1b\[K\nc = 1 \(process 2\) .*\x1b\[K\nsweep: 1\/2 coefficients done, 1 training/,
  );
  printer.epochEnd(epochEnd(1, 2, 4));
  // The finished line is not redrawn: only the running line and the sweep's are.
  assert.ok(writes[writes.length - 1].startsWith("\x1b[2A\rc = 1 (process 2)"));
});

test("lines are cut to the terminal's width, so that they never wrap", () => {
  const { writes, stream } = recorder(40);
  const printer = new ProgressPrinter(new SweepProgress([0], 10, 1), stream, true);
  printer.runStart({ klCoefficient: 0, index: 0, count: 1, cached: false });
  printer.epochEnd(epochEnd(0, 1, 2));
  for (const line of writes[writes.length - 1].split("\n"))
    assert.ok(line.replace(/\x1b\[\d*[A-Z]|\r/g, "").length <= 39, line);
});

test("in a log, one line per epoch of every coefficient with the sweep's ETA", () => {
  const { writes, stream } = recorder();
  const printer = new ProgressPrinter(new SweepProgress([0, 1], 2, 2), stream, false);
  printer.runStart({ klCoefficient: 1, index: 1, count: 2, cached: false, worker: 1 });
  printer.epochEnd(epochEnd(1, 1, 4, 2));
  printer.epochEnd(epochEnd(1, 2, 4, 2));
  // Read back from the cache once the helper is done: not printed again.
  printer.runStart({ klCoefficient: 1, index: 1, count: 2, cached: true });
  assert.deepEqual(
    writes.map((w) => w.trimStart().split(" ").slice(0, 6).join(" ")),
    [
      "[2/2] KL coefficient 1: training in",
      "c = 1 (process 2) [########........]",
      "c = 1 (process 2) [################]",
    ],
  );
  // Epochs left after the first: 2 (c = 0) + 1 (c = 1), at 4 s, on 2 processes: 3 x 4 / 2 = 6 s.
  assert.match(writes[1], /\| sweep: 0\/2 coefficients done, 1 training, 1 waiting; ETA 6s\n$/);
});
