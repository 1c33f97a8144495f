/**
 * Static PNG images of plotly figures, drawn by plotly.js itself in headless Chromium
 * (`Plotly.toImage`): the fallback image of every notebook figure and the files of `npm run figures`.
 */
import type { Browser, Page } from "playwright-core";
import { findChromium, launchChromium } from "./browser";
import { plotlySource, type Figure } from "./plot";
import { withTimeLimit } from "../system/timeLimit";

/** A figure takes about a second to draw; one that takes this long will not come. */
const RENDER_TIMEOUT_MS = 120_000;

export class FigureRenderer {
  private constructor(
    private readonly browser: Browser,
    private readonly page: Page,
  ) {}

  /** Starts Chromium with plotly.js loaded in a blank page. */
  static async start(): Promise<FigureRenderer> {
    const browser = await launchChromium();
    const page = await browser.newPage();
    await page.setContent("<!doctype html><html><body><div id=figure></div></body></html>");
    await page.addScriptTag({ content: plotlySource() });
    return new FigureRenderer(browser, page);
  }

  /** True when a Chromium executable is installed (the renderer can start). */
  static available(): boolean {
    return findChromium() !== undefined;
  }

  /** The figure as PNG bytes at its layout's size (or 700 x 500), scaled by `scale`. */
  async png(figure: Figure, scale = 1): Promise<Uint8Array> {
    return this.image(figure, "png", scale);
  }

  /**
   * The figure as an image file at its layout's size (or 700 x 500), scaled by `scale`. WebP (Chromium's
   * default quality, 0.8) weighs a fifth of the PNG for a scatter and an eighth for a decoded manifold:
   * the notebooks' static fallback images.
   */
  async image(figure: Figure, format: "png" | "webp", scale = 1): Promise<Uint8Array> {
    const width = (figure.layout.width as number | undefined) ?? 700;
    const height = (figure.layout.height as number | undefined) ?? 500;
    const drawing = this.page.evaluate(
      async ({ data, layout, width, height, scale, format }) => {
        const plotly = (
          globalThis as unknown as { Plotly: { toImage(fig: unknown, options: unknown): Promise<string> } }
        ).Plotly;
        return plotly.toImage({ data, layout }, { format, width, height, scale });
      },
      { data: figure.data, layout: figure.layout, width, height, scale, format },
    );
    // playwright puts no limit on evaluate: a browser that stops answering must not stall a notebook.
    const dataUrl = await withTimeLimit(drawing, RENDER_TIMEOUT_MS, () => {
      throw new Error(
        `Chromium drew no image within ${RENDER_TIMEOUT_MS / 1000} s ` +
          "(set VAE_STATIC_IMAGES=0 to skip the static images).",
      );
    });
    return Buffer.from(dataUrl.slice(dataUrl.indexOf(",") + 1), "base64");
  }

  async close(): Promise<void> {
    await this.browser.close();
  }
}
