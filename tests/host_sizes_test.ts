// parseSize accepts bytes, hex and binary units exactly, and rejects the rest naming the field.
import assert from "node:assert/strict";
import { formatSize, parseSize } from "../src/host/sizes.ts";

const KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024, TiB = GiB * 1024;

Deno.test("parseSize: numbers, decimal and hex strings", () => {
  assert.equal(parseSize(4096, "f"), 4096);
  assert.equal(parseSize(0, "f"), 0);
  assert.equal(parseSize("4096", "f"), 4096);
  assert.equal(parseSize("0x1000", "f"), 4096);
  assert.equal(parseSize("0X100000000", "f"), 4 * GiB);
  assert.equal(parseSize(" 0x1000 ", "f"), 4096);
  assert.equal(parseSize(Number.MAX_SAFE_INTEGER, "f"), Number.MAX_SAFE_INTEGER);
});

Deno.test("parseSize: binary units, QEMU shorthand, spaces and case", () => {
  assert.equal(parseSize("4KiB", "f"), 4 * KiB);
  assert.equal(parseSize("2MiB", "f"), 2 * MiB);
  assert.equal(parseSize("16GiB", "f"), 16 * GiB);
  assert.equal(parseSize("1TiB", "f"), TiB);
  assert.equal(parseSize("1PiB", "f"), 1024 * TiB);
  assert.equal(parseSize("16 GiB", "f"), 16 * GiB);
  assert.equal(parseSize("16gib", "f"), 16 * GiB);
  assert.equal(parseSize("16G", "f"), 16 * GiB);
  assert.equal(parseSize("512B", "f"), 512);
  assert.equal(parseSize("4k", "f"), 4 * KiB);
});

Deno.test("parseSize: fractions are exact and must give whole bytes", () => {
  assert.equal(parseSize("1.5GiB", "f"), 1.5 * GiB);
  assert.equal(parseSize("0.5KiB", "f"), 512);
  assert.equal(parseSize("1.25MiB", "f"), 1.25 * MiB);
  assert.throws(() => parseSize("0.1KiB", "f"), /f: must be a whole number of bytes, got "0.1KiB"/);
  assert.throws(() => parseSize("1.1GiB", "f"), /whole number of bytes/);
  assert.throws(() => parseSize("1.5B", "f"), /whole number of bytes/);
  assert.throws(() => parseSize(1.5, "size"), /size: must be a whole number of bytes, got 1\.5/);
});

Deno.test("parseSize: rejects SI units, unknown units, negatives, junk and huge values", () => {
  assert.throws(
    () => parseSize("16GB", "regions[0].size"),
    (e) =>
      e instanceof RangeError &&
      e.message ===
        'regions[0].size: unit "GB" is ambiguous (10^n or 2^n); write "GiB" for powers of 1024, got "16GB"',
  );
  assert.throws(() => parseSize("4KB", "f"), /write "KiB"/);
  assert.throws(() => parseSize("4XiB", "f"), /f: unknown unit "XiB" .*got "4XiB"/);
  assert.throws(() => parseSize("-4096", "f"), /f: must not be negative, got "-4096"/);
  assert.throws(() => parseSize(-1, "f"), /f: must not be negative, got -1/);
  assert.throws(() => parseSize("", "f"), /f: must be a byte count like/);
  assert.throws(() => parseSize("abc", "f"), /got "abc"/);
  assert.throws(() => parseSize("0x", "f"), /got "0x"/);
  assert.throws(() => parseSize("0x10KiB", "f"), /got "0x10KiB"/);
  assert.throws(() => parseSize(NaN, "f"), /f: must be a finite number of bytes, got NaN/);
  assert.throws(() => parseSize(Infinity, "f"), /finite/);
  assert.throws(() => parseSize(2 ** 53, "f"), /f: must be at most 9007199254740991 bytes/);
  assert.throws(() => parseSize("0x20000000000000", "f"), /at most 9007199254740991/);
  assert.throws(() => parseSize("8PiB", "f"), /at most/);
  assert.throws(
    () => parseSize(true as unknown as number, "f"),
    (e) =>
      e instanceof TypeError && /f: must be a number of bytes or a size string/.test(e.message),
  );
});

Deno.test("formatSize: largest unit, up to two decimals", () => {
  assert.equal(formatSize(0), "0 B");
  assert.equal(formatSize(100), "100 B");
  assert.equal(formatSize(4096), "4 KiB");
  assert.equal(formatSize(16 * GiB), "16 GiB");
  assert.equal(formatSize(1.5 * GiB), "1.5 GiB");
  assert.equal(formatSize(1.25 * MiB), "1.25 MiB");
  assert.equal(formatSize(14 * GiB), "14 GiB");
  assert.equal(formatSize(2 * TiB), "2 TiB");
  assert.equal(formatSize(MiB - 1), "1 MiB");
  assert.throws(() => formatSize(-1), /bytes: must be a non-negative finite number, got -1/);
  assert.throws(() => formatSize(NaN), /got NaN/);
});

Deno.test("formatSize output parses back for exact values", () => {
  for (const bytes of [0, 512, 4096, 2 * MiB, 1.5 * GiB, 16 * GiB, 3 * TiB]) {
    assert.equal(parseSize(formatSize(bytes), "f"), bytes);
  }
});
