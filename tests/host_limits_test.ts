// What this machine can run, refused before the host is built: a bitmap store
// larger than the memory available, regions the host process cannot map.
import assert from "node:assert/strict";
import { compare } from "../src/host/compare.ts";
import { parseHostConfig } from "../src/host/config/load.ts";
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
