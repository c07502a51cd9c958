/**
 * `dma-scatter`: the adversarial case. `count` single-page conversions at
 * uniformly random places anywhere in guest memory, each to shared or to
 * private with equal odds. Nothing lines up, so the number of extents grows
 * with the number of conversions: the workload that shows what fragmentation
 * costs a store (and why QEMU maps each shared 4 KiB page on its own).
 *
 * @module
 */

import type { ConvertEvent } from "../trace/event.ts";
import { convert, needRegions, numbered, PagePicker, type Unnumbered } from "./layout.ts";
import type { HostEvent, Workload, WorkloadContext } from "./workload.ts";

/** The `dma-scatter` workload. */
export const dmaScatter: Workload = {
  name: "dma-scatter",
  description:
    "random single-page conversions anywhere, random direction (worst-case fragmentation)",
  params: {
    count: {
      default: 100_000,
      description: "single-page conversions, each to shared or to private at random",
    },
  },
  estimate(ctx: WorkloadContext): number {
    needRegions("dma-scatter", ctx.regions);
    return ctx.params.count;
  },
  generate(ctx: WorkloadContext): Iterable<HostEvent> {
    needRegions("dma-scatter", ctx.regions);
    return numbered(scatter(ctx));
  },
};

function* scatter(ctx: WorkloadContext): Generator<Unnumbered<ConvertEvent>> {
  const picker = new PagePicker(ctx.regions);
  for (let i = 0; i < ctx.params.count; i++) {
    const page = picker.page(ctx.rng);
    yield convert(page, ctx.rng.chance(0.5) ? "shared" : "private");
  }
}
