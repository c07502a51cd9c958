/**
 * Small shared pieces of the configuration rules: the parsed-region record the
 * rules pass around and the formatting helpers their messages use.
 *
 * @module
 */

import { hex } from "../../util/_hex.ts";
import type { FieldPath, ParsedFields } from "./_fields.ts";
import type { regionFields } from "./schema.ts";

/** The fields of a region entry that parsed. */
export type RegionFields = ParsedFields<typeof regionFields>;

/** A region entry with the fields that parsed and whether its geometry is trustworthy. */
export interface RegionEntry {
  /** Index in `regions`. */
  index: number;
  /** The fields that parsed. */
  fields: RegionFields;
  /** pageSize parsed and obeys its rule. */
  pageSizeOk: boolean;
  /** base and size parsed and obey their rules (so the range can be compared). */
  rangeOk: boolean;
}

/** Records one issue at a field path. */
export type Add = (path: FieldPath, message: string) => void;

/** `0x`-prefixed lowercase hex (the project's one formatter). */
export { hex } from "../../util/_hex.ts";

/** `[start, start + size)` in hex. */
export function span(start: number, size: number): string {
  return `[${hex(start)}, ${hex(start + size)})`;
}

/** A quoted name for messages, or `(unnamed)` when the name did not parse. */
export function label(name: string | undefined): string {
  return name === undefined ? "(unnamed)" : JSON.stringify(name);
}

/** Whether `n` is a power of two, exact for every safe integer (the project's one test). */
export { isPowerOfTwo } from "../../util/_bits.ts";
