// What this machine can run, refused before the host is built: a bitmap store
// larger than the memory available, regions the host process cannot map.
import assert from "node:assert/strict";
import { compare } from "../src/host/compare.ts";
import { parseHostConfig } from "../src/host/config/load.ts";
import { ConfigError } from "../src/host/config/errors.ts";
import { buildHost } from "../src/host/build.ts";
import { runEvents } from "../src/host/event_runner.ts";
import { checkInvariants } from "../src/host/invariants.ts";
import { SimIoas } from "../src/hw/sim/iommufd.ts";
import { availableMemory, HostLimitError, hostLimitProblems } from "../src/host/limits.ts";
import { runSession } from "../src/host/session.ts";

const config = (store: "bitmap" | "range-tree") =>
  parseHostConfig({
    name: "limits",
    store,
    regions: [{ name: "ram", size: "64GiB" }],
    workload: { name: "dma-scatter", params: { count: 10 } },
  }, "limits.json");

Deno.test("limits: a bitmap store larger than the memory available is refused before the host is built", async () => {
  // 64 GiB of 4 KiB pages: a 2 MiB bitmap.
  await assert.rejects(runSession(config("bitmap"), { availableMemory: 1 << 20 }), (e) => {
    assert.ok(e instanceof HostLimitError);
    assert.match(
      e.message,
      /^limits\.json: the bitmap store needs 2 MiB \(one bit per page per state bit\), more than the 1 MiB of memory available; use "store": "range-tree"/,
    );
    return true;
  });
  // --store range-tree runs the same file; and with the memory there, so does the bitmap.
  await runSession(config("bitmap"), { availableMemory: 1 << 20, store: "range-tree" });
  await runSession(config("bitmap"), { availableMemory: 4 << 20 });
  // compare says which variant would not start instead of failing.
  const [store] = await compare(config("range-tree"), { availableMemory: 1 << 20 }, { reps: 1 });
  assert.match(store.variants[0].refused!, /^would not start here: .*bitmap store needs 2 MiB/);
  assert.ok(store.variants[1].report);
});

Deno.test("limits: regions must fit the host process's address space; the machine's memory is read", () => {
  const huge = parseHostConfig({
    name: "huge",
    regions: [{ name: "a", size: "100TiB" }, {
      name: "b",
      size: "100TiB",
      base: "0x1000000000000",
    }],
    workload: { name: "boot" },
  }, "huge.json");
  const [problem] = hostLimitProblems(huge);
  assert.match(
    problem,
    /regions\[1\] "b": the regions up to this one need 200 TiB of host address space/,
  );
  const memory = availableMemory();
  assert.ok(memory === undefined || memory > 0);
});

Deno.test("a device whose kernel refuses what the regions start with is a config error naming it", () => {
  // build.ts attachAtStart: a region that starts shared is mapped when an IOMMU device attaches;
  // under a memlockLimit (ENOMEM) or dmaEntryLimit (ENOSPC) too small for it the kernel refuses,
  // which is the configuration's doing, under every VMM policy (found by the CLI fuzz test, which
  // reported it as an internal error).
  const tight = (vmm: string, device: Record<string, unknown>, extra = {}) =>
    parseHostConfig({
      name: "tight",
      vmm,
      regions: [{ name: "ram", size: "64MiB", initial: "shared" }],
      devices: [device],
      workload: { name: "boot" },
      ...extra,
    }, "tight.json");
  for (const vmm of ["memstate", "qemu-10.1", "qemu-11.1"]) {
    assert.throws(
      () => buildHost(tight(vmm, { type: "iommufd", name: "gpu0" }, { memlockLimit: "4KiB" })),
      (e) =>
        e instanceof ConfigError && !e.message.includes("\n") &&
        /^tight\.json: devices\[0\]: gpu0 cannot map what the regions start with \(ioas\.map: ENOMEM.*\); raise "memlockLimit"/
          .test(e.message),
      vmm,
    );
  }
  assert.throws(
    () =>
      buildHost(
        tight("memstate", { type: "type1", name: "nic0", dmaEntryLimit: 16 }, {
          continueOnCapacityError: true,
        }),
      ),
    (e) =>
      e instanceof ConfigError &&
      /^tight\.json: devices\[0\]: nic0 cannot map .*ENOSPC.*; raise "dmaEntryLimit"/.test(
        e.message,
      ),
  );
});

Deno.test("a plugin's own mistake while attaching at start-up stays an error of its own", () => {
  // Only the kernel's resource limits become config errors; a TypeError stays a bug (exit 70).
  const original = SimIoas.prototype.map;
  SimIoas.prototype.map = () => {
    throw new TypeError("a planted bug");
  };
  try {
    const config = parseHostConfig({
      name: "bug",
      regions: [{ name: "ram", size: "64MiB", initial: "shared" }],
      devices: [{ type: "iommufd", name: "gpu0" }],
      workload: { name: "boot" },
    }, "bug.json");
    assert.throws(() => buildHost(config), (e) => !(e instanceof ConfigError));
  } finally {
    SimIoas.prototype.map = original;
  }
});

Deno.test("a device that one of its regions refuses is attached to none of them", () => {
  // build.ts host.attach: a failure on the second region lets go of the first, so the device is
  // not left half attached (its later detachAt would fail and its first region keep mappings).
  const config = parseHostConfig({
    name: "half",
    regions: [
      { name: "small", size: "16KiB", base: 0, initial: "shared" },
      { name: "big", size: "64MiB", base: "0x100000000", initial: "shared" },
    ],
    devices: [{ type: "iommufd", name: "gpu0", attachAt: 2, detachAt: 4 }],
    workload: { name: "boot" },
    memlockLimit: "64KiB",
  }, "half.json");
  using host = buildHost(config);
  const convert = (line: number) => ({
    op: "convert" as const,
    gpa: 0x1000 * (line % 4),
    size: 0x1000,
    to: "private" as const,
    line,
  });
  const run = runEvents(host, [1, 2, 3, 4, 5].map(convert));
  assert.equal(run.errors.length, 2, JSON.stringify(run.errors)); // the refused attach, the detach
  assert.match(run.errors[0].message, /attach gpu0 .*ENOMEM/);
  assert.equal(host.devices.get("gpu0")!.attached, false);
  for (const region of host.regions) {
    assert.deepEqual(region.listeners.map((l) => l.name), ["kvm"], region.name);
  }
  assert.deepEqual(checkInvariants(host.regions, host.plugins).violations, []);
});
