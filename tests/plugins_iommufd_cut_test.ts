// iommufd's cut path: a discard inside an area splits it at both of the
// discard's ends before unmapping, a discard that starts where an area ends
// cuts nothing, and the plugin's own count of areas stays the IOAS's.
import assert from "node:assert/strict";
import { Region } from "../src/bus/mod.ts";
import { SimIoas } from "../src/hw/sim/mod.ts";
import { iommufd } from "../src/plugins/mod.ts";

const PAGE = 4096;

function setup() {
  const region = new Region({ name: "ram", size: 2 ** 24 });
  const ioas = new SimIoas({ kernel: "proposed" });
  const gpu = iommufd({ name: "gpu0", ioas, cut: true });
  gpu.attach(region);
  const areas = () => ioas.areas().map((a) => [a.iova / PAGE, a.size / PAGE]);
  const check = () => {
    assert.deepEqual(gpu.verify!(region), []);
    assert.equal(gpu.stats().mappings, ioas.areaCount, "the plugin counts the IOAS's areas");
  };
  return { region, ioas, gpu, areas, check };
}

Deno.test("iommufd cut: a discard inside an area splits it at both ends, then unmaps the middle", () => {
  const { region, areas, check, gpu } = setup();
  region.convert(0, 512 * PAGE, "shared"); // one area
  assert.deepEqual(areas(), [[0, 512]]);
  region.convert(8 * PAGE, 4 * PAGE, "private");
  assert.deepEqual(areas(), [[0, 8], [12, 500]]);
  assert.equal(gpu.stats().calls.cutMapping, 2);
  check();
  region.convert(12 * PAGE, 500 * PAGE, "private"); // a whole area: no cut
  assert.deepEqual(areas(), [[0, 8]]);
  assert.equal(gpu.stats().calls.cutMapping, 2);
  check();
});

Deno.test("iommufd cut: a discard that starts where an area ends, or ends where one starts, cuts nothing", () => {
  const { region, areas, check, gpu } = setup();
  region.convert(0, 4 * PAGE, "shared");
  region.convert(4 * PAGE, 4 * PAGE, "shared"); // a second area right after the first
  region.convert(8 * PAGE, 4 * PAGE, "shared"); // and a third
  assert.deepEqual(areas(), [[0, 4], [4, 4], [8, 4]]);
  region.convert(4 * PAGE, 4 * PAGE, "private"); // exactly the middle area
  assert.deepEqual(areas(), [[0, 4], [8, 4]]);
  assert.equal(gpu.stats().calls.cutMapping ?? 0, 0);
  check();
});

Deno.test("iommufd cut: adjacent runs shared by separate conversions stay separate areas (iopt_alloc_area_pages never merges)", () => {
  const { region, areas, check } = setup();
  for (let i = 0; i < 4; i++) region.convert(i * 8 * PAGE, 8 * PAGE, "shared");
  // One shared extent in the store, four areas in the IOAS: one per IOMMU_IOAS_MAP.
  assert.equal([...region.store.runs()].length, 2);
  assert.deepEqual(areas(), [[0, 8], [8, 8], [16, 8], [24, 8]]);
  check();
  region.convert(64 * PAGE, 32 * PAGE, "shared"); // shared at once: one area
  assert.deepEqual(areas().slice(4), [[64, 32]]);
  check();
});
