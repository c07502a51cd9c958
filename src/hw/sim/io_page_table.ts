/**
 * A model of an IO page table's cost: how many entries of each size the
 * mapped areas need and how many 4 KiB table pages hold them.
 *
 * Each area is mapped with the largest entries alignment and physical
 * contiguity allow (drivers/iommu/iommu.c `iommu_pgsize`: the size comes from
 * the alignment of `iova | paddr`): a 1 GiB or 2 MiB entry needs the backing
 * to be made of pages at least that large (hugetlb or THP; shmem folios are
 * 4 KiB), its iova and its address congruent modulo that size, and the whole
 * block inside the area; everything else is 4 KiB entries. A 1 GiB range on
 * 4 KiB folios thus costs 262,144 entries in 515 table pages (512 leaf tables,
 * one per level above, and the root). The table is
 * x86-style: a table page holds 512 entries, so a 4 KiB-entry table covers
 * 2 MiB, a 2 MiB-entry table covers 1 GiB, a 1 GiB-entry table covers 512 GiB,
 * and the root covers 256 TiB (4 levels) or 128 PiB (5 levels). Splitting a
 * 1 GiB entry therefore allocates a table page of 2 MiB entries, and splitting
 * a 2 MiB entry a table page of 4 KiB entries.
 *
 * The counts are computed in closed form per area (no per-page work, so a
 * 1 TiB area costs O(1)). A table page below the root is needed for a region
 * exactly when some entry smaller than the region's own entry size lies in it.
 * Only the first and last region an area touches can be shared with a
 * neighbouring area; regions strictly inside it are its own. So each area
 * carries a count of its exclusive table pages plus at most two shared region
 * keys per level, and shared keys are reference counted.
 *
 * @module
 */

/** 4 KiB: the smallest IO page. */
export const IO_PAGE_4K = 4096;
/** 2 MiB: a second-level large entry. */
export const IO_PAGE_2M = 2 ** 21;
/** 1 GiB: a third-level large entry. */
export const IO_PAGE_1G = 2 ** 30;
/** Entries per table page (4 KiB of 8-byte entries). */
export const ENTRIES_PER_TABLE = 512;

/** Entry counts by size. */
export interface EntryCounts {
  /** 4 KiB entries. */
  entries4k: number;
  /** 2 MiB entries. */
  entries2m: number;
  /** 1 GiB entries. */
  entries1g: number;
}

/** An area as the page table sees it. */
export interface AreaShape {
  /** IO virtual address, 4 KiB aligned. */
  iova: number;
  /** Length in bytes, 4 KiB aligned, > 0. */
  size: number;
  /** Host address, 4 KiB aligned. */
  vaddr: number;
}

/** What one area costs in the page table. */
export interface AreaFootprint extends EntryCounts {
  /** Table pages only this area can use. */
  exclusiveTables: number;
  /** Keys (level and region) of table pages the area may share with neighbours. */
  sharedTables: number[];
}

/** Region sizes covered by one table page, by level from the leaves up (below the root). */
const TABLE_REGIONS_4_LEVEL = [IO_PAGE_2M, IO_PAGE_1G, 2 ** 39];
const TABLE_REGIONS_5_LEVEL = [IO_PAGE_2M, IO_PAGE_1G, 2 ** 39, 2 ** 48];

/** Running totals of entries and table pages for a set of non-overlapping areas. */
export class IoPageTable {
  /** Paging levels (4 or 5). */
  readonly levels: 4 | 5;
  #regions: number[];
  #counts: EntryCounts = { entries4k: 0, entries2m: 0, entries1g: 0 };
  #exclusive = 0;
  #shared = new Map<number, number>();

  /** An empty table: just the root page. */
  constructor(levels: 4 | 5 = 4) {
    this.levels = levels;
    this.#regions = levels === 4 ? TABLE_REGIONS_4_LEVEL : TABLE_REGIONS_5_LEVEL;
  }

  /** The highest address (exclusive) this table can map. */
  get addressLimit(): number {
    return this.levels === 4 ? 2 ** 48 : 2 ** 57;
  }

  /** Table pages in use, the root included. */
  get tablePages(): number {
    return 1 + this.#exclusive + this.#shared.size;
  }

  /** Entries in use by size (a copy). */
  get counts(): EntryCounts {
    return { ...this.#counts };
  }

  /**
   * The entries and table pages `area` needs when mapped on its own terms;
   * `backingPageSize` is the physical page size behind it (default 4 KiB).
   */
  footprint(area: AreaShape, backingPageSize: number = IO_PAGE_4K): AreaFootprint {
    const { iova: a, size, vaddr } = area;
    const e = a + size;
    const largest = largestEntry(a, vaddr, backingPageSize);
    const fp: AreaFootprint = {
      entries4k: 0,
      entries2m: 0,
      entries1g: 0,
      exclusiveTables: 0,
      sharedTables: [],
    };
    addEntries(fp, a, e, largest);
    // A plain loop: this runs on every simulated map and cut.
    for (let level = 0; level < this.#regions.length; level++) {
      const region = this.#regions[level];
      const first = Math.floor(a / region);
      const last = Math.floor((e - 1) / region);
      if (largest >= region) {
        // Only partial regions at either end hold smaller entries.
        if (a % region !== 0) fp.sharedTables.push(tableKey(first, level));
        if (e % region !== 0 && (last !== first || a % region === 0)) {
          fp.sharedTables.push(tableKey(last, level));
        }
      } else {
        fp.sharedTables.push(tableKey(first, level));
        if (last !== first) fp.sharedTables.push(tableKey(last, level));
        fp.exclusiveTables += Math.max(0, last - first - 1);
      }
    }
    return fp;
  }

  /** Table pages there would be after removing and adding these footprints (nothing changes). */
  tablePagesAfter(removed: AreaFootprint[], added: AreaFootprint[]): number {
    if (removed.length === 0 && added.length === 1) return this.#tablePagesAfterAdding(added[0]);
    let pages = this.tablePages;
    const delta = new Map<number, number>();
    for (const fp of removed) {
      pages -= fp.exclusiveTables;
      for (const k of fp.sharedTables) delta.set(k, (delta.get(k) ?? 0) - 1);
    }
    for (const fp of added) {
      pages += fp.exclusiveTables;
      for (const k of fp.sharedTables) delta.set(k, (delta.get(k) ?? 0) + 1);
    }
    for (const [k, d] of delta) {
      const before = this.#shared.get(k) ?? 0;
      pages += (before + d > 0 ? 1 : 0) - (before > 0 ? 1 : 0);
    }
    return pages;
  }

  /**
   * {@link tablePagesAfter} for one new area (every map): a footprint's shared
   * keys are distinct, so each adds a page exactly when no area uses it yet,
   * and no delta map is needed.
   */
  #tablePagesAfterAdding(fp: AreaFootprint): number {
    let pages = this.tablePages + fp.exclusiveTables;
    for (const k of fp.sharedTables) {
      if (!this.#shared.has(k)) pages++;
    }
    return pages;
  }

  /** Accounts a mapped area. */
  add(fp: AreaFootprint): void {
    this.#apply(fp, 1);
  }

  /** Releases a mapped area. */
  remove(fp: AreaFootprint): void {
    this.#apply(fp, -1);
  }

  #apply(fp: AreaFootprint, sign: 1 | -1): void {
    this.#counts.entries4k += sign * fp.entries4k;
    this.#counts.entries2m += sign * fp.entries2m;
    this.#counts.entries1g += sign * fp.entries1g;
    this.#exclusive += sign * fp.exclusiveTables;
    for (const k of fp.sharedTables) {
      const n = (this.#shared.get(k) ?? 0) + sign;
      if (n > 0) this.#shared.set(k, n);
      else this.#shared.delete(k);
    }
  }
}

/**
 * The largest entry size usable anywhere in an area: no larger than the
 * backing's physical page size, with iova and address congruent modulo it.
 */
export function largestEntry(iova: number, vaddr: number, backingPageSize: number): number {
  if (backingPageSize >= IO_PAGE_1G && iova % IO_PAGE_1G === vaddr % IO_PAGE_1G) return IO_PAGE_1G;
  if (backingPageSize >= IO_PAGE_2M && iova % IO_PAGE_2M === vaddr % IO_PAGE_2M) return IO_PAGE_2M;
  return IO_PAGE_4K;
}

/** Greedy largest-first entry counts for `[start, end)` with entries up to `largest`. */
export function countEntries(start: number, end: number, largest: number): EntryCounts {
  const counts: EntryCounts = { entries4k: 0, entries2m: 0, entries1g: 0 };
  addEntries(counts, start, end, largest);
  return counts;
}

/** Adds {@link countEntries} of `[start, end)` to `counts` (in place: no object per area). */
function addEntries(counts: EntryCounts, start: number, end: number, largest: number): void {
  if (largest >= IO_PAGE_1G) {
    const lo = Math.ceil(start / IO_PAGE_1G) * IO_PAGE_1G;
    const hi = Math.floor(end / IO_PAGE_1G) * IO_PAGE_1G;
    if (lo < hi) {
      counts.entries1g += (hi - lo) / IO_PAGE_1G;
      addSmallEntries(counts, start, lo, largest);
      addSmallEntries(counts, hi, end, largest);
      return;
    }
  }
  addSmallEntries(counts, start, end, largest);
}

/** Adds the 2 MiB (when `largest` allows) and 4 KiB entries of `[start, end)` to `counts`. */
function addSmallEntries(counts: EntryCounts, start: number, end: number, largest: number): void {
  if (end <= start) return;
  if (largest >= IO_PAGE_2M) {
    const lo = Math.ceil(start / IO_PAGE_2M) * IO_PAGE_2M;
    const hi = Math.floor(end / IO_PAGE_2M) * IO_PAGE_2M;
    if (lo < hi) {
      counts.entries2m += (hi - lo) / IO_PAGE_2M;
      counts.entries4k += (lo - start + end - hi) / IO_PAGE_4K;
      return;
    }
  }
  counts.entries4k += (end - start) / IO_PAGE_4K;
}

/** The reference-count key of the table page covering region `index` at `level`. */
function tableKey(index: number, level: number): number {
  return index * 8 + level;
}
