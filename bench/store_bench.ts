// Store benchmarks: the bitmap is the baseline of each group. Run: deno task bench
import { BitmapStore, RangeTreeStore, type StateStore } from "../mod.ts";
import { Prng } from "../src/util/prng.ts";

const PAGES_16G = (16 * 2 ** 30) / 4096;
const SHARED = 1;
const kinds: [string, (n: number) => StateStore, boolean][] = [
  ["bitmap", (n) => new BitmapStore(n, { bits: 2 }), true],
  ["range-tree", (n) => new RangeTreeStore(n, { bits: 2 }), false],
];

for (const [name, make, baseline] of kinds) {
  const store = make(PAGES_16G);
  const rng = new Prng(1);
  Deno.bench({
    name: `${name}: random 4 KiB toggle over 16 GiB`,
    group: "toggle-4k",
    baseline,
    fn() {
      const page = rng.int(PAGES_16G);
      if (rng.chance(0.5)) store.update(page, page + 1, SHARED, 0);
      else store.update(page, page + 1, 0, SHARED);
    },
  });
}

for (const [name, make, baseline] of kinds) {
  const store = make(PAGES_16G);
  const rng = new Prng(2);
  const chunks = PAGES_16G / 512;
  Deno.bench({
    name: `${name}: 2 MiB-aligned range set over 16 GiB`,
    group: "set-2m",
    baseline,
    fn() {
      const start = rng.int(chunks) * 512;
      store.set(start, start + 512, rng.int(4));
    },
  });
}

for (const [name, make, baseline] of kinds) {
  const pages = 2 ** 20;
  const store = make(pages);
  // 500 shared stretches starting at page 0: exactly 1,000 runs.
  for (let i = 0; i < 500; i++) store.set(i * 1000, i * 1000 + 300, SHARED);
  Deno.bench({
    name: `${name}: runs() over a region of 1,000 runs`,
    group: "runs-1000",
    baseline,
    fn() {
      let n = 0;
      for (const _ of store.runs()) n++;
      if (n !== 1000) throw new Error(`expected 1000 runs, got ${n}`);
    },
  });
}
