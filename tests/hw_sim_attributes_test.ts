// SimMemoryAttributes.set accepts a call on a quick test of its arguments and
// checks the rest rule by rule (kvm_vm_ioctl_set_mem_attributes' order). The
// rule under test: set succeeds exactly when the kernel's rules hold, judged
// here in exact BigInt arithmetic, and a refused call changes nothing.
// MEMSTATE_SEED replays the random part.
import assert from "node:assert/strict";
import { HwError } from "../src/hw/errors.ts";
import { KVM_MEMORY_ATTRIBUTE_PRIVATE } from "../src/hw/backend.ts";
import { SimMemoryAttributes } from "../src/hw/sim/mod.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

const PAGE = 4096;
const U64_MAX = (1n << 64n) - 1n;

/** Whether the kernel accepts the call (every argument an integer in [0, 2^64], 2^64 being U64_MAX). */
function kernelAccepts(gpa: unknown, size: unknown, attributes: unknown, flags: unknown): boolean {
  const u64 = (v: unknown) =>
    typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 2 ** 64
      ? (v === 2 ** 64 ? U64_MAX : BigInt(v))
      : undefined;
  const [g, s, a, f] = [gpa, size, attributes, flags].map(u64);
  if (g === undefined || s === undefined || a === undefined || f === undefined) return false;
  if (f !== 0n) return false;
  if ((a & ~BigInt(KVM_MEMORY_ATTRIBUTE_PRIVATE)) !== 0n) return false;
  // `address + size < address` in u64: the range reaches 2^64.
  if (s === 0n || g + s > U64_MAX) return false;
  return g % BigInt(PAGE) === 0n && s % BigInt(PAGE) === 0n;
}

const EDGES: unknown[] = [
  0,
  -0,
  4095,
  PAGE,
  PAGE + 1,
  2 * PAGE,
  2 ** 52,
  2 ** 53 - PAGE,
  2 ** 53,
  2 ** 53 + 2 * PAGE,
  2 ** 60,
  2 ** 60 + PAGE + 1, // rounds to an aligned double when added to 2^60
  2 ** 63,
  2 ** 64 - PAGE,
  2 ** 64,
  -PAGE,
  1.5,
  NaN,
  Infinity,
  "4096",
  4096n,
  null,
  undefined,
];

function attempt(table: SimMemoryAttributes, args: unknown[]): unknown {
  try {
    (table.set as (...a: unknown[]) => void).apply(table, args);
    return undefined;
  } catch (e) {
    return e;
  }
}

function checkCall(table: SimMemoryAttributes, args: unknown[], note: string): boolean {
  const runs = table.runCount, calls = table.setCalls;
  const error = attempt(table, args);
  const accepts = kernelAccepts(args[0], args[1], args[2], args[3] ?? 0);
  assert.equal(error === undefined, accepts, `${note}: ${String(error)}`);
  if (error === undefined) {
    const [gpa, size, attributes] = args as number[];
    assert.equal(table.get(gpa), attributes, note);
    assert.equal(table.get(gpa + size - PAGE), attributes, note);
  } else {
    // The rule's own error, named for the call (never the table's internals).
    assert.ok(
      error instanceof HwError || error instanceof TypeError || error instanceof RangeError,
    );
    assert.match(error.message, /^kvm\.setMemoryAttributes: /, note);
    assert.equal(table.runCount, runs, `${note}: a refused call changed the table`);
    assert.equal(table.setCalls, calls, note);
  }
  return accepts;
}

Deno.test("attributes: set accepts exactly what the kernel's rules accept (edge values)", () => {
  const table = new SimMemoryAttributes(KVM_MEMORY_ATTRIBUTE_PRIVATE, PAGE);
  let accepted = 0;
  for (const gpa of EDGES) {
    for (const size of EDGES) {
      for (const attributes of [0, KVM_MEMORY_ATTRIBUTE_PRIVATE]) {
        const args = [gpa, size, attributes];
        if (checkCall(table, args, `set(${args.map(String).join(", ")})`)) accepted++;
      }
    }
  }
  // Each kind of call was seen: accepted ones on both sides of 2^53, refused ones.
  assert.ok(accepted > 20, `${accepted}`);
  // The one that rounds: 2^60 + 4097 bytes is not aligned, even where a double says so.
  assert.throws(() => table.set(2 ** 60, PAGE + 1, 0), (e) => (e as HwError).errno === "EINVAL");
  assert.throws(() => table.set(2 ** 64 - PAGE, PAGE, 0), /wraps/);
});

Deno.test("attributes: set accepts exactly what the kernel's rules accept (random)", () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  const rng = new Prng(seed);
  const table = new SimMemoryAttributes(KVM_MEMORY_ATTRIBUTE_PRIVATE, PAGE);
  const pick = () =>
    rng.chance(0.3)
      ? EDGES[rng.int(EDGES.length)]
      : rng.int(1 << 20) * (rng.chance(0.9) ? PAGE : 1);
  let accepted = 0, refused = 0;
  for (let i = 0; i < 5000; i++) {
    const args = [pick(), pick(), rng.chance(0.9) ? rng.int(2) * 8 : rng.int(64)];
    if (rng.chance(0.05)) args.push(rng.int(2));
    if (checkCall(table, args, `seed ${seed} step ${i}: set(${args.map(String).join(", ")})`)) {
      accepted++;
    } else refused++;
  }
  assert.ok(accepted > 500 && refused > 500, `${accepted} ${refused}`);
});
