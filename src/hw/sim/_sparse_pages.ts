/**
 * The page cache of one simulated file: which pages are allocated (a range
 * store, so a 1 TiB file with a few holes costs a few runs) and the bytes of the
 * pages that were written (a B-tree keyed by page index, so only written pages
 * hold memory). A page that was never written, or was punched, reads as zero.
 *
 * @module
 */

import m from "npm:sorted-btree@^2.1.0";
import { RangeTreeStore } from "../../store/range_tree_store.ts";
import { countPagesWith } from "../../store/_read_runs.ts";

const BTree = m.default;

/** Allocation and contents of a file of `size` bytes in pages of `pageSize`. */
export class SparsePages {
  /** File size in bytes. */
  readonly size: number;
  /** Page size in bytes. */
  readonly pageSize: number;
  /** Number of pages (the last one may be partial). */
  readonly pageCount: number;
  #allocated: RangeTreeStore;
  #allocatedPages = 0;
  #contents = new BTree<number, Uint8Array>();

  /** An unallocated, all-zero file. */
  constructor(size: number, pageSize: number) {
    this.size = size;
    this.pageSize = pageSize;
    this.pageCount = Math.ceil(size / pageSize);
    this.#allocated = new RangeTreeStore(this.pageCount, { bits: 1 });
  }

  /** Number of allocated pages. */
  get allocatedPages(): number {
    return this.#allocatedPages;
  }

  /** Number of pages holding written bytes. */
  get writtenPages(): number {
    return this.#contents.size;
  }

  /** Marks pages `[first, end)` allocated (their contents do not change). */
  allocate(first: number, end: number): void {
    this.#mark(first, end, 1);
  }

  /** Frees pages `[first, end)`: they read zero afterwards. */
  deallocate(first: number, end: number): void {
    if (first >= end) return;
    this.#mark(first, end, 0);
    // Most files are never written through the mapping: skip the tree walk then.
    if (this.#contents.size > 0) this.#contents.deleteRange(first, end, false);
  }

  /** Zeroes bytes `[offset, offset + length)` without freeing pages (partial-page punch). */
  zero(offset: number, length: number): void {
    const end = offset + length;
    for (const [page, bytes] of this.#pagesIn(offset, end)) {
      const base = page * this.pageSize;
      bytes.fill(0, Math.max(offset, base) - base, Math.min(end, base + this.pageSize) - base);
    }
  }

  /** Copies out `[offset, offset + length)`; unwritten bytes are zero. */
  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    const end = offset + length;
    for (const [page, bytes] of this.#pagesIn(offset, end)) {
      const base = page * this.pageSize;
      const from = Math.max(offset, base);
      const to = Math.min(end, base + this.pageSize);
      out.set(bytes.subarray(from - base, to - base), from - offset);
    }
    return out;
  }

  /** Stores `data` at `offset`, allocating every page it touches. */
  write(offset: number, data: Uint8Array): void {
    if (data.length === 0) return;
    const end = offset + data.length;
    const first = Math.floor(offset / this.pageSize);
    const last = Math.ceil(end / this.pageSize);
    for (let page = first; page < last; page++) {
      let bytes = this.#contents.get(page);
      if (bytes === undefined) {
        bytes = new Uint8Array(this.pageSize);
        this.#contents.set(page, bytes);
      }
      const base = page * this.pageSize;
      const from = Math.max(offset, base);
      const to = Math.min(end, base + this.pageSize);
      bytes.set(data.subarray(from - offset, to - offset), from - base);
    }
    this.allocate(first, last);
  }

  /** Bytes of `[offset, offset + length)` (clipped to the file) that lie in allocated pages. */
  allocatedBytes(offset: number, length: number): number {
    const end = Math.min(this.size, offset + length);
    if (offset >= end) return 0;
    let total = 0;
    const first = Math.floor(offset / this.pageSize);
    const last = Math.ceil(end / this.pageSize);
    for (const run of this.#allocated.runs(first, last)) {
      if (run.state === 0) continue;
      const from = Math.max(offset, run.start * this.pageSize);
      const to = Math.min(end, run.end * this.pageSize);
      total += to - from;
    }
    return total;
  }

  /** Written pages overlapping `[offset, end)` with their page index. */
  *#pagesIn(offset: number, end: number): Generator<[number, Uint8Array]> {
    const first = Math.floor(offset / this.pageSize);
    const last = Math.ceil(end / this.pageSize);
    for (const [page, bytes] of this.#contents.entries(first)) {
      if (page >= last) break;
      yield [page, bytes];
    }
  }

  #mark(first: number, end: number, state: 0 | 1): void {
    if (first >= end) return;
    const allocated = countPagesWith(this.#allocated, first, end, 1);
    this.#allocatedPages += state ? end - first - allocated : -allocated;
    this.#allocated.set(first, end, state);
  }
}
