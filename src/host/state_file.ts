/**
 * A host's saved state (`memstate run --save-state FILE` / `--load-state
 * FILE`): one binary region snapshot per region, in configuration order,
 * written back to back (each carries its own length and checksum; see
 * `src/bus/snapshot_format.ts`).
 *
 * Loading happens after the host is built and before any event runs: every
 * snapshot is decoded and checked against its region first (names, shapes,
 * bits), so a bad file changes nothing; then each region is brought to its
 * saved state through the bus, so KVM attributes, DMA mappings and backing
 * follow as for any change. The `PLUGGED` bit inside a virtio-mem device goes
 * through the device's own PLUG / UNPLUG requests, so its plugged size is
 * right afterwards. What a region snapshot does not hold (DMA devices'
 * attachment, plugin counters, virtio-mem's requested size) comes from the
 * configuration, as on any start.
 *
 * @module
 */

import type { Region } from "../bus/region.ts";
import { prepareApply } from "../bus/snapshot.ts";
import { decodeSnapshots, SnapshotError } from "../bus/snapshot_format.ts";
import { PLUGGED } from "../bus/state_bits.ts";
import type { VirtioMemDevice } from "../plugins/virtio_mem.ts";
import type { Host } from "./build.ts";

/**
 * The saved state of every region of `host`, back to back in configuration order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildHost, loadHostState, parseHostConfig, saveHostState } from "@cvm/memstate/host";
 * const config = parseHostConfig({
 *   name: "h",
 *   regions: [{ name: "ram", size: "1GiB" }],
 *   workload: { name: "boot" },
 * }, "h.json");
 * using a = buildHost(config);
 * a.regions[0].convert(0, 2 ** 21, "shared");
 * using b = buildHost(config);
 * loadHostState(b, saveHostState(a));
 * assert.deepEqual([...b.regions[0].store.runs()], [...a.regions[0].store.runs()]);
 * ```
 */
export function saveHostState(host: Host): Uint8Array {
  const parts = host.regions.map((r) => r.snapshot());
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** What {@link loadHostState} changed. */
export interface LoadedState {
  /** Per region: changes made and pages changed to reach the saved state. */
  regions: { name: string; changes: number; pages: number }[];
}

/**
 * Brings every region of `host` to the state saved in `bytes`; see the module
 * documentation. A file that does not match the host throws a
 * {@link SnapshotError} (code `region` for missing or extra regions, or the
 * region snapshot's own code) before anything changes.
 */
export function loadHostState(host: Host, bytes: Uint8Array): LoadedState {
  const snapshots = decodeSnapshots(bytes);
  const byName = new Map(snapshots.map((s) => [s.name, s]));
  if (byName.size !== snapshots.length) {
    throw new SnapshotError("region", `the file saves a region name twice`);
  }
  const known = new Set(host.regions.map((r) => r.name));
  const extra = snapshots.filter((s) => !known.has(s.name)).map((s) => s.name);
  const missing = host.regions.filter((r) => !byName.has(r.name)).map((r) => r.name);
  if (extra.length > 0 || missing.length > 0) {
    throw new SnapshotError(
      "region",
      `the file does not match the host's regions` +
        (missing.length ? `; not saved: ${missing.join(", ")}` : "") +
        (extra.length ? `; not in the configuration: ${extra.join(", ")}` : ""),
    );
  }
  const devices = [...host.virtioMem.values()];
  const apply = host.regions.map((region) =>
    prepareApply(region, byName.get(region.name)!, { change: routed(region, devices) })
  );
  return {
    regions: apply.map((run, i) => ({ name: host.regions[i].name, ...run() })),
  };
}

/** A change function that sends `PLUGGED` inside a virtio-mem device to the device. */
function routed(region: Region, all: VirtioMemDevice[]) {
  const page = region.pageSize;
  const devices = all.filter((d) => d.addr >= region.base && d.addr < region.base + region.size);
  return (start: number, end: number, setBits: number, clearBits: number): void => {
    if ((setBits | clearBits) !== PLUGGED || devices.length === 0) {
      region.change(start * page, (end - start) * page, setBits, clearBits);
      return;
    }
    let at = start * page;
    const stop = end * page;
    while (at < stop) {
      const gpa = region.base + at;
      const device = devices.find((d) => gpa >= d.addr && gpa < d.addr + d.regionSize);
      const next = device
        ? Math.min(stop, device.addr + device.regionSize - region.base)
        : Math.min(stop, ...devices.map((d) => d.addr - region.base).filter((o) => o > at));
      if (!device) {
        region.change(at, next - at, setBits, clearBits);
      } else {
        const blocks = (next - at) / device.blockSize;
        const answer = setBits ? device.plug(gpa, blocks) : device.unplug(gpa, blocks);
        if (answer !== "ACK") {
          throw new Error(
            `loading state: virtio-mem ${device.name} answered ${answer} to ` +
              `${setBits ? "PLUG" : "UNPLUG"} of 0x${gpa.toString(16)} + ${blocks} blocks`,
          );
        }
      }
      at = next;
    }
  };
}
