// The measurements behind the structure choices the code states its reasons
// for (`deno bench bench/structures_bench.ts`):
//
// - chunk maps in RangeTreeStore (src/store/range_tree_store.ts, "Why maps
//   and not only a tree"): scattered 4 KiB conversions on the bitmap, on the
//   store as it is, and on the store with chunk maps turned off (`mapAt` at
//   its maximum, so every span stays a run container);
// - two ordered maps (src/util/sorted_map.ts, "Two ordered maps"): npm
//   `sorted-btree` under the store, the hand-written SortedMap under the
//   simulated kernels, each on the other's access pattern;
// - the floor of a run container's edit (src/store/_run_containers.ts, and
//   "What the misses mean" in docs/performance_history.md): a 4 KiB buffer shared and freed
//   in the `boot` 64 GiB state, on the bitmap and on the store, against the
//   two steps every container edit takes, the binary search of a span's
//   pairs and the shift of half of them;
// - the alignment test of the hot paths (src/util/_bits.ts
//   `isMultipleOfPowerOfTwo`): `%` against a division and `Number.isInteger`, on guest
//   addresses beyond 32 bits.
//
// Every iteration does the same fixed work, so the numbers compare per call.
import m from "sorted-btree";
import { BitmapStore } from "../src/store/bitmap_store.ts";
import { RangeTreeStore } from "../src/store/range_tree_store.ts";
import { RunContainers } from "../src/store/_run_containers.ts";
import { isMultipleOfPowerOfTwo } from "../src/util/_bits.ts";
import { boot, pagesOf } from "./workloads.ts";
import { Prng } from "../src/util/prng.ts";
import { SortedMap } from "../src/util/sorted_map.ts";

const BTree = m.default;

// ---- chunk maps: 1,000,000 random 4 KiB toggles over 16 GiB (`dma-scatter`) ----------------

const PAGES = 2 ** 22; // 16 GiB of 4 KiB pages
const TOGGLES = 1_000_000;
const pages = new Float64Array(TOGGLES);
{
  const rng = new Prng(1);
  for (let i = 0; i < TOGGLES; i++) pages[i] = rng.int(PAGES);
}
const scatterStores: [string, () => BitmapStore | RangeTreeStore, boolean][] = [
  ["bitmap", () => new BitmapStore(PAGES, { bits: 1 }), true],
  ["range tree", () => new RangeTreeStore(PAGES, { bits: 1 }), false],
  [
    "range tree without chunk maps",
    () => new RangeTreeStore(PAGES, { bits: 1, mapAt: 2 ** 20 }),
    false,
  ],
];
for (const [name, make, baseline] of scatterStores) {
  // One store per subject, toggled for as long as the bench runs: it fragments
  // the way dma-scatter does, towards a page-by-page mixture.
  const store = make();
  let i = 0;
  Deno.bench({
    name: `${name}: toggle 1,000 random 4 KiB pages of 16 GiB`,
    group: "chunk maps: scattered 4 KiB conversions",
    baseline,
    fn() {
      for (let n = 0; n < 1000; n++) {
        const page = pages[i];
        store.set(page, page + 1, store.get(page) ^ 1);
        if (++i === TOGGLES) i = 0;
      }
    },
  });
}

// ---- ordered maps -------------------------------------------------------------------------

/** The two maps behind one interface: set, delete, and the nearest key at or below. */
interface OrderedMap {
  set(key: number, value: number): void;
  delete(key: number): void;
  atOrBelow(key: number): number | undefined;
}

function sortedMap(): OrderedMap {
  const map = new SortedMap<number>();
  return {
    set: (k, v) => map.set(k, v),
    delete: (k) => void map.delete(k),
    atOrBelow: (k) => map.atOrBelow(k),
  };
}

function sortedBtree(): OrderedMap {
  // Node size 64, as the store's index uses it.
  const tree = new BTree<number, number>(undefined, (a: number, b: number) => a - b, 64);
  return {
    set: (k, v) => void tree.set(k, v),
    delete: (k) => void tree.delete(k),
    atOrBelow: (k) => tree.nextLowerPair(k + 1)?.[1],
  };
}

const MAPS: [string, () => OrderedMap, boolean][] = [
  ["SortedMap", sortedMap, true],
  ["sorted-btree", sortedBtree, false],
];

// The simulators' pattern: type1 maps 256 MiB 4 KiB at a time (65,535 entries,
// its default dma_entry_limit), in order, then unmaps it.
const IN_ORDER = 65_535;
for (const [name, make, baseline] of MAPS) {
  Deno.bench({
    name: `${name}: insert 65,535 keys in order, then delete them`,
    group: "ordered maps: a type1 container filled 4 KiB at a time",
    baseline,
    fn() {
      const map = make();
      for (let i = 0; i < IN_ORDER; i++) map.set(i * 4096, i);
      for (let i = 0; i < IN_ORDER; i++) map.delete(i * 4096);
    },
  });
}

// The store's pattern at its largest: a million run boundaries (dma-scatter
// without chunk maps ends near 900,000), edited at random.
const LARGE = 1_000_000;
const randomKeys = new Float64Array(10_000);
{
  const rng = new Prng(2);
  for (let i = 0; i < randomKeys.length; i++) randomKeys[i] = 2 * rng.int(LARGE) + 1;
}
for (const [name, make, baseline] of MAPS) {
  const map = make();
  for (let i = 0; i < LARGE; i++) map.set(2 * i, i); // even keys; the edits use odd ones
  Deno.bench({
    name: `${name}: 10,000 random inserts, lookups and deletes among 1,000,000 keys`,
    group: "ordered maps: a store of a million runs edited at random",
    baseline,
    fn() {
      for (const key of randomKeys) {
        map.set(key, 0);
        map.atOrBelow(key + 1);
        map.delete(key);
      }
    },
  });
}

// ---- run containers: 1,000 4 KiB buffers shared and freed in the boot 64 GiB state ---------

const BOOT_64 = boot(pagesOf(2 ** 36));
const BUFFERS = 1000;
const bufferPages = new Float64Array(BUFFERS);
{
  const rng = new Prng(3);
  for (let i = 0; i < BUFFERS; i++) bufferPages[i] = rng.int(BOOT_64.pages);
}
const bootStores: [string, BitmapStore | RangeTreeStore, boolean][] = [
  ["bitmap", new BitmapStore(BOOT_64.pages, { bits: 1 }), true],
  ["range tree", new RangeTreeStore(BOOT_64.pages, { bits: 1 }), false],
];
for (const [name, store, baseline] of bootStores) {
  const c = BOOT_64.conversions;
  for (let i = 0; i < c.length; i++) store.update(c.starts[i], c.ends[i], 1, 0);
  Deno.bench({
    name: `${name}: 1,000 buffers of 4 KiB shared, then freed`,
    group: "run containers: the floor of an edit at boot 64 GiB",
    baseline,
    fn() {
      for (let n = 0; n < BUFFERS; n++) {
        const page = bufferPages[n];
        const state = store.get(page);
        store.set(page, page + 1, state ^ 1);
        store.set(page, page + 1, state);
      }
    },
  });
}
// The two steps alone, on one container of 94 pairs (a boot 64 GiB span's
// average): 2,000 searches, and 2,000 shifts of 47 pairs (94 words) there and back.
const floor = new RunContainers();
const PAIRS = 94;
const offsets: number[] = [], states: number[] = [];
{
  const rng = new Prng(4);
  const picked = new Set<number>([0]);
  while (picked.size < PAIRS) picked.add(1 + rng.int(2 ** 18 - 1));
  for (const off of [...picked].sort((a, b) => a - b)) {
    offsets.push(off);
    states.push(states.length & 1);
  }
}
const id = floor.create(offsets, states);
/** Keeps each bench's result observable. */
export let floorSink = 0;
Deno.bench({
  name: "2,000 binary searches of 94 pairs",
  group: "run containers: the floor of an edit at boot 64 GiB",
  fn() {
    let sum = 0;
    for (let n = 0; n < 2 * BUFFERS; n++) sum += floor.find(id, bufferPages[n >> 1] & 0x3ffff);
    floorSink = sum;
  },
});
Deno.bench({
  name: "2,000 shifts of 47 pairs (copyWithin of 94 words)",
  group: "run containers: the floor of an edit at boot 64 GiB",
  fn() {
    const heap = floor.heap;
    const at = 2 * floor.base[id];
    for (let n = 0; n < BUFFERS; n++) {
      heap.copyWithin(at + 96, at + 94, at + 188);
      heap.copyWithin(at + 94, at + 96, at + 190);
    }
  },
});

// ---- alignment: 100,000 guest addresses of a 1 TiB guest, one in 97 misaligned -------------

const ADDRESSES = new Float64Array(100_000);
for (let i = 0; i < ADDRESSES.length; i++) {
  ADDRESSES[i] = 2 ** 32 + ((i * 7919) % 2 ** 28) * 4096 + (i % 97 === 0 ? 512 : 0);
}
/** Keeps each bench's count observable. */
export let alignedCount = 0;
Deno.bench({
  name: "value % 4096 === 0",
  group: "alignment: 100,000 addresses above 4 GiB",
  baseline: true,
  fn() {
    let n = 0;
    for (let i = 0; i < ADDRESSES.length; i++) if (ADDRESSES[i] % 4096 === 0) n++;
    alignedCount = n;
  },
});
Deno.bench({
  name: "isMultipleOfPowerOfTwo(value, 4096)",
  group: "alignment: 100,000 addresses above 4 GiB",
  fn() {
    let n = 0;
    for (let i = 0; i < ADDRESSES.length; i++) if (isMultipleOfPowerOfTwo(ADDRESSES[i], 4096)) n++;
    alignedCount = n;
  },
});
