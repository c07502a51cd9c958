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
 * Table pages are not given back as soon as no area needs them. A table page is
 * freed only when (a) one kernel-level unmap call covers its whole span, or (b) a
 * larger entry is mapped over it; otherwise it stays allocated ("retained") until
 * the table is dropped. Sources: Linux 6.18 Intel VT-d, drivers/iommu/intel/iommu.c
 * `domain_unmap` -> `dma_pte_clear_level` ("If range covers entire pagetable, free
 * it") and `switch_to_super_page` (tables under a new superpage are freed); the
 * generic IOMMU page table merged for 6.19 (the `proposed` kernel setting),
 * drivers/iommu/generic_pt/iommu_pt.h `__unmap_range` ("If the unmapping range
 * fully covers the table then we can free it as well") and `do_map` ("Table levels
 * were freed and replaced with large items"). One rule serves both kernel settings.
 * Who calls unmap with what size is the caller's ({@link UnmapCalls}): VFIO type1
 * one physically contiguous run per call, iommufd batches of runs; with 4 KiB runs
 * (a 4 KiB memfd) no unmap frees anything. drivers/iommu/iommu.c `__iommu_unmap`
 * splits one call by page size only at boundaries aligned to a table span, so a span
 * inside the call stays in one piece.
 *
 * The host's IOMMU (the `iommu` option, src/settings/iommu.ts) changes two rules.
 * AMD IOMMU v1 on 6.18 has no (a): drivers/iommu/amd/io_pgtable.c
 * `iommu_v1_unmap_pages` only clears PTEs, and a table goes only when a larger page
 * replaces it (`iommu_v1_map_pages` -> `free_clear_pte`) or with the domain
 * (`v1_free_pgtable`). And its table starts at 3 levels (`v1_alloc_pgtable`:
 * `PAGE_MODE_3_LEVEL`, a root spanning 512 GiB) and gains a root whenever a map
 * reaches past the current one (`alloc_pte` -> `increase_address_space`), the old
 * root staying below it as the first table of its level, up to the table's
 * `levels`. Under `proposed` AMD v1 is the generic page table's format
 * (generic_pt/fmt/amdv1.h): (a) holds, and the top grows the same way (iommu_pt.h
 * `increase_top`, `PT_FEAT_DYNAMIC_TOP` with `starting_level = 2`). The counts keep
 * the full-depth layout; a table with fewer levels subtracts the first region's
 * table at the root's level and above (that one is the root) and adds the old roots
 * no area needs.
 *
 * Retained tables are kept per level as merged intervals of region indices,
 * disjoint from the regions live areas need: a map that needs a retained region
 * reuses it (no new page), a larger entry mapped over one frees it.
 *
 * @module
 */

import { SortedMap } from "../../util/sorted_map.ts";
import type { KernelSetting } from "../../settings/kernel.ts";
import {
  type IommuSetting,
  type IoPageTableRules,
  ioPageTableRules,
} from "../../settings/iommu.ts";

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
  /** The area's first IO address. */
  iova: number;
  /** The area's end (exclusive). */
  end: number;
  /** The area's host address. */
  vaddr: number;
  /** The largest entry size the area uses. */
  largest: number;
  /** The physical page size behind the area. */
  backingPageSize: number;
}

/**
 * How the kernel cuts the unmap of one area into unmap calls: a call of `first`
 * bytes, then calls of `period` bytes (the last one may be shorter). `first` is at
 * most `period`; one call for the whole area is `{ first: size, period: Infinity }`.
 */
export interface UnmapCalls {
  /** Bytes of the first call. */
  first: number;
  /** Bytes of every later call but the last. */
  period: number;
}

/**
 * The unmap calls of an area unmapped in physically contiguous runs, `runsPerCall`
 * runs a call. A run is at most one backing page: the model assumes no two backing
 * pages are physically adjacent (the worst case), so a 4 KiB memfd gives 4 KiB runs.
 * VFIO type1 unmaps one run per call (drivers/vfio/vfio_iommu_type1.c
 * `vfio_unmap_unpin`: the "largest contiguous physical memory chunk", then
 * `unmap_unpin_fast` / `unmap_unpin_slow`); iommufd a batch of runs per call.
 */
export function contiguousRunCalls(fp: AreaFootprint, runsPerCall: number): UnmapCalls {
  const b = fp.backingPageSize;
  const size = fp.end - fp.iova;
  const first = Math.min(size, b - (fp.vaddr % b) + (runsPerCall - 1) * b);
  return { first, period: runsPerCall * b };
}

/** A set of region indices kept as merged, inclusive intervals. */
class RegionSet {
  #map = new SortedMap<{ start: number; last: number }>();
  /** Indices in the set. */
  count = 0;

  /** Adds `[start, last]` (none of it in the set yet). */
  add(start: number, last: number): void {
    this.count += last - start + 1;
    const before = this.#map.atOrBelow(start - 1);
    if (before !== undefined && before.last === start - 1) {
      this.#map.delete(before.start);
      start = before.start;
    }
    const after = this.#map.get(last + 1);
    if (after !== undefined) {
      this.#map.delete(after.start);
      last = after.last;
    }
    this.#map.set(start, { start, last });
  }

  /** How many indices of `[lo, hi]` are in the set. */
  countIn(lo: number, hi: number): number {
    if (this.count === 0) return 0;
    if (lo === hi) {
      const iv = this.#map.atOrBelow(lo); // the usual small area: one region a level
      return iv !== undefined && iv.last >= lo ? 1 : 0;
    }
    let n = 0;
    const head = this.#map.below(lo);
    if (head !== undefined && head.last >= lo) n += Math.min(head.last, hi) - lo + 1;
    for (const iv of this.#map.valuesInRange(lo, hi + 1)) n += Math.min(iv.last, hi) - iv.start + 1;
    return n;
  }

  /** Removes the indices of `[lo, hi]` from the set. */
  remove(lo: number, hi: number): void {
    if (this.count === 0) return;
    if (lo === hi) {
      const iv = this.#map.atOrBelow(lo);
      if (iv === undefined || iv.last < lo) return;
      this.count--;
      const last = iv.last;
      if (iv.start === lo) this.#map.delete(lo);
      else iv.last = lo - 1;
      if (last > lo) this.#map.set(lo + 1, { start: lo + 1, last });
      return;
    }
    const head = this.#map.below(lo);
    if (head !== undefined && head.last >= lo) {
      this.count -= Math.min(head.last, hi) - lo + 1;
      const tail = head.last;
      head.last = lo - 1;
      if (tail > hi) this.#map.set(hi + 1, { start: hi + 1, last: tail });
    }
    for (const iv of this.#map.valuesInRange(lo, hi + 1)) {
      this.count -= Math.min(iv.last, hi) - iv.start + 1;
      this.#map.delete(iv.start);
      if (iv.last > hi) this.#map.set(hi + 1, { start: hi + 1, last: iv.last });
    }
  }
}

/** Region sizes covered by one table page, by level from the leaves up (below the root). */
const TABLE_REGIONS_4_LEVEL = [IO_PAGE_2M, IO_PAGE_1G, 2 ** 39];
const TABLE_REGIONS_5_LEVEL = [IO_PAGE_2M, IO_PAGE_1G, 2 ** 39, 2 ** 48];

/** Options of {@link IoPageTable}. */
export interface IoPageTableOptions {
  /** Whose page table (default `"intel-vt-d"`): see {@link IoPageTableRules}. */
  iommu?: IommuSetting;
  /** The kernel (default `"linux-6.18"`). */
  kernel?: KernelSetting;
}

/** Running totals of entries and table pages for a set of non-overlapping areas. */
export class IoPageTable {
  /** Paging levels of the full table (4 or 5): the reach of the IOMMU's aperture. */
  readonly levels: 4 | 5;
  /** The rules of this IOMMU and kernel. */
  readonly rules: IoPageTableRules;
  #regions: number[];
  #counts: EntryCounts = { entries4k: 0, entries2m: 0, entries1g: 0 };
  #exclusive = 0;
  #shared = new Map<number, number>();
  /** Per level, table pages no live area needs that are still allocated. */
  #retained: RegionSet[];
  /** Levels the table has now (AMD v1 grows from 3 to {@link levels}). */
  #active: number;

  /** An empty table: just the root page. */
  constructor(levels: 4 | 5 = 4, options: IoPageTableOptions = {}) {
    this.levels = levels;
    this.rules = ioPageTableRules(options.iommu, options.kernel);
    this.#regions = levels === 4 ? TABLE_REGIONS_4_LEVEL : TABLE_REGIONS_5_LEVEL;
    this.#retained = this.#regions.map(() => new RegionSet());
    this.#active = this.#startingLevels;
  }

  /** The highest address (exclusive) this table can map. */
  get addressLimit(): number {
    return this.levels === 4 ? 2 ** 48 : 2 ** 57;
  }

  /**
   * Paging levels the table has now: {@link levels} on VT-d; on AMD v1, 3 until a map
   * reaches past 512 GiB, then one more each time a map reaches past the root's span.
   */
  get activeLevels(): number {
    return this.#active;
  }

  /** Table pages allocated, the root included: those live areas need and retained ones. */
  get tablePages(): number {
    return this.#fullDepthPages() + this.#topAdjust([]);
  }

  /**
   * Frees the retained table pages: the domain goes with the last device
   * using it, and its tables with it (the simulators' `freeDomain`). A table
   * left empty starts again at its starting levels, as the next domain does;
   * one still holding areas keeps the tables they need, and its old roots, as
   * a domain grown to reach them would.
   */
  dropRetained(): void {
    this.#retained = this.#regions.map(() => new RegionSet());
    if (this.#exclusive === 0 && this.#shared.size === 0) this.#active = this.#startingLevels;
    else this.#pinOldRoots(this.#startingLevels, this.#active);
  }

  /** Table pages allocated that no live area needs (see the module doc). */
  get retainedTablePages(): number {
    let roots = 0; // a root is no retained page, though its region is in a set
    for (let level = this.#active - 1; level < this.#regions.length; level++) {
      if (this.#retained[level].countIn(0, 0) > 0) roots++;
    }
    return this.#retainedCount() - roots;
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
      iova: a,
      end: e,
      vaddr,
      largest,
      backingPageSize,
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

  /**
   * Table pages allocated after splitting `removed` into `added` (a cut) or, with
   * `removed` empty, after mapping `added` (nothing changes). A retained page an added
   * area touches is reused or freed, so it is not counted again.
   */
  tablePagesAfter(removed: AreaFootprint[], added: AreaFootprint[]): number {
    if (removed.length === 0 && added.length === 1) return this.#tablePagesAfterAdding(added[0]);
    let pages = this.#fullDepthPages() + this.#topAdjust(added);
    for (const fp of added) pages -= this.#retainedTouched(fp);
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
    let pages = this.#fullDepthPages() + this.#topAdjust([fp]) + fp.exclusiveTables -
      this.#retainedTouched(fp);
    for (const k of fp.sharedTables) {
      if (!this.#shared.has(k)) pages++;
    }
    return pages;
  }

  /**
   * Accounts a mapped area. Retained table pages in the regions it touches are
   * reused when it needs them and freed when its larger entries cover them
   * (intel/iommu.c `switch_to_super_page`, generic_pt/iommu_pt.h `do_map`).
   */
  add(fp: AreaFootprint): void {
    this.#apply(fp, 1);
    for (let level = 0; level < this.#regions.length; level++) {
      const region = this.#regions[level];
      this.#retained[level].remove(Math.floor(fp.iova / region), Math.floor((fp.end - 1) / region));
    }
    // amd/io_pgtable.c alloc_pte -> increase_address_space (generic_pt iommu_pt.h
    // check_map_range -> increase_top): roots are added until the root spans the area.
    const active = this.#levelsFor(fp.end);
    this.#pinOldRoots(this.#active, active);
    this.#active = active;
  }

  /**
   * Drops a live area that a cut replaces by its parts (which the caller then
   * {@link add}s): nothing is freed or retained, the parts need every table it needed.
   */
  releaseForSplit(old: AreaFootprint): void {
    this.#apply(old, -1);
  }

  /**
   * Releases a mapped area unmapped by `calls` (default: one call). A table page the
   * area needed that no live area needs any more is freed when one call covers its
   * whole span (intel/iommu.c `dma_pte_clear_level`, generic_pt/iommu_pt.h
   * `__unmap_range`), and retained otherwise.
   */
  remove(fp: AreaFootprint, calls?: UnmapCalls): void {
    this.#apply(fp, -1);
    const a = fp.iova;
    const e = fp.end;
    const first = calls?.first ?? e - a;
    const period = calls?.period ?? Infinity;
    const frees = this.rules.unmapFreesTables;
    for (let level = 0; level < this.#regions.length; level++) {
      const region = this.#regions[level];
      const set = this.#retained[level];
      const lo = Math.floor(a / region);
      const hi = Math.floor((e - 1) / region);
      const whole = fp.largest < region;
      // The end regions (lo, then hi unless it is lo): shared keys, retained when no area
      // needs them any more. A counted loop: this runs on every simulated unmap.
      for (let r = lo; r <= hi; r = r < hi ? hi : hi + 1) {
        const partial = r * region < a || (r + 1) * region > e;
        if (!whole && !partial) continue; // under a large entry: no table there
        if (this.#shared.has(tableKey(r, level))) continue; // a neighbour needs it
        // Freed when one call covers its span, where unmap frees tables at all.
        if (!partial && frees && !hasCallBoundary(r * region, region, a, first, period)) continue;
        set.add(r, r);
      }
      if (!whole || hi - lo < 2) continue;
      // The regions strictly inside: this area's own.
      if (!frees || period < region || (period === region && (a + first) % region !== 0)) {
        // No unmap frees a table (AMD v1 on 6.18), or every span holds a boundary between
        // calls: a call is shorter than the span, or as long and not aligned to it.
        set.add(lo + 1, hi - 1);
        continue;
      }
      if (period % region === 0 && (a + first) % region === 0) continue; // all aligned
      // At most one boundary per span: retain the spans a boundary cuts.
      for (let b = a + first; b < e; b += period) {
        const r = Math.floor(b / region);
        if (b % region !== 0 && r > lo && r < hi) set.add(r, r);
      }
    }
  }

  /** Table pages of the full-depth layout: the root, those live areas need, retained ones. */
  #fullDepthPages(): number {
    return 1 + this.#exclusive + this.#shared.size + this.#retainedCount();
  }

  /** Region indices in the retained sets, the root's own region included. */
  #retainedCount(): number {
    let n = 0;
    for (const r of this.#retained) n += r.count;
    return n;
  }

  /**
   * What a table of fewer levels than {@link levels} (AMD v1) has in pages beyond the
   * full-depth count once `added` is mapped (0 on VT-d). At the root's level and above
   * the full-depth layout has only the first region's table, which is the root (counted
   * apart): one page less each. A root the table grows past stays below the new one as
   * that region's table: one page more where no area needs it.
   */
  #topAdjust(added: AreaFootprint[]): number {
    let end = 0;
    for (const fp of added) if (fp.end > end) end = fp.end;
    const active = this.#levelsFor(end);
    let adjust = 0;
    for (let level = this.#active - 1; level < this.#regions.length; level++) {
      const present = this.#firstTablePresent(level, added);
      if (level < active - 1) {
        if (!present) adjust++; // an old root below a new one
      } else if (present) adjust--; // the root's own region, or above it
    }
    return adjust;
  }

  /**
   * Whether the full-depth layout holds the first region's table at `level` (512 GiB
   * regions and up, where every area needs the table of each region it touches) with
   * `added` mapped.
   */
  #firstTablePresent(level: number, added: AreaFootprint[]): boolean {
    if (this.#shared.has(tableKey(0, level)) || this.#retained[level].countIn(0, 0) > 0) {
      return true;
    }
    for (const fp of added) if (fp.iova < this.#regions[level]) return true;
    return false;
  }

  /** Levels the table needs to reach `end`: at least those it has, at most {@link levels}. */
  #levelsFor(end: number): number {
    let active = this.#active;
    while (active < this.levels && end > 2 ** (12 + 9 * active)) active++;
    return active;
  }

  /**
   * The roots of tables of `from` up to `to` levels stay as the first region's table of
   * their level (amd/io_pgtable.c `increase_address_space`: the new root's entry 0
   * points at the old; generic_pt `increase_top`: "The new table links to the lower
   * table always at index 0"): retained where no area needs them.
   */
  #pinOldRoots(from: number, to: number): void {
    for (let level = from - 1; level < to - 1; level++) {
      if (!this.#firstTablePresent(level, [])) this.#retained[level].add(0, 0);
    }
  }

  /** Levels a new table starts with. */
  get #startingLevels(): number {
    return this.rules.startingLevels ?? this.levels;
  }

  /** Retained table pages in the regions an area touches. */
  #retainedTouched(fp: AreaFootprint): number {
    let n = 0;
    for (let level = 0; level < this.#regions.length; level++) {
      const region = this.#regions[level];
      n += this.#retained[level].countIn(
        Math.floor(fp.iova / region),
        Math.floor((fp.end - 1) / region),
      );
    }
    return n;
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

/** Checks the `backingPageSize` option: 4 KiB, 2 MiB or 1 GiB (default 4 KiB). */
export function checkBackingPageSize(size: number | undefined): number {
  const v = size ?? IO_PAGE_4K;
  if (v !== IO_PAGE_4K && v !== IO_PAGE_2M && v !== IO_PAGE_1G) {
    throw new RangeError(`backingPageSize: must be 4096, 2 MiB or 1 GiB, got ${v}`);
  }
  return v;
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

/**
 * Whether a boundary between two unmap calls lies strictly inside the span
 * `[start, start + span)`: calls of an area at `a` end at `a + first`, then every
 * `period` bytes.
 */
function hasCallBoundary(
  start: number,
  span: number,
  a: number,
  first: number,
  period: number,
): boolean {
  const b0 = a + first;
  const next = start < b0 ? b0 : b0 + (Math.floor((start - b0) / period) + 1) * period;
  return next > start && next < start + span;
}

/** The reference-count key of the table page covering region `index` at `level`. */
function tableKey(index: number, level: number): number {
  return index * 8 + level;
}
