// Listeners registered on a section of a region, under every VMM policy: a
// change that ends where the section starts, or starts where it ends, is not
// theirs, and one that overlaps it is clipped to it.
import assert from "node:assert/strict";
import { DMA_VIEW, Region } from "../src/bus/mod.ts";
import type { VmmPolicy } from "../src/settings/vmm.ts";
import { type Call, RecordingListener } from "./helpers/recording_listener.ts";

const PAGE = 4096;

for (const vmm of ["memstate", "qemu-10.1", "qemu-11.1"] as VmmPolicy[]) {
  Deno.test(`sections (${vmm}): changes touching a section's edges are not told; overlaps are clipped`, () => {
    const region = new Region({ name: "ram", size: 64 * PAGE, vmm });
    const log: Call[] = [];
    const listener = new RecordingListener("dma", 10, DMA_VIEW, region.pages, log);
    region.register(listener, { offset: 16 * PAGE, size: 16 * PAGE }); // pages [16, 32)
    region.convert(8 * PAGE, 16 * PAGE, "shared"); // [8, 24): the section's part is [16, 24)
    region.convert(30 * PAGE, 4 * PAGE, "shared"); // [30, 34): [30, 32)
    const told = log.length;
    // Mixed ranges (QEMU: one round per changing page) that end where the
    // section starts and start where it ends: nothing of the section changes.
    region.convert(0, 16 * PAGE, "private");
    region.convert(32 * PAGE, 8 * PAGE, "private");
    assert.equal(log.length, told, JSON.stringify(log.slice(told)));
    assert.deepEqual(log.map((c) => [c.kind, c.offset / PAGE, c.size / PAGE]), [
      ["populate", 16, 8],
      ["populate", 30, 2],
    ]);
    assert.deepEqual(listener.contractViolations, []);
  });
}
