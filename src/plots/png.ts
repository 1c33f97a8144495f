/**
 * A minimal PNG encoder for 8-bit greyscale images (the decoded manifold and digit grids), so that a
 * 840 x 840 image travels as ~100 kB instead of 700,000 numbers in a notebook or report.
 * Format: the PNG signature, then IHDR, IDAT (zlib of each row prefixed by filter byte 0) and IEND,
 * each chunk as length, type, data, CRC-32 of type + data (PNG specification, sections 5 and 11).
 */
import { deflateSync } from "node:zlib";

const SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * Encodes row-major greyscale pixels (0 black .. 255 white) as a PNG file. `bitDepth` 4 keeps 16 grey
 * levels (each pixel rounded to the nearest multiple of 17, which is how a decoder scales 4-bit samples
 * back to 8 bits): a decoded manifold then weighs about a ninth of its 8-bit PNG with no difference
 * visible at screen size, which matters in a notebook holding eight of them.
 */
export function encodeGreyPng(width: number, height: number, pixels: Uint8Array, bitDepth: 8 | 4 = 8): Uint8Array {
  if (pixels.length !== width * height)
    throw new Error(`encodeGreyPng: ${pixels.length} pixels for a ${width} x ${height} image.`);
  if (bitDepth !== 8 && bitDepth !== 4)
    throw new RangeError(`encodeGreyPng: bit depth must be 8 or 4; got ${String(bitDepth)}.`);
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = bitDepth;
  header[9] = 0; // colour type: greyscale
  const rowBytes = bitDepth === 8 ? width : Math.ceil(width / 2);
  const raw = new Uint8Array(height * (rowBytes + 1));
  for (let y = 0; y < height; y++) {
    const row = pixels.subarray(y * width, (y + 1) * width);
    const offset = y * (rowBytes + 1) + 1;
    if (bitDepth === 8) raw.set(row, offset);
    // Two samples per byte, the first in the high nibble (PNG specification, section 7.2).
    else for (let x = 0; x < width; x++) raw[offset + (x >> 1)] |= Math.round(row[x] / 17) << (x & 1 ? 0 : 4);
  }
  const parts = [
    SIGNATURE,
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(raw, { level: 9 })),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function pngDataUri(png: Uint8Array): string {
  return `data:image/png;base64,${Buffer.from(png).toString("base64")}`;
}

/**
 * Tiles digits (row-major [count, side * side] values in [0, 1]) into a grid image of `rows` x `cols`
 * digits, as the tutorial's `figure[i * digit_size: (i + 1) * digit_size, ...] = digit`.
 */
export function tileDigits(
  digits: Float32Array,
  rows: number,
  cols: number,
  side = 28,
): { width: number; height: number; pixels: Uint8Array } {
  const width = cols * side;
  const height = rows * side;
  const pixels = new Uint8Array(width * height);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const digit = r * cols + c;
      if ((digit + 1) * side * side > digits.length) continue;
      for (let y = 0; y < side; y++) {
        for (let x = 0; x < side; x++) {
          const value = digits[digit * side * side + y * side + x];
          pixels[(r * side + y) * width + c * side + x] = Math.round(255 * Math.min(1, Math.max(0, value)));
        }
      }
    }
  }
  return { width, height, pixels };
}
