/**
 * The one place the project reaches into tslab's internals. tslab's public display API
 * (`tslab.display.raw(type, data)`) sends one MIME type per output, but a figure is one output holding
 * several (`text/html`, `application/vnd.plotly.v1+json`, `text/plain`) so that each front end picks the
 * richest it can draw. tslab keeps the executing cell's sender of Jupyter `display_data` messages in
 * `tslab/dist/jupyter`'s `lastWriteDisplayData`, which takes a whole bundle: this module calls it, and
 * checks its shape first so that a tslab release that changes it fails with a message saying so.
 * `test/notebook/tslabDisplay.test.ts` sends a bundle through a real kernel.
 */

/** A Jupyter MIME bundle: text per MIME type, or a JSON object for `application/*+json` types. */
export interface MimeBundle {
  readonly [mimeType: string]: string | object;
}

/** The display message's content as tslab's sender takes it (Jupyter's `display_data` content). */
export interface DisplayDataContent {
  readonly data: MimeBundle;
  readonly metadata: object;
  readonly transient: { display_id?: string };
}

type WriteDisplayData = (content: DisplayDataContent, update: boolean) => void;

/** The tslab version this was written against, named in the message when its internals differ. */
export const TSLAB_VERSION_CHECKED = "1.0.22";
const MODULE = "tslab/dist/jupyter";

function changed(what: string): Error {
  let version = "unknown";
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    version = (require("tslab/package.json") as { version: string }).version;
  } catch {
    // tslab's package file is not exported: the version stays unknown.
  }
  return new Error(
    `tslab ${version} changed the internal display channel that sends a figure's MIME bundle (${what}); ` +
      `src/notebook/tslabDisplay.ts was written against tslab ${TSLAB_VERSION_CHECKED}: ` +
      `pin tslab to ${TSLAB_VERSION_CHECKED} in package.json, or adapt that file to the new tslab.`,
  );
}

/**
 * Checks the shape of tslab's module that holds the sender (it exports `lastWriteDisplayData`, null
 * between cells or a function of `(content, update)`), throwing a message that says tslab changed it.
 */
export function checkDisplayModule(jupyter: Record<string, unknown>): {
  lastWriteDisplayData: WriteDisplayData | null;
} {
  if (!("lastWriteDisplayData" in jupyter)) throw changed(`${MODULE} no longer exports lastWriteDisplayData`);
  const sender = jupyter.lastWriteDisplayData;
  if (sender !== null && typeof sender !== "function")
    throw changed(`${MODULE}'s lastWriteDisplayData is a ${typeof sender}, not a function`);
  if (typeof sender === "function" && sender.length !== 2)
    throw changed(`lastWriteDisplayData takes ${sender.length} arguments, not (content, update)`);
  return jupyter as { lastWriteDisplayData: WriteDisplayData | null };
}

/** tslab's module holding the sender, with its shape checked. */
function tslabJupyter(): { lastWriteDisplayData: WriteDisplayData | null } {
  let jupyter: Record<string, unknown>;
  try {
    // Loaded lazily: this module must import outside a kernel (tests, scripts).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    jupyter = require(MODULE);
  } catch {
    throw isTslabInstalled()
      ? changed(`${MODULE} cannot be loaded`)
      : new Error(
          "Displaying needs the tslab kernel: run this in a notebook (npm run lab) " +
            "or use src/plots/render.ts for files.",
        );
  }
  return checkDisplayModule(jupyter);
}

function isTslabInstalled(): boolean {
  try {
    require.resolve("tslab");
    return true;
  } catch {
    return false;
  }
}

/** Throws the message `tslabJupyter` gives when tslab's internals are not as expected; for a test. */
export function checkTslabDisplayChannel(): void {
  tslabJupyter();
}

/**
 * Sends one output holding the whole bundle, as tslab's executing cell; with `displayId`, `update`
 * replaces the output shown under that id (`update_display_data`).
 */
export function sendDisplayData(data: MimeBundle, options: { displayId?: string; update?: boolean } = {}): void {
  const sender = tslabJupyter().lastWriteDisplayData;
  if (!sender) throw new Error("Displaying needs a running tslab kernel cell; none is executing.");
  sender(
    { data, metadata: {}, transient: options.displayId ? { display_id: options.displayId } : {} },
    Boolean(options.update),
  );
}
