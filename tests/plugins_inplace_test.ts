// In-place conversion: ordering is what makes it work.
import assert from "node:assert/strict";
import { ConversionError, DMA_VIEW } from "../src/bus/mod.ts";
import { HwError } from "../src/hw/errors.ts";
import { vfioType1 } from "../src/plugins/mod.ts";
import { assertConsistent, MiB, PAGE, simSetup } from "./helpers/sim_setup.ts";

Deno.test("in-place: with default priorities a to-private conversion of DMA-mapped memory succeeds", () => {
  const s = simSetup({ mode: "in-place" });
  s.region.convert(0, 2 * MiB, "shared");
  assert.equal(s.container.mappingCount, 512);
  // DMA (priority 10) unmaps first, dropping its pins, then KVM converts.
  s.region.convert(0, 2 * MiB, "private");
  assert.equal(s.container.mappingCount, 0);
  assertConsistent(s);
});

Deno.test("in-place: with the DMA listener below KVM, to-private fails with EAGAIN and rolls back", () => {
  const s = simSetup({ mode: "in-place", type1: false });
  s.region.convert(0, 2 * MiB, "shared");
  // Attached below KVM: its replay maps (and pins) the shared pages.
  const nic = vfioType1({ name: "nic0", container: s.container, priority: -1 });
  nic.attach(s.region);
  s.plugins.push(nic);
  const before = [...s.region.store.runs()];
  const mappings = s.container.mappings();
  // Discards go in descending priority, so KVM (0) converts while nic0 (-1) still pins.
  assert.throws(() => s.region.convert(0, 2 * MiB, "private"), (e) => {
    assert.ok(e instanceof ConversionError);
    assert.equal(e.listener, "kvm");
    const cause = e.cause as HwError;
    assert.ok(cause instanceof HwError);
    assert.equal(cause.errno, "EAGAIN");
    assert.equal(cause.errorOffset, 0);
    return true;
  });
  assert.deepEqual([...s.region.store.runs()], before);
  assert.deepEqual(s.container.mappings(), mappings);
  assert.equal(s.region.isPopulated({ offset: 0, size: 2 * MiB }, DMA_VIEW), true);
  assertConsistent(s);
});

Deno.test("in-place: a pin in the middle reports the first pinned page's offset", () => {
  const s = simSetup({ mode: "in-place", type1: false });
  s.region.convert(0, 2 * MiB, "shared");
  // A device that only maps one page in the middle, below KVM's priority.
  vfioType1({ name: "nic0", container: s.container, priority: -1 })
    .attach(s.region, { offset: MiB, size: PAGE });
  assert.throws(
    () => s.region.convert(0, 2 * MiB, "private"),
    (e) => e instanceof ConversionError && (e.cause as HwError).errorOffset === MiB,
  );
});
