/**
 * A small store demonstration (`deno task demo`): a 16 GiB guest's state kept
 * by both stores, side by side.
 *
 * @module
 */
import { BitmapStore, RangeTreeStore, type StateStore } from "../mod.ts";

const PAGE = 4096;
const pages = (16 * 2 ** 30) / PAGE;
const SHARED = 1;

for (const store of [new RangeTreeStore(pages, { bits: 2 }), new BitmapStore(pages, { bits: 2 })]) {
  const s: StateStore = store;
  s.update(0, 512, SHARED, 0); // firmware: first 2 MiB shared
  s.update(2 ** 18, 2 ** 18 + 16384, SHARED, 0); // 64 MiB SWIOTLB pool at 1 GiB
  for (let i = 0; i < 100; i++) s.update(2 ** 20 + i * 8, 2 ** 20 + i * 8 + 1, SHARED, 0);
  console.log(
    `${store.constructor.name.padEnd(15)} runs ${String(s.runCount).padStart(4)}  bytes ${
      String(s.byteSize()).padStart(9)
    }`,
  );
}
