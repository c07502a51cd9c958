// What this machine can run, refused before the host is built: a bitmap store
// larger than the memory available, regions the host process cannot map.
import assert from "node:assert/strict";
import { compare } from "../src/host/compare.ts";
import { parseHostConfig } from "../src/host/config/load.ts";
import { ConfigError } from "../src/host/config/errors.ts";
import { buildHost } from "../src/host/build.ts";
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

Deno.test("a device whose hardware refuses what the regions start with is a config error naming it", () => {
  // build.ts attachAtStart: a region that starts shared is mapped when an IOMMU device attaches;
  // under a memlockLimit too small for it the kernel refuses (ENOMEM), which is the
  // configuration's doing (found by the CLI fuzz test, which reported it as an internal error).
  const config = parseHostConfig({
    name: "tight",
    regions: [{ name: "ram", size: "1GiB", initial: "shared" }],
    devices: [{ type: "iommufd", name: "gpu0" }],
    workload: { name: "boot" },
    memlockLimit: "4KiB",
  }, "tight.json");
  assert.throws(
    () => buildHost(config),
    (e) =>
      e instanceof ConfigError &&
      /^tight\.json: devices\[0\]: gpu0 cannot attach with the regions as they start: .*ENOMEM/
        .test(e.message) &&
      !e.message.includes("\n"),
  );
});
