// Fault injection sweep: fail each hardware operation at every call index of a
// scripted scenario; store, plugins and simulated hardware must stay consistent.
import assert from "node:assert/strict";
import { ConversionError } from "../src/bus/mod.ts";
import type { HwError } from "../src/hw/errors.ts";
import { SIM_OPERATIONS } from "../src/hw/sim/mod.ts";
import { assertConsistent, MiB, PAGE, simSetup } from "./helpers/sim_setup.ts";

type Step = ["convert", number, number, "shared" | "private"] | ["plug" | "unplug", number, number];

const BLOCK = 2 * MiB;
const SCENARIO: Step[] = [
  ["plug", 0, 4],
  ["convert", 0, 4 * MiB, "shared"],
  ["convert", MiB, PAGE, "private"],
  ["convert", MiB + 8 * PAGE, 16 * PAGE, "private"],
  ["plug", 4 * BLOCK, 1],
  ["convert", 6 * MiB, 4 * MiB, "shared"],
  ["unplug", BLOCK, 1],
  ["convert", 0, 16 * MiB, "private"],
  ["convert", 2 * MiB, 64 * PAGE, "shared"],
];

function run(setup: ReturnType<typeof simSetup>): { refused: number } {
  let refused = 0;
  for (const step of SCENARIO) {
    if (step[0] === "convert") {
      try {
        setup.region.convert(step[1], step[2], step[3]);
      } catch (e) {
        assert.ok(e instanceof ConversionError, `unexpected ${e}`);
        assert.ok((e.cause as HwError).injected, `not an injected fault: ${e}`);
        refused++;
      }
    } else {
      const answer = setup.vmem![step[0]](setup.region.base + step[1], step[2]);
      if (answer === "BUSY") refused++;
      else assert.equal(answer, "ACK", `${step}`);
    }
    assertConsistent(setup, `after ${step}`);
  }
  return { refused };
}

for (const op of SIM_OPERATIONS) {
  Deno.test(`fault sweep: failing ${op} at every call index keeps everything consistent`, () => {
    // Count how often the scenario calls this operation.
    const probe = simSetup({
      iommufd: true,
      virtioMem: { blockSize: BLOCK, requestedSize: 16 * MiB },
    });
    const before = probe.faults.calls(op);
    run(probe);
    const calls = probe.faults.calls(op) - before;
    let refusedRuns = 0;
    for (let n = 1; n <= calls; n++) {
      const s = simSetup({
        iommufd: true,
        virtioMem: { blockSize: BLOCK, requestedSize: 16 * MiB },
      });
      s.faults.failNth(op, n, "EIO");
      const { refused } = run(s);
      if (refused > 0) refusedRuns++;
      assert.equal(s.region.failure, undefined, `${op} #${n}`);
    }
    if (calls > 0) {
      assert.ok(refusedRuns > 0, `${op}: ${calls} calls but no injected failure mattered`);
    }
  });
}
