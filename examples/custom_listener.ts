/**
 * A custom listener plugin written only against memstate's public API: a
 * "DMA firewall" that follows the DMA view (shared and plugged), keeps its
 * own map of what a device may reach, and refuses to expose a protected
 * range — which rolls the whole conversion back, KVM included.
 *
 * Run: deno run examples/custom_listener.ts
 *
 * @module
 */

import {
  ConversionError,
  DMA_VIEW,
  kvmAttributes,
  type Listener,
  type Plugin,
  PluginCounters,
  type PluginStats,
  type Range,
  Region,
  type Section,
} from "../mod.ts";
import { SimKvm } from "../sim.ts";

/** Options of the firewall plugin. */
interface FirewallOptions {
  name: string;
  /** Guest physical ranges a device must never reach. */
  protectedRanges: { gpa: number; size: number }[];
}

/** A Plugin: attach it to regions, read its stats. */
function dmaFirewall(options: FirewallOptions): Plugin & { reachable(): number } {
  const counters = new PluginCounters();
  const listeners = new Map<Region, Listener>();
  let reachableBytes = 0;
  const overlapsProtected = (s: Section) => {
    const start = s.region.base + s.offset, end = start + s.size;
    return options.protectedRanges.some((p) => p.gpa < end && start < p.gpa + p.size);
  };
  return {
    name: options.name,
    kind: "dma-firewall",
    attach(region: Region, range?: Range) {
      const listener: Listener = {
        name: options.name,
        priority: 20, // after KVM (0) and the IOMMUs (10) on populate, before them on discard
        view: DMA_VIEW,
        populate(s) {
          counters.calls.populate = (counters.calls.populate ?? 0) + 1;
          if (overlapsProtected(s)) {
            counters.failures++;
            // Nothing done yet for this call, so nothing to undo before refusing.
            throw new Error(`protected memory at 0x${(s.region.base + s.offset).toString(16)}`);
          }
          reachableBytes += s.size;
          counters.mapped(1, s.size);
        },
        discard(s) {
          counters.calls.discard = (counters.calls.discard ?? 0) + 1;
          reachableBytes -= s.size;
          counters.mapped(-1, -s.size);
        },
      };
      region.register(listener, range); // replays what is already shared
      listeners.set(region, listener);
    },
    detach(region: Region) {
      region.unregister(listeners.get(region)!);
      listeners.delete(region);
    },
    stats(): PluginStats {
      return counters.snapshot(options.name, "dma-firewall");
    },
    reachable: () => reachableBytes,
  };
}

const MiB = 2 ** 20;
const region = new Region({ name: "ram", size: 256 * MiB, base: 0x1_0000_0000 });
const vm = new SimKvm();
kvmAttributes({ vm }).attach(region);
const firewall = dmaFirewall({
  name: "firewall",
  protectedRanges: [{ gpa: 0x1_0000_0000 + 64 * MiB, size: 4096 }],
});
firewall.attach(region);

region.convert(0, 16 * MiB, "shared");
console.log(`shared 16 MiB: the firewall lets devices reach ${firewall.reachable() / MiB} MiB`);

try {
  region.convert(60 * MiB, 8 * MiB, "shared"); // covers the protected page
} catch (e) {
  if (!(e instanceof ConversionError)) throw e;
  console.log(`refused and rolled back: ${e.message}`);
  const attr = vm.getMemoryAttributes(0x1_0000_0000 + 60 * MiB);
  console.log(`KVM still says private there: attributes = ${attr} (8 = PRIVATE)`);
}
console.log(firewall.stats());
