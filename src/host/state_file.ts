/**
 * A host's saved state (`memstate run --save-state FILE` / `--load-state
 * FILE`): one binary region snapshot per region, in configuration order,
 * written back to back (each carries its own length and checksum; see
 * `src/bus/snapshot_format.ts`).
 *
 * Loading happens after the host is built and before any event runs, and a
 * file the host cannot take changes nothing:
 *
 * 1. every snapshot is decoded and checked against its region (names, shapes, bits);
 * 2. the `PLUGGED` changes the apply plans (`planApply`) are checked against
 *    what the configured virtio-mem devices would answer, each asked itself
 *    (`VirtioMemDevice.check`, QEMU's PLUG / UNPLUG rules in QEMU's order), in
 *    the order the load makes them: inside a device they must be whole blocks
 *    inside its usable range, leave at most its requested size plugged and
 *    find it not busy; outside every device nothing may be unplugged, since
 *    no device could have unplugged it;
 * 3. the changes are made through the bus, every region's clears before any
 *    region's sets, so KVM attributes, DMA mappings and backing follow as for
 *    any change, and `PLUGGED` inside a device goes through the device's own
 *    PLUG / UNPLUG requests, so its plugged size is right afterwards. A change
 *    the host refuses all the same (a listener at a DMA limit, a plugin) undoes
 *    the changes made before it, last first, and what the store shows it made
 *    itself (a QEMU policy keeps a refused change in the store).
 *
 * What a region snapshot does not hold (DMA devices' attachment, plugin
 * counters, virtio-mem's requested size) comes from the configuration, as on
 * any start.
 *
 * @module
 */

import { ConversionError, InvalidChangeError } from "../bus/errors.ts";
import type { Region } from "../bus/region.ts";
import { type ApplyAction, planApply } from "../bus/snapshot.ts";
import { decodeSnapshots, SnapshotError } from "../bus/snapshot_format.ts";
import { PLUGGED } from "../bus/state_bits.ts";
import { viewRuns } from "../bus/view_runs.ts";
import {
  VIRTIO_MEM_MAX_NB_BLOCKS,
  VIRTIO_MEM_USABLE_EXTENT,
  type VirtioMemCheck,
  type VirtioMemDevice,
} from "../plugins/virtio_mem.ts";
import { hex } from "../util/_hex.ts";
import type { Host } from "./build.ts";
import { errorLine } from "../util/text.ts";

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
 * documentation. Whatever the host cannot take throws a {@link SnapshotError}
 * and leaves the host as it was: code `region` for missing or extra regions,
 * for `PLUGGED` changes the virtio-mem devices would refuse or that no device
 * could make, and for a change the host refused while loading (undone, with
 * the changes before it); otherwise the region snapshot's own code. A refusal
 * met while loading leaves claimed the bits the snapshot claims and a region
 * did not (every page as before), and its calls counted.
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
  const all = [...host.virtioMem.values()];
  const plans = host.regions.map((region) => {
    const snapshot = byName.get(region.name)!;
    const devices = all.filter((d) => d.addr >= region.base && d.addr < region.base + region.size);
    // Checks shapes and bits now; `run` makes no change (the steps below make them).
    const apply = planApply(region, snapshot, { change: () => {} });
    return { region, devices, changes: apply.actions(), apply };
  });
  for (const p of plans) checkPlugged(p.region, p.devices, p.changes);
  // Claims the saved bits a region lacks and counts the changes checked; none is made yet.
  const counts = plans.map((p) => p.apply.run());
  // Every region's clears before any region's sets: unmaps before maps, unplugs before plugs.
  const steps: Step[] = [];
  for (const set of [false, true]) {
    for (const p of plans) {
      for (const c of p.changes) if (c.set === set) steps.push(...split(p.region, p.devices, c));
    }
  }
  makeAll(steps);
  return { regions: plans.map((p, i) => ({ name: p.region.name, ...counts[i] })) };
}

/** A change, or its part inside one virtio-mem device (whole blocks, made by the device). */
interface Step extends ApplyAction {
  region: Region;
  device?: VirtioMemDevice;
}

/** A part of pages `[start, end)` of `region`: inside `device`, or outside every device. */
interface Part {
  start: number;
  end: number;
  device?: VirtioMemDevice;
}

/**
 * Pages `[start, end)` of `region` cut where `devices` begin and end, in order;
 * a part inside a device is at most {@link VIRTIO_MEM_MAX_NB_BLOCKS} blocks, one
 * request's worth (le16 nb_blocks: hw/virtio/virtio-mem.c `virtio_mem_plug_request`).
 */
function* parts(
  region: Region,
  devices: readonly VirtioMemDevice[],
  start: number,
  end: number,
): Generator<Part> {
  const page = region.pageSize;
  let at = start;
  while (at < end) {
    const gpa = region.base + at * page;
    const device = devices.find((d) => gpa >= d.addr && gpa < d.addr + d.regionSize);
    const bounds = device
      ? [
        (device.addr + device.regionSize - region.base) / page,
        at + VIRTIO_MEM_MAX_NB_BLOCKS * device.blockSize / page,
      ]
      : devices.map((d) => (d.addr - region.base) / page).filter((p) => p > at);
    const next = Math.min(end, ...bounds);
    yield { start: at, end: next, device };
    at = next;
  }
}

/** A change as steps: `PLUGGED` is cut where the region's virtio-mem devices begin and end. */
function split(region: Region, devices: readonly VirtioMemDevice[], c: ApplyAction): Step[] {
  if (c.bit !== PLUGGED || devices.length === 0) return [{ ...c, region }];
  return [...parts(region, devices, c.start, c.end)].map((p) => ({ ...c, ...p, region }));
}

/**
 * Throws a {@link SnapshotError} for a `PLUGGED` change of `region` among
 * `actions` (the apply's plan) that a virtio-mem device of `devices` would
 * refuse (each device checks its part: {@link VirtioMemDevice.check}, in the
 * order the load makes them: unplugs, then plugs), or that no device could
 * make: an unplug outside every device.
 */
function checkPlugged(
  region: Region,
  devices: readonly VirtioMemDevice[],
  actions: readonly ApplyAction[],
): void {
  const page = region.pageSize;
  const refuse = (p: Part, set: boolean, rule: string) =>
    new SnapshotError(
      "region",
      `region ${region.name}: [${hex(region.base + p.start * page)}, ` +
        `${hex(region.base + p.end * page)}) is ${set ? "plugged" : "unplugged"} ${rule}`,
    );
  // What a device's check refusing part `p` says: its rule in words.
  const refusal = (
    p: Part,
    set: boolean,
    d: VirtioMemDevice,
    checked: VirtioMemCheck,
    after: number,
  ) => {
    const device = `virtio-mem ${d.name}`;
    switch (checked.rule) {
      case "unaligned":
        return refuse(
          p,
          set,
          `in partial blocks of ${device} (blockSize ${bytes(d.blockSize)} from ${hex(d.addr)})`,
        );
      case "outside":
        return refuse(
          p,
          set,
          `past the end ${hex(d.addr + d.usableRegionSize)} of the memory ${device} lets ` +
            `the guest use (its requestedSize ${bytes(d.requestedSize)} + ` +
            `${bytes(VIRTIO_MEM_USABLE_EXTENT)}, at most its size)`,
        );
      case "requested-size":
        return new SnapshotError(
          "region",
          `region ${region.name}: ${bytes(after)} is plugged in ${device}, more than its ` +
            `requestedSize ${bytes(d.requestedSize)}`,
        );
      case "busy":
        return refuse(
          p,
          set,
          `but ${device} is busy (a migration is running) and cannot ${set ? "" : "un"}plug it`,
        );
      default: // "empty", "state", "nb-blocks": a change the plan never holds
        return refuse(p, set, `but ${device} would answer ${checked.response} (${checked.rule})`);
    }
  };
  // Per device: bytes plugged as the load goes, for the device's requested-size check.
  const plugged = new Map(devices.map((d) => [d, d.pluggedSize]));
  for (const set of [false, true]) {
    for (const c of actions) {
      if (c.bit !== PLUGGED || c.set !== set) continue;
      for (const p of parts(region, devices, c.start, c.end)) {
        const d = p.device;
        if (d === undefined) {
          if (!set) throw refuse(p, set, outside(devices));
          continue; // plugging memory no device holds back: nothing refuses it
        }
        const gpa = region.base + p.start * page, size = (p.end - p.start) * page;
        const before = plugged.get(d)!;
        const checked = d.check(gpa, size / d.blockSize, set, before);
        if (checked.rule !== undefined) throw refusal(p, set, d, checked, before + size);
        plugged.set(d, before + (set ? size : -size));
      }
    }
  }
}

/** Where an unplug outside every device of a region is: the region's devices, or none. */
function outside(devices: readonly VirtioMemDevice[]): string {
  if (devices.length === 0) return "but the region has no virtio-mem device";
  const each = devices.map((d) => `${d.name} [${hex(d.addr)}, ${hex(d.addr + d.regionSize)})`);
  return `outside every virtio-mem device of the region (${each.join(", ")})`;
}

/** A virtio-mem device's answer other than ACK to a step of a load. */
class DeviceRefusal extends Error {}

/**
 * Makes `steps` in order. When the host refuses one (a listener, a device's
 * answer), undoes the steps made before it, last first, and throws a
 * {@link SnapshotError} naming the refusal.
 */
function makeAll(steps: readonly Step[]): void {
  const done: Step[] = [];
  for (const step of steps) {
    try {
      make(step, step.set);
    } catch (e) {
      if (
        !(e instanceof ConversionError || e instanceof InvalidChangeError ||
          e instanceof DeviceRefusal)
      ) {
        throw e;
      }
      const refusal = errorLine(e);
      // A refused change may leave part of it made (a QEMU policy keeps it in the store:
      // rolledBack says so). Whatever refused, undo what the store shows made.
      done.push(...madeParts(step));
      for (const made of done.reverse()) {
        try {
          make(made, !made.set);
        } catch (undo) {
          throw new Error(
            `loading state: undoing the load after "${refusal}" failed: ${errorLine(undo)}`,
            { cause: undo },
          );
        }
      }
      throw new SnapshotError(
        "region",
        `the host refused to load it (${refusal}); nothing was loaded`,
        { cause: e },
      );
    }
    done.push(step);
  }
}

/** The parts of `step` in the state it makes (all of it when made), as steps, in order. */
function madeParts(step: Step): Step[] {
  const { region, start, end, bit, set } = step;
  const view = { mask: bit, value: bit };
  const out: Step[] = [];
  for (const run of viewRuns(region.store, start, end, view, region.impliedBits)) {
    if (run.populated === set) out.push({ ...step, start: run.start, end: run.end });
  }
  return out;
}

/** Makes `step` with `set` (false undoes a set): through its device, or the region's bus. */
function make(step: Step, set: boolean): void {
  const { region, device, start, end, bit } = step;
  const page = region.pageSize;
  if (device === undefined) {
    region.change(start * page, (end - start) * page, set ? bit : 0, set ? 0 : bit);
    return;
  }
  const gpa = region.base + start * page;
  const blocks = ((end - start) * page) / device.blockSize;
  const answer = set ? device.plug(gpa, blocks) : device.unplug(gpa, blocks);
  if (answer !== "ACK") {
    const request = `${set ? "PLUG" : "UNPLUG"} of [${hex(gpa)}, ${
      hex(gpa + (end - start) * page)
    })`;
    throw new DeviceRefusal(
      `region ${region.name}: virtio-mem ${device.name} answered ${answer} to ${request}`,
    );
  }
}

/** `n` bytes exactly, in the largest binary unit that divides it ("1026 MiB", "4 KiB", "512 B"). */
function bytes(n: number): string {
  const units = ["KiB", "MiB", "GiB", "TiB"];
  for (let k = units.length; k > 0; k--) {
    const unit = 1024 ** k;
    if (n >= unit && n % unit === 0) return `${n / unit} ${units[k - 1]}`;
  }
  return `${n} B`;
}
