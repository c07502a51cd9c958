// The regex-free reading of common kvm_convert_memory lines agrees with the
// regular expressions on every line it accepts, and leaves the rest to them; read
// where the line lies in a chunk of text (quickConvertAt), it answers as for the
// line alone.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  LOG_HEAD,
  parseQemuTraceLineByPattern,
  quickConvert,
  quickConvertAt,
} from "../src/host/trace/qemu.ts";
import { classifyTraceLine } from "../src/host/trace/read.ts";
import { seedFromEnv } from "../src/util/prng.ts";

const hex = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.integer({ min: 0, max: 2 ** 31 }).map((n) => (n * 4096).toString(16)),
  },
  {
    weight: 1,
    arbitrary: fc.bigInt({ min: 0n, max: (1n << 60n) - 1n }).map((n) => n.toString(16)),
  },
);
const pieces = fc.record({
  prefix: fc.constantFrom("", "48230@1700000000.000001:", "  ", "x: ", "# ", "foo", "\t"),
  start: hex,
  size: hex,
  upper: fc.boolean(),
  gap: fc.constantFrom(" ", "  ", "\t"),
  direction: fc.constantFrom("shared_to_private", "private_to_shared", "shared_to_privat", "x"),
  tail: fc.constantFrom("", " ", "\r", " x", "\t "),
});

Deno.test("quickConvert agrees with the regular expressions wherever it answers", () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  let quick = 0;
  fc.assert(
    fc.property(pieces, (p) => {
      const start = p.upper ? p.start.toUpperCase() : p.start;
      const text = `${p.prefix}kvm_convert_memory start 0x${start}${p.gap}size 0x${p.size} ` +
        `${p.direction}${p.tail}`;
      const fast = quickConvert(text, 7);
      // The same line read where it lies among others, as the stream reader reads a chunk: a
      // commented-out conversion before it, another conversion after it.
      const before = "x\n# kvm_convert_memory start 0x1000 size 0x1000 private_to_shared\n";
      const chunk =
        `${before}${text}\nkvm_convert_memory start 0x2000 size 0x1000 shared_to_private`;
      const from = before.length, to = from + text.length;
      assert.deepEqual(
        quickConvertAt(chunk, from, to, chunk.indexOf(LOG_HEAD, from), 7),
        fast,
        text,
      );
      let slow: unknown;
      try {
        slow = parseQemuTraceLineByPattern(text, 7) ?? "none";
      } catch (e) {
        slow = `error: ${(e as Error).message}`;
      }
      if (fast !== undefined) {
        quick++;
        assert.deepEqual(fast, slow, text);
      }
      // Whatever the quick path leaves, the classifier still answers as the patterns do.
      const item = classifyTraceLine(text, 7);
      if (typeof slow === "string" && slow.startsWith("error")) {
        assert.equal((item as { op: string }).op, "bad-line", text);
      } else if (slow === "none") {
        assert.ok(item === "other" || item === "blank", `${text}: ${JSON.stringify(item)}`);
      } else assert.deepEqual(item, slow, text);
    }),
    { seed, numRuns: 2000 },
  );
  assert.ok(quick > 100, `only ${quick} lines took the quick path`);
});

Deno.test("quickConvert leaves comments, odd spacing, long numbers and empty sizes to the patterns", () => {
  for (
    const text of [
      "# kvm_convert_memory start 0x1000 size 0x1000 private_to_shared",
      "kvm_convert_memory start 0x1000  size 0x1000 private_to_shared",
      "kvm_convert_memory start 0x12345678901234 size 0x1000 private_to_shared",
      "kvm_convert_memory start 0x1000 size 0x0 private_to_shared",
      "xkvm_convert_memory start 0x1000 size 0x1000 private_to_shared",
      "kvm_convert_memory start 0x1000 size 0x1000 private_to_shared extra",
    ]
  ) assert.equal(quickConvert(text, 1), undefined, text);
  assert.deepEqual(
    quickConvert("12@1.5:kvm_convert_memory start 0xAbC000 size 0x2000 shared_to_private\r", 3),
    { op: "convert", gpa: 0xabc000, size: 0x2000, to: "private", line: 3 },
  );
});
