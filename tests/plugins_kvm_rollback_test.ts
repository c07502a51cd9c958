// KVM's coalesced calls under failure: one attribute call and one punch cover
// the span of the pages that flip, including pages already in the target
// state in between. Undoing such a call (a later listener refused, or the
// punch itself failed) must restore only the pages that flipped.
import assert from "node:assert/strict";
import { ConversionError, KVM_VIEW, Region, type Section } from "../src/bus/mod.ts";
import { KVM_MEMORY_ATTRIBUTE_PRIVATE as PRIVATE } from "../src/hw/backend.ts";
import { assertConsistent, PAGE, simSetup } from "./helpers/sim_setup.ts";

/** Page 1 shared, pages 0 and 2 private: a to-shared change of [0, 3) is one KVM call. */
function mixed(setup: ReturnType<typeof simSetup>) {
  setup.region.convert(PAGE, PAGE, "shared");
  const kvmCalls = setup.kvm.stats().calls.setMemoryAttributes;
  return () => setup.kvm.stats().calls.setMemoryAttributes - kvmCalls;
}

function attributes(setup: ReturnType<typeof simSetup>): number[] {
  return [0, 1, 2].map((page) => setup.vm.getMemoryAttributes(setup.region.base + page * PAGE));
}

Deno.test("kvm rollback: a refused DMA map undoes only the pages KVM's coalesced call flipped", () => {
  const setup = simSetup();
  const callsSince = mixed(setup);
  setup.faults.failNth("type1.map", 1, "ENOSPC"); // the NIC refuses page 0, after KVM went first
  assert.throws(() => setup.region.convert(0, 3 * PAGE, "shared"), ConversionError);
  assert.equal(callsSince(), 3, "one coalesced call over [0, 3), one undo per flipped page");
  assert.deepEqual(attributes(setup), [PRIVATE, 0, PRIVATE]);
  assertConsistent(setup, "after the rollback");
  setup.region.convert(0, 3 * PAGE, "shared"); // and the same change goes through afterwards
  assert.deepEqual(attributes(setup), [0, 0, 0]);
  assertConsistent(setup, "after the retry");
});

for (
  const [what, op] of [["guest_memfd", "gmem.fallocate"], [
    "shared memfd",
    "memfd.fallocate",
  ]] as const
) {
  Deno.test(`kvm rollback: a failed ${what} punch restores the attributes run by run`, () => {
    const setup = simSetup({ type1: false });
    if (op === "memfd.fallocate") {
      // To-private punches the shared side: start from all shared but page 1.
      setup.region.convert(0, 3 * PAGE, "shared");
      setup.region.convert(PAGE, PAGE, "private");
    } else {
      mixed(setup);
    }
    const to = op === "memfd.fallocate" ? "private" : "shared";
    const before = attributes(setup);
    setup.faults.failNth(op, 1, "EIO");
    assert.throws(() => setup.region.convert(0, 3 * PAGE, to), ConversionError);
    assert.deepEqual(attributes(setup), before);
    assertConsistent(setup, `after the failed ${what} punch`);
  });
}

Deno.test("kvm rollback: a failed punch of a one-page change puts its attribute back", () => {
  for (const to of ["shared", "private"] as const) {
    const setup = simSetup({ type1: false });
    if (to === "private") setup.region.convert(0, PAGE, "shared");
    const before = setup.vm.getMemoryAttributes(setup.region.base);
    setup.faults.failNth(to === "shared" ? "gmem.fallocate" : "memfd.fallocate", 1, "EIO");
    assert.throws(() => setup.region.convert(0, PAGE, to), ConversionError);
    assert.equal(setup.vm.getMemoryAttributes(setup.region.base), before, to);
    assertConsistent(setup, `after the failed one-page punch to ${to}`);
  }
});

Deno.test("sections say whether every page flips: coalesced calls and whole-section unregisters do not", () => {
  const region = new Region({ name: "ram", size: 64 * 4096 });
  const seen: (boolean | undefined)[] = [];
  const record = (s: Section) => seen.push(s.uniform);
  const listener = {
    name: "l",
    view: KVM_VIEW,
    coalesce: true,
    acceptsDoubleDiscard: true,
    populate: record,
    discard: record,
  };
  region.register(listener);
  region.convert(0, 4096, "shared"); // one run: uniform
  region.convert(8192, 4096, "shared");
  region.convert(0, 3 * 4096, "private"); // two runs coalesced into one call over a private page
  region.convert(0, 4096, "shared");
  region.unregister(listener); // one discard of the whole section
  assert.deepEqual(seen, [true, true, false, true, false]);
});

Deno.test("kvm stats: calls counted, and listed in the order they were first made", () => {
  // kvm_attributes.ts counts a conversion's calls in fields of its own (#perConversion) and adds
  // them to the shared counters in stats(); their keys keep the order of first use.
  const setup = simSetup({ type1: false });
  const before = setup.kvm.stats().calls;
  setup.region.convert(0, PAGE, "shared");
  setup.kvm.discardShared(setup.region, 2 * PAGE, PAGE); // a punch outside the listener
  const calls = setup.kvm.stats().calls;
  assert.deepEqual(Object.keys(calls).slice(0, 3), [
    "createRegionBacking",
    "setMemoryAttributes",
    "punchHole",
  ]);
  assert.equal(calls.setMemoryAttributes, (before.setMemoryAttributes ?? 0) + 1);
  assert.equal(calls.punchHole, (before.punchHole ?? 0) + 2);
});
