/**
 * Unsigned LEB128 varints and a growable byte writer / bounds-checked byte
 * reader around them, for compact binary encodings (saved region state).
 *
 * A varint holds 7 bits per byte, low bits first, the high bit saying "more
 * follows": values below 128 take one byte, below 2^14 two, and any safe
 * integer (below 2^53) at most eight. Values of 2^32 and more are split with
 * arithmetic, not bit operators, so page counts of huge regions stay exact.
 *
 * @module
 */

/** Bytes a varint of any safe integer takes at most. */
export const MAX_VARINT_BYTES = 8;

/** Why a {@link ByteReader} could not read. */
export type ByteReadProblem = "truncated" | "overlong";

/** A read past the end of the input, or a varint that is not a safe integer. */
export class ByteReadError extends RangeError {
  /** `"truncated"`: the input ended; `"overlong"`: the varint exceeds 2^53 - 1. */
  readonly problem: ByteReadProblem;
  /** Offset of the value that could not be read. */
  readonly offset: number;

  /** Creates the error for the value at `offset`. */
  constructor(problem: ByteReadProblem, offset: number) {
    super(
      problem === "truncated"
        ? `input ends inside the value at byte ${offset}`
        : `the varint at byte ${offset} is not a safe integer`,
    );
    this.name = "ByteReadError";
    this.problem = problem;
    this.offset = offset;
  }
}

/** Bytes the varint of `value` (a non-negative safe integer) takes. */
export function varintLength(value: number): number {
  let n = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

/**
 * Appends bytes to a buffer that doubles as needed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ByteReader, ByteWriter } from "./_varint.ts";
 * const w = new ByteWriter();
 * w.varint(300);
 * w.varint(2 ** 40);
 * w.string("ram");
 * const r = new ByteReader(w.bytes());
 * assert.deepEqual([r.varint(), r.varint(), r.string()], [300, 2 ** 40, "ram"]);
 * assert.equal(r.remaining, 0);
 * ```
 */
export class ByteWriter {
  #buf: Uint8Array;
  #len = 0;

  /** Starts with room for `capacity` bytes. */
  constructor(capacity = 256) {
    this.#buf = new Uint8Array(Math.max(16, capacity));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#len;
  }

  /** Appends one byte (its low 8 bits). */
  u8(value: number): void {
    this.#room(1);
    this.#buf[this.#len++] = value & 0xff;
  }

  /** Appends a 32-bit unsigned integer, little-endian. */
  u32(value: number): void {
    this.#room(4);
    const b = this.#buf, at = this.#len;
    b[at] = value & 0xff;
    b[at + 1] = (value >>> 8) & 0xff;
    b[at + 2] = (value >>> 16) & 0xff;
    b[at + 3] = (value >>> 24) & 0xff;
    this.#len += 4;
  }

  /** Overwrites the 32-bit little-endian integer at `offset` (already written). */
  patchU32(offset: number, value: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + 4 > this.#len) {
      throw new RangeError(`offset: must be inside the written bytes, got ${offset}`);
    }
    const b = this.#buf;
    b[offset] = value & 0xff;
    b[offset + 1] = (value >>> 8) & 0xff;
    b[offset + 2] = (value >>> 16) & 0xff;
    b[offset + 3] = (value >>> 24) & 0xff;
  }

  /** Appends `value`, a non-negative safe integer, as a varint. */
  varint(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`value: a varint must be a non-negative safe integer, got ${value}`);
    }
    this.#room(MAX_VARINT_BYTES);
    const b = this.#buf;
    let at = this.#len;
    while (value >= 0x8000_0000) {
      b[at++] = (value % 128) | 0x80;
      value = Math.floor(value / 128);
    }
    while (value >= 0x80) {
      b[at++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    b[at++] = value;
    this.#len = at;
  }

  /** Appends raw bytes. */
  raw(bytes: Uint8Array): void {
    this.#room(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  /** Appends a string as its UTF-8 byte count (a varint) and bytes. */
  string(text: string): void {
    const bytes = new TextEncoder().encode(text);
    this.varint(bytes.length);
    this.raw(bytes);
  }

  /** A copy of the bytes written. */
  bytes(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
}

/** Reads values from bytes in order; every read checks bounds and throws {@link ByteReadError}. */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #end: number;
  #at: number;

  /** Reads `bytes[start, end)` (defaults: all of it). */
  constructor(bytes: Uint8Array, start = 0, end: number = bytes.length) {
    this.#bytes = bytes;
    this.#at = start;
    this.#end = end;
  }

  /** Offset of the next byte to read. */
  get offset(): number {
    return this.#at;
  }

  /** Bytes left before the end. */
  get remaining(): number {
    return this.#end - this.#at;
  }

  /** Reads one byte. */
  u8(): number {
    if (this.#at >= this.#end) throw new ByteReadError("truncated", this.#at);
    return this.#bytes[this.#at++];
  }

  /** Reads a 32-bit unsigned little-endian integer. */
  u32(): number {
    if (this.#at + 4 > this.#end) throw new ByteReadError("truncated", this.#at);
    const b = this.#bytes, at = this.#at;
    this.#at += 4;
    return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
  }

  /** Reads a varint; one longer than {@link MAX_VARINT_BYTES} or above 2^53 - 1 is `"overlong"`. */
  varint(): number {
    const b = this.#bytes, start = this.#at, end = this.#end;
    let at = start;
    // Fast path: up to four bytes (28 bits) with bit operators.
    let value = 0;
    for (let shift = 0; shift < 28; shift += 7) {
      if (at >= end) throw new ByteReadError("truncated", start);
      const byte = b[at++];
      value |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.#at = at;
        return value >>> 0;
      }
    }
    let scale = 2 ** 28;
    value >>>= 0;
    for (let n = 4; n < MAX_VARINT_BYTES; n++) {
      if (at >= end) throw new ByteReadError("truncated", start);
      const byte = b[at++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(value)) throw new ByteReadError("overlong", start);
        this.#at = at;
        return value;
      }
      scale *= 128;
    }
    throw new ByteReadError("overlong", start);
  }

  /** Reads `n` bytes (a view, not a copy). */
  raw(n: number): Uint8Array {
    if (!Number.isInteger(n) || n < 0 || this.#at + n > this.#end) {
      throw new ByteReadError("truncated", this.#at);
    }
    const view = this.#bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    return view;
  }

  /** Reads a string written by {@link ByteWriter.string} (invalid UTF-8 is replaced, not fatal). */
  string(): string {
    return new TextDecoder().decode(this.raw(this.varint()));
  }
}
