/**
 * End-to-end benchmarks: one conversion through `Region.change` with the KVM
 * attributes (separate backing), VFIO type1 and iommufd (cut_mapping)
 * simulators attached, and one iommufd attach (a replay) on a 1 TiB region.
 * The bitmap-backed region is the baseline of every group. The hosts and
 * conversion plans are the ones of `e2e_workloads.ts`.
 *
 * Run: `deno bench -A bench/e2e_bench.ts` (or `deno task bench`).
 *
 * @module
 */

import {
  applyConversion,
  attachIommufd,
  buildHost,
  type ConversionPlan,
  randomPlan,
  registerHost,
  type StoreKind,
} from "./e2e_workloads.ts";

const STORES: [StoreKind, boolean][] = [["bitmap", true], ["range-tree", false]];

/**
 * A group of one-conversion benchmarks over a 16 GiB host, `pagesEach` pages
 * per conversion. One pass over the `planned` conversions is applied untimed;
 * then the benchmark replays the plan, every other pass in reverse (to shared
 * where the plan says private and back), so replayed conversions still
 * convert rather than find their pages already there, and the state stays the
 * size one pass leaves whatever number of iterations `deno bench` runs.
 */
function conversionGroup(
  group: string,
  what: string,
  pagesEach: number,
  planned: number,
  seed: number,
): void {
  for (const [store, baseline] of STORES) {
    const { region } = buildHost(store);
    const plan: ConversionPlan = randomPlan(region.pages, pagesEach, planned, seed);
    for (let i = 0; i < planned; i++) applyConversion(region, plan, i);
    let next = 0, reverse = true;
    Deno.bench({
      name: `${store}: ${what}`,
      group,
      baseline,
      fn() {
        applyConversion(region, plan, next, reverse);
        if (++next === planned) {
          next = 0;
          reverse = !reverse;
        }
      },
    });
  }
}

// 100,000 random pages: about 50,000 shared extents after the first pass.
conversionGroup(
  "e2e-dma-scatter",
  "random 4 KiB conversion over 16 GiB, kvm + type1 + iommufd",
  1,
  100_000,
  1,
);
// 2,000 random 2 MiB ranges of the 8,192.
conversionGroup(
  "e2e-2m-aligned",
  "random 2 MiB-aligned conversion over 16 GiB, kvm + type1 + iommufd",
  512,
  2_000,
  2,
);

for (const [store, baseline] of STORES) {
  const host = registerHost(store);
  Deno.bench({
    name: `${store}: attach iommufd to 1 TiB with ~4,000 extents (replay)`,
    group: "register",
    baseline,
    fn(b) {
      b.start();
      const plugin = attachIommufd(host);
      b.end();
      plugin.detach(host.region);
    },
  });
}
