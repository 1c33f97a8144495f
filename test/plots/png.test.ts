import assert from "node:assert/strict";
import { test } from "node:test";
import { inflateSync } from "node:zlib";
import { crc32, encodeGreyPng, tileDigits } from "../../src/plots/png";

/** CRC-32 bit by bit (no table), as the PNG specification's sample code defines it. */
function slowCrc(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of bytes) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

test("crc32 of 'IEND' is the constant every PNG ends with, 0xAE426082", () => {
  assert.equal(crc32(new TextEncoder().encode("IEND")), 0xae426082);
  const bytes = Uint8Array.from({ length: 300 }, (_, i) => (i * 37) % 256);
  assert.equal(crc32(bytes), slowCrc(bytes));
});

test("a greyscale PNG decodes back to its pixels (chunks parsed by hand)", () => {
  const pixels = Uint8Array.from([0, 64, 128, 255, 10, 20]);
  const png = encodeGreyPng(3, 2, pixels);
  assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  const view = new DataView(png.buffer, png.byteOffset);
  const chunks: { type: string; data: Uint8Array }[] = [];
  for (let at = 8; at < png.length;) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...png.subarray(at + 4, at + 8));
    const data = png.subarray(at + 8, at + 8 + length);
    assert.equal(view.getUint32(at + 8 + length), slowCrc(png.subarray(at + 4, at + 8 + length)), `${type} CRC`);
    chunks.push({ type, data });
    at += 12 + length;
  }
  assert.deepEqual(
    chunks.map((c) => c.type),
    ["IHDR", "IDAT", "IEND"],
  );
  const header = new DataView(chunks[0].data.buffer, chunks[0].data.byteOffset);
  assert.deepEqual([header.getUint32(0), header.getUint32(4), chunks[0].data[8], chunks[0].data[9]], [3, 2, 8, 0]);
  // Each row: filter byte 0, then the row's pixels.
  assert.deepEqual([...inflateSync(chunks[1].data)], [0, 0, 64, 128, 0, 255, 10, 20]);
});

test("tiling puts digit (row r, column c) at pixel offset (28 r, 28 c) and scales [0, 1] to 0..255", () => {
  const digits = new Float32Array(4 * 784);
  digits[1 * 784 + 0] = 1; // digit 1 (row 0, column 1), its top-left pixel
  digits[2 * 784 + 27 * 28 + 27] = 0.5; // digit 2 (row 1, column 0), its bottom-right pixel
  const { width, height, pixels } = tileDigits(digits, 2, 2);
  assert.deepEqual([width, height], [56, 56]);
  assert.equal(pixels[0 * 56 + 28], 255);
  assert.equal(pixels[(28 + 27) * 56 + 27], 128);
  assert.equal(
    pixels.reduce((a, b) => a + b, 0),
    255 + 128,
  );
});

test("a 4-bit greyscale PNG packs two samples per byte, each rounded to the nearest of 16 levels (0, 17, ..., 255)", () => {
  // 0 -> 0; 8 -> 8/17 = 0.47 -> 0; 9 -> 0.53 -> 1; 128 -> 7.53 -> 8; 255 -> 15; 200 -> 11.76 -> 12.
  const pixels = Uint8Array.from([0, 8, 9, 128, 255, 200]);
  const png = encodeGreyPng(3, 2, pixels, 4);
  const view = new DataView(png.buffer, png.byteOffset);
  assert.equal(png[8 + 8 + 8], 4, "IHDR bit depth");
  const idatLength = view.getUint32(8 + 25);
  const idat = png.subarray(8 + 25 + 8, 8 + 25 + 8 + idatLength);
  // Row 1: filter 0, then (0, 0) and (1, pad 0); row 2: (8, 15) and (12, pad 0).
  assert.deepEqual([...inflateSync(idat)], [0, 0x00, 0x10, 0, 0x8f, 0xc0]);
  assert.throws(() => encodeGreyPng(3, 2, pixels, 2 as 4), /bit depth must be 8 or 4/);
});
