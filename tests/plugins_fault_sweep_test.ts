// Fault injection sweep: fail each hardware operation at call indices of a
// scripted scenario; store, plugins and simulated hardware must stay consistent.
//
// By default each operation is failed at its first and last call and at
// SAMPLED_INDICES more drawn from a printed seed (MEMSTATE_SEED replays them);
// MEMSTATE_EXHAUSTIVE=1 (`deno task test:full`, `deno task mutate`) fails it
// at every call index, which is most of this file's time (type1.map alone is
// called 2,048 times).
import assert from "node:assert/strict";
import { ConversionError } from "../src/bus/mod.ts";
import type { HwError } from "../src/hw/errors.ts";
import { SIM_OPERATIONS } from "../src/hw/sim/mod.ts";
import { Prng } from "../src/util/prng.ts";
import { exhaustive, testSeed } from "./helpers/env.ts";
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

/** Call indices tried per operation besides its first and last, unless exhaustive. */
const SAMPLED_INDICES = 24;
const EVERY_INDEX = exhaustive();
const SEED = EVERY_INDEX ? 0 : testSeed("fault sweep (sampled call indices)");

/** The 1-based call indices to fail among `calls`: all, or the edges and a seeded sample. */
function callIndices(op: string, calls: number): number[] {
  if (EVERY_INDEX || calls <= SAMPLED_INDICES + 2) {
    return Array.from({ length: calls }, (_, i) => i + 1);
  }
  // One generator per operation, so an operation's sample does not depend on the others'.
  let salt = 0;
  for (const ch of op) salt = (Math.imul(salt, 31) + ch.charCodeAt(0)) >>> 0;
  const rng = new Prng((SEED ^ salt) >>> 0);
  const picked = new Set([1, calls]);
  while (picked.size < SAMPLED_INDICES + 2) picked.add(1 + rng.int(calls));
  return [...picked].sort((a, b) => a - b);
}

const HOW = EVERY_INDEX ? "every call index" : "its edges and sampled call indices";

for (const op of SIM_OPERATIONS) {
  Deno.test(`fault sweep: failing ${op} at ${HOW} keeps everything consistent`, () => {
    // Count how often the scenario calls this operation.
    const probe = simSetup({
      iommufd: true,
      virtioMem: { blockSize: BLOCK, requestedSize: 16 * MiB },
    });
    const before = probe.faults.calls(op);
    run(probe);
    const calls = probe.faults.calls(op) - before;
    let refusedRuns = 0;
    for (const n of callIndices(op, calls)) {
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
