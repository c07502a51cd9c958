// A simulated migration of the shared / private / plugged map: a full round,
// then rounds of changesSince(mark) while the guest keeps converting, then a
// final round with the guest paused. The destination (restored into the other
// store kind, with KVM and iommufd attached after the restore) must end equal
// to the source, and its plugins must match it. MEMSTATE_SEED replays.
import assert from "node:assert/strict";
import { applySnapshot, PLUGGED, Region, SnapshotError, StaleMarkError } from "../src/bus/mod.ts";
import type { VmmPolicy } from "../src/settings/vmm.ts";
import { SimIoas } from "../src/hw/sim/iommufd.ts";
import { SimKvm } from "../src/hw/sim/kvm_vm.ts";
import { iommufd } from "../src/plugins/iommufd.ts";
import { kvmAttributes } from "../src/plugins/kvm_attributes.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

const PAGE = 4096;
const MiB = 2 ** 20;
const SIZE = 256 * MiB;
const BLOCK = 2 * MiB;

/** Random guest activity: mostly 4 KiB flips, some 2 MiB buffers, some (un)plugs. */
function churn(region: Region, rng: Prng, steps: number): void {
  const pages = region.pages;
  for (let i = 0; i < steps; i++) {
    const roll = rng.next();
    if (roll < 0.75) {
      region.convert(rng.int(pages) * PAGE, PAGE, rng.chance(0.5) ? "shared" : "private");
    } else if (roll < 0.95) {
      const start = rng.int(pages / 512) * 512;
      region.convert(start * PAGE, 512 * PAGE, rng.chance(0.5) ? "shared" : "private");
    } else {
      const block = rng.int(SIZE / BLOCK) * BLOCK;
      const plug = rng.chance(0.6);
      region.change(block, BLOCK, plug ? PLUGGED : 0, plug ? 0 : PLUGGED);
    }
  }
}

function runsOf(region: Region) {
  return [...region.store.runs()];
}

const cases: [("range-tree" | "bitmap"), ("range-tree" | "bitmap"), VmmPolicy][] = [
  ["range-tree", "bitmap", "memstate"],
  ["bitmap", "range-tree", "memstate"],
  ["range-tree", "range-tree", "qemu-11.1"],
  ["bitmap", "bitmap", "qemu-11.1"],
];

for (const [from, to, vmm] of cases) {
  Deno.test(`migration in rounds during churn ends equal (${from} -> ${to}, source ${vmm})`, () => {
    const seed = seedFromEnv();
    console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
    const rng = new Prng(seed);
    const source = new Region({ name: "ram", size: SIZE, base: 2 ** 32, store: from, vmm });
    source.addSource({ name: "vmem0", bits: PLUGGED, granularity: BLOCK });
    churn(source, rng, 3000); // the guest has been running for a while

    // Round 0: the whole map, with a mark taken at the same moment.
    let mark = source.mark();
    const full = source.snapshot();
    const destination = Region.restore(full, { store: to });
    const vm = new SimKvm();
    const kvm = kvmAttributes({ vm });
    const gpu = iommufd({ name: "gpu0", ioas: new SimIoas({ host: vm.host }) });
    kvm.attach(destination);
    gpu.attach(destination);

    // Rounds while the guest keeps converting, less each round (it converges).
    const sent: number[] = [full.length];
    let steps = 4000;
    for (let round = 1; round <= 5; round++) {
      churn(source, rng, steps);
      const changes = source.changesSince(mark);
      source.releaseMarks(changes.next);
      mark = changes.next;
      const delta = changes.encode();
      assert.ok(changes.pages > 0, `seed ${seed} round ${round}: churn changed nothing?`);
      applySnapshot(destination, delta);
      sent.push(delta.length);
      steps = Math.floor(steps / 4);
    }
    // The source diverged since the last round: not equal yet.
    churn(source, rng, 20);
    // Final round: the guest is paused.
    const last = source.changesSince(mark);
    assert.ok(last.pages <= 20 * 512, `seed ${seed}: final round of ${last.pages} pages`);
    const final = last.encode();
    sent.push(final.length);
    applySnapshot(destination, final);
    assert.ok(final.length < full.length, `seed ${seed}: rounds ${sent.join(", ")} bytes`);
    assert.ok(final.length < 1024, `seed ${seed}: final round ${final.length} bytes`);
    console.log(`bytes sent per round: ${sent.join(", ")}`);

    assert.deepEqual(runsOf(destination), runsOf(source), `seed ${seed}`);
    assert.deepEqual(destination.bits.entries(), source.bits.entries());
    assert.deepEqual(destination.sources(), source.sources());
    assert.deepEqual(kvm.verify(destination), [], `seed ${seed}`);
    assert.deepEqual(gpu.verify?.(destination), [], `seed ${seed}`);
    // Nothing changed since the final round.
    assert.equal(source.changesSince(last.next).pages, 0);
  });
}

Deno.test("changesSince: ranges are exact, merged across marks, and released marks are stale", () => {
  const region = new Region({ name: "r", size: 4 * MiB });
  assert.throws(() => region.changesSince({ region: "r", epoch: 1 }), StaleMarkError);
  const a = region.mark();
  region.convert(0, 2 * PAGE, "shared");
  region.convert(0, 2 * PAGE, "shared"); // a no-op is not a change
  const b = region.mark();
  region.convert(PAGE, 2 * PAGE, "private");
  region.convert(100 * PAGE, PAGE, "shared");
  assert.deepEqual(region.changesSince(a).ranges, [{ start: 0, end: 3 }, { start: 100, end: 101 }]);
  const fromB = region.changesSince(b);
  assert.deepEqual(fromB.ranges, [{ start: 1, end: 3 }, { start: 100, end: 101 }]);
  assert.equal(fromB.pages, 3);
  assert.deepEqual(fromB.runs(), [
    { start: 1, end: 3, state: 0 },
    { start: 100, end: 101, state: 1 },
  ]);
  assert.equal(fromB.json().kind, "delta");
  assert.deepEqual(fromB.json().runs, [
    { start: 1, end: 3, state: 0 },
    { start: 100, end: 101, state: 1 },
  ]);
  // Claiming PLUGGED sets it everywhere: every page changed.
  region.bits.claim("plugged");
  assert.deepEqual(region.changesSince(fromB.next).ranges, [{ start: 0, end: region.pages }]);
  region.releaseMarks(b);
  assert.throws(() => region.changesSince(a), StaleMarkError);
  assert.equal(region.changesSince(b).ranges.length, 1);
  // A mark of another region is refused.
  const other = new Region({ name: "r", size: 4 * MiB });
  assert.throws(() => region.changesSince(other.mark()), StaleMarkError);
});

Deno.test("a delta applies only where it covers; a delta of another region shape is refused", () => {
  const source = new Region({ name: "r", size: 4 * MiB });
  const destination = Region.restore(source.snapshot());
  destination.convert(500 * PAGE, PAGE, "shared"); // a difference the delta does not cover
  const mark = source.mark();
  source.convert(10 * PAGE, 5 * PAGE, "shared");
  const delta = source.changesSince(mark).encode();
  const result = applySnapshot(destination, delta);
  assert.deepEqual(result, { changes: 1, pages: 5 });
  assert.deepEqual(runsOf(destination), [
    { start: 0, end: 10, state: 0 },
    { start: 10, end: 15, state: 1 },
    { start: 15, end: 500, state: 0 },
    { start: 500, end: 501, state: 1 },
    { start: 501, end: 1024, state: 0 },
  ]);
  const small = new Region({ name: "r", size: 2 * MiB });
  assert.throws(
    () => applySnapshot(small, delta),
    (e: unknown) => e instanceof SnapshotError && e.code === "shape",
  );
});
