// VFIO type1's start-up budget, number by number (hw/vfio/listener.c
// `vfio_ram_discard_register_listener`): each section counts
// (ROUND_UP(end, g) - ALIGN_DOWN(start, g)) / g entries, QEMU adds
// kvm_get_max_memslots() minus the sections as headroom, and a budget that
// exactly fills dma_entry_limit fits.
import assert from "node:assert/strict";
import { KVM_MAX_MEMSLOTS } from "../src/settings/kernel.ts";
import { vmmRules } from "../src/settings/vmm.ts";
import { type BudgetSection, type1Budget } from "../src/plugins/type1_budget.ts";

const MiB = 2 ** 20;

Deno.test("type1 budget: a section is counted from its start rounded down to its end rounded up", () => {
  const sections: BudgetSection[] = [
    { name: "a", start: 1 * MiB, size: 2 * MiB, granularity: 2 * MiB }, // [0, 4) MiB: 2
    { name: "b", start: 6 * MiB, size: 4096, granularity: 4096 }, // 1
    { name: "c", start: 9 * MiB + 4096, size: 5 * 4096, granularity: 8192 }, // 3
  ];
  const budget = type1Budget(sections, 65535, vmmRules("memstate"));
  assert.deepEqual(budget.sections.map((s) => s.mappings), [2, 1, 3]);
  assert.equal(budget.headroom, 0);
  assert.equal(budget.needed, 6);
});

Deno.test("type1 budget: QEMU's headroom is the memslots minus the sections", () => {
  const sections: BudgetSection[] = [
    { name: "low", start: 0, size: 4 * MiB, granularity: 4096 },
    { name: "high", start: 2 ** 32, size: 4 * MiB, granularity: 4096 },
  ];
  for (const vmm of ["qemu-10.1", "qemu-11.1"] as const) {
    const budget = type1Budget(sections, 65535, vmmRules(vmm));
    assert.equal(budget.headroom, KVM_MAX_MEMSLOTS - 2, vmm);
    assert.equal(budget.needed, 2048 + KVM_MAX_MEMSLOTS - 2, vmm);
  }
});

Deno.test("type1 budget: exactly dma_entry_limit entries fit; one more is exceeded", () => {
  const sections: BudgetSection[] = [{ name: "ram", start: 0, size: 64 * MiB, granularity: 4096 }];
  const rules = vmmRules("memstate");
  assert.equal(type1Budget(sections, 16384, rules).exceeded, false);
  assert.equal(type1Budget(sections, 16383, rules).exceeded, true);
  const qemu = vmmRules("qemu-11.1");
  const needed = 16384 + KVM_MAX_MEMSLOTS - 1;
  assert.equal(type1Budget(sections, needed, qemu).exceeded, false);
  assert.equal(type1Budget(sections, needed - 1, qemu).exceeded, true);
});
