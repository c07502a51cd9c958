// SimMemoryAttributes.set accepts a call on a quick test of its arguments and
// checks the rest rule by rule. The rule under test: set succeeds exactly when
// the kernel's rules hold (kvm_vm_ioctl_set_mem_attributes, judged here in
// exact BigInt arithmetic), a refused call throws the error of the first rule
// it breaks in the kernel's order, and changes nothing. MEMSTATE_SEED replays
// the random part.
import assert from "node:assert/strict";
import { KVM_MEMORY_ATTRIBUTE_PRIVATE } from "../src/hw/backend.ts";
import { SimMemoryAttributes } from "../src/hw/sim/mod.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

const PAGE = 4096;
const U64_MAX = (1n << 64n) - 1n;

/** The checked u64 a JavaScript value stands for, or why it is none (a TypeError or RangeError). */
function u64(name: string, v: unknown): bigint | RegExp {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    return new RegExp(`^TypeError: kvm\\.setMemoryAttributes: ${name} must be an integer`);
  }
  if (v < 0 || v > 2 ** 64) {
    return new RegExp(`^RangeError: kvm\\.setMemoryAttributes: ${name} must be a u64`);
  }
  return v === 2 ** 64 ? U64_MAX : BigInt(v);
}

/**
 * The error the kernel's rules give the call, as a pattern of `name: message`,
 * or undefined when it is accepted. Rules in kvm_vm_ioctl_set_mem_attributes'
 * order (every failure past the argument types is EINVAL).
 */
function expectedError(
  args: unknown[],
  pageSize: number,
  mask: number,
): RegExp | undefined {
  const names = ["gpa", "size", "attributes", "flags"];
  const values: bigint[] = [];
  for (const [i, name] of names.entries()) {
    const v = u64(name, i === 3 && args.length < 4 ? 0 : args[i]);
    if (v instanceof RegExp) return v;
    values.push(v);
  }
  const [gpa, size, attributes, flags] = values;
  const einval = (what: string) =>
    new RegExp(`^HwError: kvm\\.setMemoryAttributes: EINVAL: .*${what}`);
  if (flags !== 0n) return einval("flags must be 0");
  if (attributes > 0x7fffffffn || (attributes & ~BigInt(mask)) !== 0n) {
    return einval("outside the supported mask");
  }
  if (size === 0n) return einval("size must not be 0");
  // `address + size < address` in u64: the range reaches 2^64.
  if (gpa + size > U64_MAX) return einval("wraps around 2\\^64");
  const page = BigInt(pageSize);
  if (gpa % page !== 0n || size % page !== 0n) return einval("must be aligned to the page size");
  return undefined;
}

const EDGES: unknown[] = [
  0,
  -0,
  Number.MIN_VALUE, // divides to 0: a fraction, not page 0
  -Number.MIN_VALUE,
  2 ** -1070,
  0.5,
  4095,
  PAGE,
  PAGE + 1,
  2 * PAGE,
  2 ** 21,
  2 ** 30,
  2 ** 52,
  2 ** 53 - PAGE,
  2 ** 53,
  2 ** 53 + 2 * PAGE,
  2 ** 60,
  2 ** 60 + PAGE + 1, // rounds to an aligned double when added to 2^60
  2 ** 63,
  2 ** 64 - 2 ** 30,
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

/** Attribute values at the rules' edges, for the supported masks below. */
const ATTRIBUTES: unknown[] = [
  0,
  -0,
  8,
  16,
  24,
  2 ** 31 + 8,
  2 ** 32 + 8,
  0x7fffffff,
  NaN,
  -8,
  8n,
  "8",
];

const FLAGS: unknown[] = [0, -0, 1, NaN, null, "0", 0n];

/** Calls `set` with `args` and checks the outcome against the rules; true when it was accepted. */
function checkCall(
  table: SimMemoryAttributes,
  args: unknown[],
  mask: number,
  note: string,
): boolean {
  const runs = table.runCount, calls = table.setCalls;
  let error: Error | undefined;
  try {
    (table.set as (...a: unknown[]) => void).apply(table, args);
  } catch (e) {
    error = e as Error;
  }
  const expected = expectedError(args, table.pageSize, mask);
  if (expected === undefined) {
    assert.equal(error, undefined, note);
    const [gpa, size, attributes] = args as number[];
    // `+ 0`: -0 attributes are 0 (the table reads them back as 0).
    assert.equal(table.get(gpa), attributes + 0, note);
    assert.equal(table.get(gpa + size - table.pageSize), attributes + 0, note);
    return true;
  }
  assert.ok(error !== undefined, `${note}: accepted, but the rules say ${expected}`);
  assert.match(`${error.name}: ${error.message}`, expected, note);
  assert.equal(table.runCount, runs, `${note}: a refused call changed the table`);
  assert.equal(table.setCalls, calls, note);
  return false;
}

/** The page sizes and supported masks the tables below are made with. */
const TABLES: [number, number][] = [
  [PAGE, KVM_MEMORY_ATTRIBUTE_PRIVATE],
  [2 ** 21, KVM_MEMORY_ATTRIBUTE_PRIVATE | 16],
  [2 ** 30, 0x7fffffff],
  [PAGE, 0],
];

Deno.test("attributes: set accepts exactly what the kernel's rules accept, edge values", () => {
  for (const [pageSize, mask] of TABLES) {
    const table = new SimMemoryAttributes(mask, pageSize);
    let accepted = 0;
    for (const gpa of EDGES) {
      for (const size of EDGES) {
        for (const attributes of [0, KVM_MEMORY_ATTRIBUTE_PRIVATE]) {
          const args = [gpa, size, attributes];
          const note = `page ${pageSize} mask ${mask}: set(${args.map(String).join(", ")})`;
          if (checkCall(table, args, mask, note)) accepted++;
        }
      }
    }
    // Accepted calls on both sides of 2^53 (the edges hold a dozen aligned pairs), refused ones.
    assert.ok(accepted >= 10, `page ${pageSize}: ${accepted} accepted`);
    for (const attributes of ATTRIBUTES) {
      for (const flags of FLAGS) {
        const args = [2 * pageSize, pageSize, attributes, flags];
        checkCall(table, args, mask, `page ${pageSize} mask ${mask}: set(${args.map(String)})`);
      }
    }
  }
  const table = new SimMemoryAttributes(KVM_MEMORY_ATTRIBUTE_PRIVATE, PAGE);
  // The one that rounds: 2^60 + 4097 bytes is not aligned, even where a double says so.
  assert.throws(() => table.set(2 ** 60, PAGE + 1, 0), /must be aligned/);
  assert.throws(() => table.set(2 ** 64 - PAGE, PAGE, 0), /wraps/);
  // A fraction that divides to page 0 is still a fraction.
  assert.throws(() => table.set(Number.MIN_VALUE, PAGE, 8), TypeError);
  assert.equal(table.get(0), 0);
});

Deno.test("attributes: set accepts exactly what the kernel's rules accept, random calls", () => {
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
    const attributes = rng.chance(0.8)
      ? rng.int(2) * 8
      : rng.chance(0.5)
      ? rng.int(64)
      : ATTRIBUTES[rng.int(ATTRIBUTES.length)];
    const args = [pick(), pick(), attributes];
    if (rng.chance(0.1)) args.push(FLAGS[rng.int(FLAGS.length)]);
    const note = `seed ${seed} step ${i}: set(${args.map(String).join(", ")})`;
    if (checkCall(table, args, KVM_MEMORY_ATTRIBUTE_PRIVATE, note)) accepted++;
    else refused++;
  }
  assert.ok(accepted > 500 && refused > 500, `${accepted} ${refused}`);
});
