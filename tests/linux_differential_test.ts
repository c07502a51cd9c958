// The same scripted conversions through the real backend and the simulator
// (the same region setup code, driving the KvmBackend interface only) end in
// the same state: attributes per page, allocated bytes per page on both sides,
// page contents, and the same errno for every refused step.
// Reproduce a failure with MEMSTATE_SEED=<printed seed>.
import assert from "node:assert/strict";
import { HwError } from "../src/hw/errors.ts";
import {
  FALLOC_FL_PUNCH_HOLE,
  GUEST_MEMFD_FLAG_INIT_SHARED,
  GUEST_MEMFD_FLAG_MMAP,
  KVM_MEMORY_ATTRIBUTE_PRIVATE,
  type KvmBackend,
} from "../src/hw/backend.ts";
import { SimKvm } from "../src/hw/sim/kvm_vm.ts";
import {
  createRegionBacking,
  openLinuxKvm,
  type SeparateRegionBacking,
} from "../src/hw/linux/mod.ts";
import { Prng } from "../src/util/prng.ts";
import { announceSkip, pattern, probe } from "./helpers/linux.ts";

announceSkip("linux_differential_test");

const PAGE = 4096;
const PAGES = 64;
const GPA = 0x1_0000_0000;
const STEPS = 300;
const FLAGS = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
const ignore = !probe.available || !probe.capabilities!.guestMemfd ||
  (probe.capabilities!.guestMemfdFlags & FLAGS) !== FLAGS;

type Step =
  | { kind: "convert"; first: number; count: number; toPrivate: boolean }
  | { kind: "hostWrite"; page: number; seed: number }
  | { kind: "guestWrite"; page: number; seed: number }
  | { kind: "misalignedAttributes"; page: number }
  | { kind: "misalignedPunch"; page: number }
  | { kind: "punchWithoutKeepSize"; page: number }
  | { kind: "inPlace"; page: number };

function script(rng: Prng): Step[] {
  const steps: Step[] = [];
  for (let i = 0; i < STEPS; i++) {
    const r = rng.next();
    const page = rng.int(PAGES);
    if (r < 0.5) {
      // Mostly single pages (the 4 KiB churn of real guests), sometimes runs.
      const count = rng.chance(0.7) ? 1 : 1 + rng.int(Math.min(16, PAGES - page));
      steps.push({ kind: "convert", first: page, count, toPrivate: rng.chance(0.5) });
    } else if (r < 0.7) steps.push({ kind: "hostWrite", page, seed: rng.int(251) });
    else if (r < 0.9) steps.push({ kind: "guestWrite", page, seed: rng.int(251) });
    else {
      const bad = ["misalignedAttributes", "misalignedPunch", "punchWithoutKeepSize", "inPlace"];
      steps.push({ kind: bad[rng.int(bad.length)], page } as Step);
    }
  }
  return steps;
}

/** One step, as the kvm attributes plugin does it in separate-backing mode. */
function apply(kvm: KvmBackend, region: SeparateRegionBacking, step: Step): void {
  const { shared, guestMemfd } = region;
  switch (step.kind) {
    case "convert": {
      const offset = step.first * PAGE;
      const size = step.count * PAGE;
      kvm.setMemoryAttributes(
        GPA + offset,
        size,
        step.toPrivate ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
      );
      // Discard the side no longer used.
      if (step.toPrivate) shared.punchHole(offset, size);
      else guestMemfd.punchHole(offset, size);
      return;
    }
    case "hostWrite":
      // The host writes only memory that is shared.
      if (kvm.getMemoryAttributes(GPA + step.page * PAGE) === 0) {
        shared.write(step.page * PAGE, pattern(PAGE, step.seed));
      }
      return;
    case "guestWrite":
      // Stands for the guest writing its private memory (INIT_SHARED lets the host do it).
      if (kvm.getMemoryAttributes(GPA + step.page * PAGE) !== 0) {
        guestMemfd.write(step.page * PAGE, pattern(PAGE, step.seed));
      }
      return;
    case "misalignedAttributes":
      return kvm.setMemoryAttributes(GPA + step.page * PAGE + 512, PAGE, 0);
    case "misalignedPunch":
      return guestMemfd.punchHole(step.page * PAGE + 512, PAGE);
    case "punchWithoutKeepSize":
      return guestMemfd.fallocate(FALLOC_FL_PUNCH_HOLE, step.page * PAGE, PAGE);
    case "inPlace":
      return guestMemfd.setAttributes(step.page * PAGE, PAGE, KVM_MEMORY_ATTRIBUTE_PRIVATE);
  }
}

interface Outcome {
  /** Per step: "ok" or "op: errno". */
  results: string[];
  /** Per page: attributes, allocated bytes of the shared side and of the guest_memfd. */
  pages: [number, number, number][];
  /** Per page: contents of the shared side and of the guest_memfd. */
  contents: [Uint8Array, Uint8Array][];
}

function run(kvm: KvmBackend, steps: Step[]): Outcome {
  using region = createRegionBacking(kvm, {
    slot: 0,
    guestPhysAddr: GPA,
    size: PAGES * PAGE,
    guestMemfdFlags: FLAGS,
  });
  // The host starts with data in every (shared) page.
  for (let p = 0; p < PAGES; p++) region.shared.write(p * PAGE, pattern(PAGE, p));
  const results = steps.map((step) => {
    try {
      apply(kvm, region, step);
      return "ok";
    } catch (error) {
      if (!(error instanceof HwError)) throw error;
      return `${error.op}: ${error.errno}`;
    }
  });
  const pages = Array.from({ length: PAGES }, (_, p): [number, number, number] => [
    kvm.getMemoryAttributes(GPA + p * PAGE),
    region.shared.allocatedBytes(p * PAGE, PAGE),
    region.guestMemfd.allocatedBytes(p * PAGE, PAGE),
  ]);
  const contents = Array.from({ length: PAGES }, (_, p): [Uint8Array, Uint8Array] => [
    region.shared.read(p * PAGE, PAGE),
    region.guestMemfd.read(p * PAGE, PAGE),
  ]);
  return { results, pages, contents };
}

Deno.test({
  name: "scripted conversions end in the same state on the real kernel and the simulator",
  ignore,
  fn() {
    const seed = Number(Deno.env.get("MEMSTATE_SEED") ?? Math.floor(Math.random() * 2 ** 32));
    console.log("seed", seed);
    const steps = script(new Prng(seed));

    using real = openLinuxKvm();
    console.log("real parts", real.realParts);
    // The real VM is type 0: INIT_SHARED is allowed, and the backend emulates
    // the attribute table with the kernel's rules (PRIVATE accepted).
    using sim = new SimKvm({
      capabilities: { guestMemfdFlags: GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED },
    });
    const a = run(real, steps);
    const b = run(sim, steps);

    for (let i = 0; i < steps.length; i++) {
      assert.equal(a.results[i], b.results[i], `step ${i} ${JSON.stringify(steps[i])}`);
    }
    for (let p = 0; p < PAGES; p++) {
      assert.deepEqual(a.pages[p], b.pages[p], `page ${p}: [attributes, shared, guest_memfd]`);
      assert.deepEqual(a.contents[p][0], b.contents[p][0], `page ${p}: shared contents`);
      assert.deepEqual(a.contents[p][1], b.contents[p][1], `page ${p}: guest_memfd contents`);
    }
    // The script exercised both sides and the refusals.
    assert.ok(a.pages.some(([attr]) => attr !== 0) && a.pages.some(([attr]) => attr === 0));
    assert.ok(a.results.some((r) => r !== "ok"), "some steps were refused");
  },
});
