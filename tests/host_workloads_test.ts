// Workload generators: determinism per seed, exact estimates, every event aligned and inside
// one region (several layouts), boot's few extents, churn's bounded extents, balloon's
// virtio-mem rules (and ACKs on a real host), hotplug's detach/attach pairs, parameter errors.
// MEMSTATE_SEED replays the seeded parts.
import assert from "node:assert/strict";
import { parseHostConfig } from "../src/host/config/load.ts";
import type { HostConfig, RegionConfig, WorkloadName } from "../src/host/config/schema.ts";
import { WORKLOAD_NAMES } from "../src/host/config/schema.ts";
import { buildHost } from "../src/host/build.ts";
import { runEvents } from "../src/host/event_runner.ts";
import type { HostEvent, WorkloadContext } from "../src/host/workloads/workload.ts";
import {
  checkParamLimits,
  checkParams,
  checkWorkloadEvents,
  estimateWorkload,
  generateWorkload,
  MAX_WORKLOAD_EVENTS,
  WorkloadError,
  WorkloadParamsError,
  WORKLOADS,
} from "../src/host/workloads/mod.ts";
import { VIRTIO_MEM_USABLE_EXTENT } from "../src/plugins/virtio_mem.ts";
import { RangeTreeStore } from "../src/store/range_tree_store.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

const MiB = 2 ** 20;

const seed = seedFromEnv();
console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);

/** Host configurations with two regions at different bases, page sizes and devices. */
const CONFIGS: Record<string, HostConfig> = {
  // A PC-like layout: low RAM, a hole, high RAM with a virtio-mem device in it.
  pc: parseHostConfig({
    name: "pc",
    regions: [
      { name: "ram-low", size: "2GiB" },
      { name: "ram-high", size: "6GiB", base: "4GiB" },
    ],
    devices: [
      { type: "iommufd", name: "gpu0" },
      { type: "type1", name: "nic0", region: "ram-low", dmaEntryLimit: 4_000_000 },
      {
        type: "virtio-mem",
        name: "vmem0",
        region: "ram-high",
        blockSize: "2MiB",
        requestedSize: "1GiB",
        offset: "2GiB",
      },
    ],
    workload: { name: "boot", seed: 1 },
  }, "pc.json"),
  // Small regions, the second with 2 MiB pages and a device whose usable region is all of it.
  huge: parseHostConfig({
    name: "huge",
    regions: [
      { name: "small", size: "64MiB", base: "0x10000000" },
      { name: "hp", size: "32MiB", base: "1GiB", pageSize: "2MiB" },
    ],
    devices: [
      { type: "iommufd", name: "io0", region: "hp" },
      { type: "virtio-mem", name: "vm", region: "hp", blockSize: "2MiB", requestedSize: "16MiB" },
    ],
    workload: { name: "boot" },
  }, "huge.json"),
  // Tiny first region (smaller than the pool, the firmware chunk and a churn slot), and
  // virtio-mem's smallest block, 1 MiB (QEMU's VIRTIO_MEM_MIN_BLOCK_SIZE).
  tiny: parseHostConfig({
    name: "tiny",
    regions: [
      { name: "t0", size: "16KiB", base: "0x8000000" },
      { name: "t1", size: "128MiB", base: "8GiB" },
    ],
    devices: [
      { type: "type1", name: "t", region: ["t0", "t1"], dmaEntryLimit: 100_000 },
      {
        type: "virtio-mem",
        name: "v1m",
        region: "t1",
        blockSize: "1MiB",
        requestedSize: "8MiB",
        offset: "64MiB",
        size: "32MiB",
      },
    ],
    workload: { name: "boot" },
  }, "tiny.json"),
};

/** Small parameters so every workload runs quickly in tests. */
const SMALL: Record<WorkloadName, Record<string, number>> = {
  "boot": { buffers: 300, swiotlbBytes: 16 * MiB },
  "swiotlb-churn": { steps: 700, inflight: 8, windowBytes: 16 * MiB, swiotlbBytes: 8 * MiB },
  "dma-scatter": { count: 500 },
  "balloon": { cycles: 7 },
  "hotplug": { steps: 400, interval: 150 },
};

function ctx(
  config: HostConfig,
  s: number,
  params: Record<string, unknown> = {},
): WorkloadContext {
  return {
    regions: config.regions,
    devices: config.devices,
    rng: new Prng(s),
    params: params as Record<string, number>,
  };
}

function events(name: WorkloadName, config: HostConfig, s: number, params = SMALL[name]) {
  return [...generateWorkload(name, ctx(config, s, params))];
}

/** The one region holding `[gpa, gpa + size)`, asserting it is exactly one and aligned. */
function regionOf(config: HostConfig, gpa: number, size: number, what: string): RegionConfig {
  const holders = config.regions.filter((r) => gpa >= r.base && gpa + size <= r.base + r.size);
  assert.equal(holders.length, 1, `${what}: in ${holders.length} regions`);
  const [r] = holders;
  assert.ok(size > 0, `${what}: empty`);
  assert.equal((gpa - r.base) % r.pageSize, 0, `${what}: start not page aligned`);
  assert.equal(size % r.pageSize, 0, `${what}: size not page aligned`);
  return r;
}

Deno.test("every workload: events numbered from 1, aligned, inside one region; estimate exact", () => {
  for (const [configName, config] of Object.entries(CONFIGS)) {
    for (const name of WORKLOAD_NAMES) {
      const list = events(name, config, seed);
      const what = `${name} on ${configName}`;
      assert.equal(list.length, estimateWorkload(name, ctx(config, seed, SMALL[name])), what);
      assert.ok(list.length > 0, what);
      list.forEach((e, i) => {
        assert.equal(e.line, i + 1, what);
        if (e.op === "convert" || e.op === "plug" || e.op === "unplug") {
          regionOf(config, e.gpa, e.size, `${what} line ${e.line}`);
        }
      });
    }
  }
});

Deno.test("estimate draws nothing from the generator and equals the count with defaults", () => {
  const config = CONFIGS.huge;
  for (const name of ["boot", "balloon", "hotplug"] as const) {
    const c = ctx(config, 5);
    const before = new Prng(5).next();
    const estimate = estimateWorkload(name, c);
    assert.equal(c.rng.next(), before, `${name}: estimate used the rng`);
    assert.equal([...generateWorkload(name, ctx(config, 5))].length, estimate, name);
  }
});

Deno.test("same seed, same events; another seed, other events", () => {
  for (const name of WORKLOAD_NAMES) {
    const a = events(name, CONFIGS.pc, seed);
    const b = events(name, CONFIGS.pc, seed);
    const c = events(name, CONFIGS.pc, (seed + 1) >>> 0);
    assert.deepEqual(a, b, name);
    assert.notDeepEqual(a, c, name);
  }
});

Deno.test("generators are lazy: a huge workload yields its first events at once", () => {
  const params = { count: 1e15 };
  const c = ctx(CONFIGS.pc, seed, params);
  assert.equal(estimateWorkload("dma-scatter", c), 1e15);
  const first: HostEvent[] = [];
  for (const e of generateWorkload("dma-scatter", c)) {
    first.push(e);
    if (first.length === 5) break;
  }
  assert.deepEqual(first.map((e) => e.line), [1, 2, 3, 4, 5]);
  // Same for the churns: their steps are not built in advance either.
  const it = generateWorkload("swiotlb-churn", ctx(CONFIGS.pc, seed, { steps: 1e15 }));
  assert.equal(it[Symbol.iterator]().next().value?.line, 1);
});

/** Applies the conversions of `list` to one store per region; returns the extents per region. */
function extents(config: HostConfig, list: HostEvent[]): Map<string, RangeTreeStore> {
  const stores = new Map(
    config.regions.map((r) => [r.name, new RangeTreeStore(r.size / r.pageSize, { bits: 2 })]),
  );
  for (const e of list) {
    if (e.op !== "convert") continue;
    const r = regionOf(config, e.gpa, e.size, `line ${e.line}`);
    const start = (e.gpa - r.base) / r.pageSize;
    const end = start + e.size / r.pageSize;
    if (e.to === "shared") stores.get(r.name)!.update(start, end, 1, 0);
    else stores.get(r.name)!.update(start, end, 0, 1);
  }
  return stores;
}

Deno.test("boot: shares firmware, a 2 MiB-stepped pool and buffers in a few thousand extents", () => {
  const config = CONFIGS.pc;
  const list = events("boot", config, seed, {});
  // 8 firmware pages + 1 chunk + 64 MiB / 2 MiB + 1000 buffers.
  assert.equal(list.length, 8 + 1 + 32 + 1000);
  assert.ok(list.every((e) => e.op === "convert" && e.to === "shared"));
  const pool = list.slice(9, 41) as (HostEvent & { op: "convert" })[];
  // The pool is contiguous, 2 MiB aligned, in the largest region.
  pool.forEach((e, i) => {
    assert.equal(e.size, 2 * MiB);
    assert.equal(e.gpa, pool[0].gpa + i * 2 * MiB);
    assert.equal(regionOf(config, e.gpa, e.size, "pool").name, "ram-high");
  });
  assert.equal(pool[0].gpa % (2 * MiB), 0);
  // Firmware: low addresses of the lowest region.
  for (const e of list.slice(0, 9) as (HostEvent & { op: "convert" })[]) {
    assert.ok(e.gpa + e.size <= 16 * MiB, `firmware at 0x${e.gpa.toString(16)}`);
  }
  const stores = extents(config, list);
  let runs = 0;
  for (const s of stores.values()) runs += s.runCount;
  // Each buffer adds at most two boundaries; the pool and firmware a handful.
  assert.ok(runs <= 2 * 1000 + 2 * 9 + 3, `${runs} extents`);
  assert.ok(runs > 100, `${runs} extents: buffers are scattered`);
});

Deno.test("swiotlb-churn: bounded extents, and every buffer ends private again", () => {
  for (const config of Object.values(CONFIGS)) {
    const params = { steps: 3000, inflight: 10, windowBytes: 16 * MiB, swiotlbBytes: 4 * MiB };
    const list = events("swiotlb-churn", config, seed, params);
    const shared = list.filter((e) => e.op === "convert" && e.to === "shared").length;
    const poolEvents = shared - 3000;
    assert.equal(list.length, poolEvents + 6000);
    // Replay step by step, checking the extent bound as we go.
    const stores = extents(config, []);
    let peak = 0;
    for (const e of list) {
      if (e.op !== "convert") continue;
      const r = regionOf(config, e.gpa, e.size, `line ${e.line}`);
      const start = (e.gpa - r.base) / r.pageSize;
      const end = start + e.size / r.pageSize;
      const s = stores.get(r.name)!;
      if (e.to === "shared") s.update(start, end, 1, 0);
      else s.update(start, end, 0, 1);
      let runs = 0;
      for (const t of stores.values()) runs += t.runCount;
      peak = Math.max(peak, runs);
    }
    // Pool (one extent) plus at most 10 buffers, each adding at most two boundaries.
    assert.ok(peak <= config.regions.length + 2 + 2 * 10, `peak ${peak} extents`);
    let runs = 0;
    for (const t of stores.values()) runs += t.runCount;
    assert.ok(
      runs <= config.regions.length + 2,
      `${runs} extents left: only the pool stays shared`,
    );
  }
});

Deno.test("dma-scatter: single pages, both directions, spread over both regions", () => {
  const config = CONFIGS.pc;
  const list = events("dma-scatter", config, seed, { count: 4000 });
  const to = { shared: 0, private: 0 };
  const per = new Map<string, number>();
  for (const e of list) {
    assert.equal(e.op, "convert");
    if (e.op !== "convert") continue;
    const r = regionOf(config, e.gpa, e.size, `line ${e.line}`);
    assert.equal(e.size, r.pageSize);
    to[e.to]++;
    per.set(r.name, (per.get(r.name) ?? 0) + 1);
  }
  assert.ok(to.shared > 1500 && to.private > 1500, JSON.stringify(to));
  // ram-high is three times ram-low: it gets about three quarters.
  const high = per.get("ram-high")!;
  assert.ok(high > 2600 && high < 3400, `ram-high got ${high}`);
});

Deno.test("balloon: block aligned, inside the usable region, never more than requested", () => {
  for (const [configName, config] of Object.entries(CONFIGS)) {
    const list = events("balloon", config, seed, { cycles: 12, unplugAllEvery: 4 });
    const vmem = config.devices.filter((d) => d.type === "virtio-mem");
    const plugged = new Map(vmem.map((d) => [d.name, new Set<number>()]));
    let plugs = 0, unplugs = 0, unplugAlls = 0;
    for (const e of list) {
      const what = `${configName} line ${e.line}`;
      if (e.op === "unplug-all") {
        plugged.get(e.device!)!.clear();
        unplugAlls++;
        continue;
      }
      if (e.op !== "plug" && e.op !== "unplug") continue;
      const d = vmem.find((v) => {
        const r = config.regions.find((x) => x.name === v.region)!;
        return e.gpa >= r.base + v.offset && e.gpa < r.base + v.offset + v.size;
      });
      assert.ok(d, `${what}: in no virtio-mem device`);
      const r = config.regions.find((x) => x.name === d.region)!;
      const addr = r.base + d.offset;
      const usable = Math.min(d.size, d.requestedSize + VIRTIO_MEM_USABLE_EXTENT);
      assert.equal((e.gpa - addr) % d.blockSize, 0, `${what}: gpa not block aligned`);
      assert.equal(e.size % d.blockSize, 0, `${what}: size not block aligned`);
      assert.ok(e.gpa + e.size <= addr + usable, `${what}: past the usable region`);
      const set = plugged.get(d.name)!;
      for (let b = (e.gpa - addr) / d.blockSize; b < (e.gpa + e.size - addr) / d.blockSize; b++) {
        if (e.op === "plug") {
          assert.ok(!set.has(b), `${what}: block ${b} plugged twice`);
          set.add(b);
        } else {
          assert.ok(set.delete(b), `${what}: block ${b} unplugged while unplugged`);
        }
      }
      assert.ok(set.size * d.blockSize <= d.requestedSize, `${what}: more than requested`);
      if (e.op === "plug") plugs++;
      else unplugs++;
    }
    assert.equal(unplugAlls, 3 * vmem.length, configName);
    assert.ok(plugs >= 12 * vmem.length, `${configName}: ${plugs} plugs`);
    assert.ok(unplugs > 0, `${configName}: ${unplugs} unplugs`);
  }
});

Deno.test("balloon on a real simulated host: every virtio-mem request is ACKed", () => {
  for (const config of Object.values(CONFIGS)) {
    using host = buildHost(config);
    const result = runEvents(host, generateWorkload("balloon", ctx(config, seed)));
    assert.deepEqual(result.errors, []);
    assert.equal(result.requests.NACK + result.requests.BUSY + result.requests.ERROR, 0);
    assert.ok(result.requests.ACK > 0);
  }
});

Deno.test("hotplug: each device is detached and re-attached in pairs, with conversions between", () => {
  const config = CONFIGS.pc;
  const list = events("hotplug", config, seed, { steps: 1000, interval: 300, swiotlbBytes: 0 });
  // 2000 conversions: detach points after 300, 600, ..., 1800.
  const dma = ["gpu0", "nic0"];
  for (const device of dma) {
    const ops = list.filter((e) => "device" in e && e.device === device).map((e) => e.op);
    assert.deepEqual(ops, Array.from({ length: 12 }, (_, i) => (i % 2 ? "attach" : "detach")));
  }
  let conversions = 0, detached = false;
  for (const e of list) {
    if (e.op === "detach" && e.device === dma[0]) {
      assert.equal(conversions % 300, 0);
      detached = true;
    }
    if (e.op === "attach" && e.device === dma[0]) {
      assert.equal(conversions % 300, 150);
      detached = false;
    }
    if (e.op === "convert") conversions++;
  }
  assert.equal(conversions, 2000);
  assert.equal(detached, false);
  assert.equal(list.length, 2000 + 2 * 2 * 6);
});

Deno.test("hotplug on a real simulated host: detaches, re-attaches and converts cleanly", () => {
  for (const config of Object.values(CONFIGS)) {
    using host = buildHost(config);
    const c = ctx(config, seed, { steps: 600, interval: 100 });
    const result = runEvents(host, generateWorkload("hotplug", c));
    assert.deepEqual(result.errors, []);
    assert.ok(result.hotplug > 0);
    for (const d of host.devices.values()) assert.ok(d.attached, d.config.name);
  }
});

Deno.test("hotplug leaves devices with their own attachAt / detachAt schedule alone", () => {
  const config = parseHostConfig({
    name: "timed",
    regions: [{ name: "r", size: "64MiB" }],
    devices: [
      { type: "iommufd", name: "timed", attachAt: 10 },
      { type: "iommufd", name: "free" },
    ],
    workload: { name: "hotplug" },
  }, "timed.json");
  const list = events("hotplug", config, seed);
  assert.ok(list.some((e) => "device" in e && e.device === "free"));
  assert.ok(!list.some((e) => "device" in e && e.device === "timed"));
  const onlyTimed = { ...config, devices: config.devices.filter((d) => d.name === "timed") };
  assert.throws(() => events("hotplug", onlyTimed, seed), /attachAt/);
});

Deno.test("balloon and hotplug refuse a configuration without their devices", () => {
  const bare = parseHostConfig({
    name: "bare",
    regions: [{ name: "r", size: "64MiB" }],
    workload: { name: "boot" },
  }, "bare.json");
  for (const call of [estimateWorkload, generateWorkload]) {
    assert.throws(
      () => call("balloon", ctx(bare, 1)),
      /the balloon workload needs a virtio-mem device/,
    );
    assert.throws(() => call("hotplug", ctx(bare, 1)), /hotplug workload needs a type1 or iommufd/);
  }
  // The other workloads need nothing but memory.
  for (const name of ["boot", "swiotlb-churn", "dma-scatter"] as const) {
    assert.ok(events(name, bare, 1).length > 0, name);
  }
});

Deno.test("checkParams: fills defaults and names the bad parameter with the known ones", () => {
  assert.deepEqual(checkParams("boot", {}), { swiotlbBytes: 64 * MiB, buffers: 1000 });
  assert.deepEqual(checkParams("dma-scatter", { count: 0 }), { count: 0 });
  for (const name of WORKLOAD_NAMES) {
    const defaults = Object.fromEntries(
      Object.entries(WORKLOADS[name].params).map(([k, p]) => [k, p.default]),
    );
    assert.deepEqual(checkParams(name, {}), defaults);
    assert.equal(WORKLOADS[name].name, name);
  }

  const error = (fn: () => unknown): WorkloadParamsError => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof WorkloadParamsError, String(e));
      return e;
    }
    assert.fail("expected a WorkloadParamsError");
  };
  const unknown = error(() => checkParams("boot", { bufers: 10 }));
  assert.match(unknown.message, /^workload\.params\.bufers: unknown parameter of workload "boot"/);
  assert.match(unknown.message, /swiotlbBytes.*buffers/);

  for (const bad of [-1, 1.5, "10", null, true, 2 ** 53, NaN]) {
    const e = error(() => checkParams("swiotlb-churn", { steps: bad }));
    assert.match(e.message, /^workload\.params\.steps: must be a non-negative integer, got /);
    assert.match(e.message, /steps.*swiotlbBytes.*windowBytes.*inflight/);
  }
  // Every problem at once, under the caller's field path.
  const both = error(() => checkParams("hotplug", { steps: -2, nope: 1 }, "w.params"));
  assert.deepEqual(both.issues.map((i) => i.path), ["w.params.steps", "w.params.nope"]);
  assert.equal(both.message.split("\n").length, 2);

  assert.throws(
    () => checkParams("bogus" as WorkloadName, {}),
    /unknown workload "bogus" \(known: boot, swiotlb-churn, dma-scatter, balloon, hotplug\)/,
  );
  // generateWorkload checks too, before any event.
  assert.throws(
    () => generateWorkload("dma-scatter", ctx(CONFIGS.pc, 1, { count: -1 })),
    /workload\.params\.count/,
  );
});

Deno.test("checkParamLimits: a value given explicitly is refused where a default would be fitted", () => {
  // registry.ts checkParamLimits: the pool is shared in whole pages, the window holds at least a
  // page of whole pages, and at least one buffer is in flight; a value outside is named, not
  // rounded. The same values left to their defaults are fitted silently.
  const config = CONFIGS.pc;
  const limited = (name: WorkloadName, params: Record<string, number>) => {
    const full = checkParams(name, params);
    try {
      checkParamLimits(name, ctx(config, 1, full), Object.keys(params), "--param");
    } catch (e) {
      assert.ok(e instanceof WorkloadParamsError, String(e));
      return e.message;
    }
    return "";
  };
  assert.match(
    limited("boot", { swiotlbBytes: 4097 }),
    /^--param\.swiotlbBytes: must be a multiple of 4096: the SWIOTLB pool is shared in whole pages of region "[^"]+"; got 4097$/,
  );
  assert.match(
    limited("swiotlb-churn", { windowBytes: 0 }),
    /^--param\.windowBytes: must be at least 4096: the DMA window holds at least one page; got 0$/,
  );
  assert.match(limited("swiotlb-churn", { windowBytes: 6000 }), /windowBytes: must be a multiple/);
  assert.match(
    limited("swiotlb-churn", { inflight: 0 }),
    /^--param\.inflight: must be at least 1: a buffer is shared before it can be freed; got 0$/,
  );
  assert.equal(limited("swiotlb-churn", { swiotlbBytes: 0, windowBytes: 8192, inflight: 1 }), "");
  assert.equal(limited("boot", { swiotlbBytes: 8 * MiB }), "");
});

Deno.test("big guests: a 1 TiB region keeps events exact and aligned", () => {
  const config = parseHostConfig({
    name: "big",
    regions: [
      { name: "low", size: "3GiB" },
      { name: "high", size: "1TiB", base: "4GiB" },
    ],
    devices: [{ type: "iommufd", name: "gpu" }],
    workload: { name: "boot" },
  }, "big.json");
  for (const name of ["boot", "dma-scatter", "swiotlb-churn", "hotplug"] as const) {
    const list = events(name, config, seed);
    for (const e of list) {
      if (e.op === "convert") regionOf(config, e.gpa, e.size, `${name} line ${e.line}`);
    }
  }
});

Deno.test("a generated workload makes at most MAX_WORKLOAD_EVENTS events: the bound is in, one more is out", () => {
  assert.equal(MAX_WORKLOAD_EVENTS, 100_000_000);
  checkWorkloadEvents("boot", MAX_WORKLOAD_EVENTS, ["--param buffers = 99998000"]);
  assert.throws(
    () =>
      checkWorkloadEvents("dma-scatter", MAX_WORKLOAD_EVENTS + 1, ["--param count = 100000001"]),
    (e) => {
      assert.ok(e instanceof WorkloadError);
      assert.equal(
        e.message,
        'workload "dma-scatter" would make 100,000,001 events, more than the 100,000,000 a ' +
          "generated workload may: lower it (--param count = 100000001), or replay a trace (--trace)",
      );
      return true;
    },
  );
  // Without a parameter to name, the message does not ask to lower "them".
  assert.throws(
    () => checkWorkloadEvents("hotplug", 2e8, []),
    /may: give it smaller parameters, or replay a trace \(--trace\)$/,
  );
  assert.throws(
    () => checkWorkloadEvents("boot", 2e8, ["a = 1", "b = 2"]),
    /: lower them \(a = 1, b = 2\)/,
  );
});
