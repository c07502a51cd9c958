/**
 * A custom plugin written only against memstate's public API: a "DMA
 * firewall" that follows the DMA view (shared and plugged) and refuses to let
 * a device reach a protected range, which rolls the whole conversion back,
 * KVM included. With {@link definePlugin} the plugin is its own logic only:
 * registration per region, replay, attach / detach and the standard stats
 * (calls, refusals, the extents a device may reach) come with the helper.
 *
 * Runs two ways:
 *
 * - on its own, a small demonstration:
 *   `npx -y deno@2 run examples/custom_listener.ts`
 * - as a plugin module of a host run (its default export is the factory):
 *   `npx -y deno@2 task memstate run examples/tdx-16g.json --plugin examples/custom_listener.ts`,
 *   or from a configuration with options, as `examples/custom-plugin.json` does:
 *   `npx -y deno@2 task memstate run examples/custom-plugin.json`
 *
 * @module
 */

import {
  ConversionError,
  definePlugin,
  DMA_VIEW,
  kvmAttributes,
  type Plugin,
  Region,
  type Section,
} from "../mod.ts";
import { parseSize, type PluginModuleContext } from "../host.ts";
import { SimKvm } from "../sim.ts";

/** Options of the firewall plugin (as a configuration's `"options"` gives them). */
export interface FirewallOptions {
  /** Plugin name (default `"firewall"`). */
  name?: string;
  /** Guest physical ranges no device may reach; numbers or size strings (`"0x7c000000"`). */
  protect?: { gpa: number | string; size: number | string }[];
}

/**
 * The plugin module's factory: `options` from the configuration, `context`
 * from the host. Options come from a user's JSON, so each is checked and a
 * wrong one named in one line (the host prints it after the module's name).
 */
export default function dmaFirewall(
  options: FirewallOptions = {},
  context?: PluginModuleContext,
): Plugin {
  const { name = "firewall", protect: ranges = [] } = options;
  if (typeof name !== "string" || name === "") {
    throw new TypeError(`name: must be a non-empty string, got ${JSON.stringify(name)}`);
  }
  if (!Array.isArray(ranges)) {
    throw new TypeError(`protect: must be a list of { gpa, size }, got ${JSON.stringify(ranges)}`);
  }
  const protect = ranges.map((p, i) => {
    if (typeof p !== "object" || p === null || Array.isArray(p)) {
      throw new TypeError(`protect[${i}]: must be { gpa, size }, got ${JSON.stringify(p)}`);
    }
    return {
      gpa: parseSize(p.gpa, `protect[${i}].gpa`),
      size: parseSize(p.size, `protect[${i}].size`),
    };
  });
  const hits = (s: Section) => {
    const start = s.region.base + s.offset, end = start + s.size;
    return protect.find((p) => p.gpa < end && start < p.gpa + p.size);
  };
  void context; // the host's regions, policy and kernel, if a plugin needs them
  return definePlugin({
    name,
    kind: "dma-firewall",
    priority: 20, // after KVM (0) and the IOMMUs (10) on populate, before them on discard
    view: DMA_VIEW,
    populate(s) {
      const p = hits(s);
      // Nothing done yet for this call, so nothing to undo before refusing.
      if (p) throw new Error(`protected memory at 0x${p.gpa.toString(16)}`);
    },
    discard() {},
  });
}

if (import.meta.main) {
  const MiB = 2 ** 20;
  const region = new Region({ name: "ram", size: 256 * MiB, base: 0x1_0000_0000 });
  const vm = new SimKvm();
  kvmAttributes({ vm }).attach(region);
  const firewall = dmaFirewall({ protect: [{ gpa: 0x1_0000_0000 + 64 * MiB, size: 4096 }] });
  firewall.attach(region);

  region.convert(0, 16 * MiB, "shared");
  console.log(`shared 16 MiB: devices may reach ${firewall.stats().mappedBytes / MiB} MiB`);

  try {
    region.convert(60 * MiB, 8 * MiB, "shared"); // covers the protected page
  } catch (e) {
    if (!(e instanceof ConversionError)) throw e;
    console.log(`refused and rolled back: ${e.message}`);
    const attr = vm.getMemoryAttributes(0x1_0000_0000 + 60 * MiB);
    console.log(`KVM still says private there: attributes = ${attr} (8 = PRIVATE)`);
  }
  console.log(firewall.stats());
}
