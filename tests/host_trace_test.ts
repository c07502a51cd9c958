// Trace readers: QEMU log lines (every prefix form), JSON lines, per-line errors with line
// numbers, and the region rules of locate (MMIO hole ignored, spanning, misaligned).
import assert from "node:assert/strict";
import { type RangeTraceEvent, TraceLineError } from "../src/host/trace/event.ts";
import { parseJsonlLine } from "../src/host/trace/jsonl.ts";
import { locate } from "../src/host/trace/locate.ts";
import { parseQemuTraceLine } from "../src/host/trace/qemu.ts";
import { readTrace } from "../src/host/trace/read.ts";

const GiB = 2 ** 30;

function lineError(fn: () => unknown, line: number, reason: RegExp): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof TraceLineError, String(e));
    assert.equal(e.line, line);
    assert.match(e.reason, reason);
    assert.equal(e.message, `line ${line}: ${e.reason}`);
    return true;
  });
}

Deno.test("qemu: log backend line with and without the pid@time prefix", () => {
  assert.deepEqual(
    parseQemuTraceLine(
      "12345@1700000000.123456:kvm_convert_memory start 0x100000 size 0x1000 private_to_shared",
      7,
    ),
    { op: "convert", gpa: 0x100000, size: 0x1000, to: "shared", line: 7 },
  );
  assert.deepEqual(
    parseQemuTraceLine("kvm_convert_memory start 0x7a000000 size 0x200000 shared_to_private", 1),
    { op: "convert", gpa: 0x7a000000, size: 0x200000, to: "private", line: 1 },
  );
  // Trailing whitespace and CR from CRLF files.
  assert.deepEqual(
    parseQemuTraceLine("kvm_convert_memory start 0x1000 size 0x1000 private_to_shared \r", 2),
    { op: "convert", gpa: 0x1000, size: 0x1000, to: "shared", line: 2 },
  );
});

Deno.test("qemu: newer message context, ftrace and simpletrace.py forms", () => {
  const expected = { op: "convert", gpa: 0x100000000, size: 0x2000, to: "private" };
  for (
    const text of [
      "2026-01-08T17:05:15.123456Z qemu-system-x86_64: (48230:CPU 0/KVM): " +
      "kvm_convert_memory start 0x100000000 size 0x2000 shared_to_private",
      " qemu-system-x86-48230 [003] ..... 1234.567890: tracing_mark_write: " +
      "kvm_convert_memory start 0x100000000 size 0x2000 shared_to_private",
      "kvm_convert_memory 12.345 pid=48230 start=0x100000000 size=0x2000 msg=shared_to_private",
      "kvm_convert_memory 0.000 pid=1 start=0x100000000 size=0x2000 msg=shared_to_private",
    ]
  ) {
    assert.deepEqual(parseQemuTraceLine(text, 3), { ...expected, line: 3 }, text);
  }
});

Deno.test("qemu: other events, blank lines and comments are not events", () => {
  for (
    const text of [
      "",
      "   ",
      "# a comment",
      "48230@1700000000.100682:kvm_run_exit cpu_index 0, reason 3",
      "48230@1700000000.103315:kvm_memory_fault start 0x7fe00000 size 0x1000 flags 0x8",
      "kvm_convert_memory_v2 start 0x0 size 0x1000 private_to_shared",
      "qemu-system-x86_64: kvm_convert_memory: failed to convert memory",
    ]
  ) {
    assert.equal(parseQemuTraceLine(text, 1), null, text);
  }
});

Deno.test("qemu: bad kvm_convert_memory lines name the line and the problem", () => {
  lineError(
    () => parseQemuTraceLine("1@2.3:kvm_convert_memory start 0x1000 private_to_shared", 12),
    12,
    /^malformed kvm_convert_memory event: expected "start 0x<hex> size 0x<hex> shared_to_private\|private_to_shared", got "start 0x1000 private_to_shared"$/,
  );
  lineError(
    () => parseQemuTraceLine("kvm_convert_memory", 3),
    3,
    /malformed .* got ""/,
  );
  lineError(
    () => parseQemuTraceLine("kvm_convert_memory start 0x1000 size 0x1000 to_shared", 4),
    4,
    /^unknown direction "to_shared" \(expected shared_to_private or private_to_shared\)$/,
  );
  lineError(
    () => parseQemuTraceLine("kvm_convert_memory start 0x1000 size 0x0 private_to_shared", 5),
    5,
    /^size: must be positive, got 0$/,
  );
  lineError(
    () =>
      parseQemuTraceLine(
        "kvm_convert_memory start 0xffffffffffffff000 size 0x1000 private_to_shared",
        6,
      ),
    6,
    /^start: must be at most 2\^53 - 1/,
  );
  lineError(
    () => parseQemuTraceLine("kvm_convert_memory start 4096 size 0x1000 private_to_shared", 8),
    8,
    /malformed/,
  );
});

Deno.test("jsonl: convert, plug, unplug, unplug-all; numbers and hex or decimal strings", () => {
  assert.deepEqual(
    parseJsonlLine('{"op":"convert","gpa":"0x100000","size":4096,"to":"shared"}', 1),
    { op: "convert", gpa: 0x100000, size: 4096, to: "shared", line: 1 },
  );
  assert.deepEqual(
    parseJsonlLine('{"op":"convert","gpa":1048576,"size":"8192","to":"private"}', 2),
    { op: "convert", gpa: 0x100000, size: 8192, to: "private", line: 2 },
  );
  assert.deepEqual(
    parseJsonlLine('{"op":"plug","gpa":"0x280000000","size":"0x200000"}', 3),
    { op: "plug", gpa: 0x280000000, size: 0x200000, line: 3 },
  );
  assert.deepEqual(
    parseJsonlLine('{"op":"unplug","gpa":"0x280000000","size":2097152}', 4),
    { op: "unplug", gpa: 0x280000000, size: 0x200000, line: 4 },
  );
  assert.deepEqual(parseJsonlLine('{"op":"unplug-all","device":"vmem0"}', 5), {
    op: "unplug-all",
    device: "vmem0",
    line: 5,
  });
  assert.deepEqual(parseJsonlLine('{"op":"unplug-all"}', 6), { op: "unplug-all", line: 6 });
});

Deno.test("jsonl: bad lines name the line and the problem", () => {
  lineError(() => parseJsonlLine('{"op":"convert",', 1), 1, /^malformed JSON: /);
  lineError(() => parseJsonlLine("[1,2]", 2), 2, /^must be a JSON object, got \[1,2\]$/);
  lineError(
    () => parseJsonlLine('{"op":"flip","gpa":0,"size":4096}', 3),
    3,
    /^op: must be one of "convert", "plug", "unplug", "unplug-all", got "flip"$/,
  );
  lineError(
    () => parseJsonlLine('{"op":"convert","gpa":0,"sise":4096,"to":"shared"}', 4),
    4,
    /^unknown field "sise" for op "convert" \(allowed: op, gpa, size, to\)$/,
  );
  lineError(
    () => parseJsonlLine('{"op":"convert","gpa":0,"size":4096,"to":"public"}', 5),
    5,
    /^to: must be "shared" or "private", got "public"$/,
  );
  lineError(
    () => parseJsonlLine('{"op":"convert","gpa":-4096,"size":4096,"to":"shared"}', 6),
    6,
    /^gpa: must be a non-negative integer or a hex string like "0x1000", got -4096$/,
  );
  lineError(
    () => parseJsonlLine('{"op":"plug","gpa":0,"size":4096.5}', 7),
    7,
    /^size: must be a non-negative integer .*got 4096.5$/,
  );
  lineError(
    () => parseJsonlLine('{"op":"plug","gpa":"0xZZ","size":4096}', 8),
    8,
    /^gpa: .*got "0xZZ"$/,
  );
  lineError(() => parseJsonlLine('{"op":"plug","size":4096}', 9), 9, /^gpa: is required$/);
  lineError(
    () => parseJsonlLine('{"op":"unplug","gpa":0,"size":0}', 10),
    10,
    /^size: must be positive, got 0$/,
  );
  lineError(
    () => parseJsonlLine('{"op":"unplug-all","device":7}', 11),
    11,
    /^device: must be a non-empty string, got 7$/,
  );
  lineError(
    () => parseJsonlLine('{"op":"plug","gpa":"0x1fffffffffffff","size":4096}', 12),
    12,
    /ends past 2\^53 - 1/,
  );
});

Deno.test("readTrace: mixed formats, per-line errors with line numbers, skip counts", () => {
  const text = [
    "# header",
    "",
    "1@1.000001:kvm_convert_memory start 0x1000 size 0x1000 private_to_shared",
    "1@1.000002:kvm_run_exit cpu_index 0, reason 3",
    '{"op":"convert","gpa":"0x1000","size":4096,"to":"private"}',
    "1@1.000003:kvm_convert_memory start 0x2000 size 0x1000 sideways",
    '{"op":"plug","gpa":"0x0"}',
    "kvm_convert_memory start 0x3000 size 0x1000 shared_to_private",
    "",
  ].join("\r\n");
  const result = readTrace(text);
  assert.deepEqual(result.events, [
    { op: "convert", gpa: 0x1000, size: 0x1000, to: "shared", line: 3 },
    { op: "convert", gpa: 0x1000, size: 0x1000, to: "private", line: 5 },
    { op: "convert", gpa: 0x3000, size: 0x1000, to: "private", line: 8 },
  ]);
  assert.deepEqual(result.errors, [
    {
      line: 6,
      message: 'unknown direction "sideways" (expected shared_to_private or private_to_shared)',
    },
    { line: 7, message: "size: is required" },
  ]);
  assert.deepEqual(result.skipped, { blank: 2, other: 1 }); // the final newline ends line 8
  assert.deepEqual(readTrace(""), { events: [], errors: [], skipped: { blank: 0, other: 0 } });
});

const REGIONS = [
  { name: "ram-below-4g", base: 0, size: 2 * GiB, pageSize: 4096 },
  { name: "ram-above-4g", base: 4 * GiB, size: 14 * GiB, pageSize: 4096 },
];

Deno.test("sample traces read cleanly and land in the documented regions", async () => {
  const log = readTrace(
    await Deno.readTextFile(new URL("../examples/traces/tdx-boot.log", import.meta.url)),
  );
  assert.deepEqual(log.errors, []);
  assert.ok(log.events.length >= 200, `only ${log.events.length} events`);
  assert.ok(log.skipped.other > 0, "the sample interleaves other trace events");
  const outcomes = log.events.map((e) => locate(e as RangeTraceEvent, REGIONS));
  assert.equal(outcomes.filter((o) => o === "ignored").length, 1, "one MMIO-hole conversion");
  assert.deepEqual(outcomes.filter((o) => typeof o === "object" && "error" in o), []);
  // SWIOTLB pool made shared 2 MiB at a time.
  assert.ok(log.events.filter((e) => e.op === "convert" && e.size === 0x200000).length >= 16);

  const small = readTrace(
    await Deno.readTextFile(new URL("../examples/traces/small.jsonl", import.meta.url)),
  );
  assert.deepEqual(small.errors, []);
  assert.deepEqual(
    small.events.map((e) => e.op),
    [
      "convert",
      "convert",
      "convert",
      "convert",
      "plug",
      "convert",
      "unplug",
      "convert",
      "unplug-all",
      "convert",
    ],
  );
});

const convert = (gpa: number, size: number, to: "shared" | "private"): RangeTraceEvent => ({
  op: "convert",
  gpa,
  size,
  to,
  line: 1,
});

Deno.test("locate: inside a region gives the region and the offset", () => {
  assert.deepEqual(locate(convert(0x7a000000, 0x200000, "shared"), REGIONS), {
    region: REGIONS[0],
    offset: 0x7a000000,
  });
  assert.deepEqual(locate(convert(4 * GiB + 0x3000, 0x1000, "private"), REGIONS), {
    region: REGIONS[1],
    offset: 0x3000,
  });
  // The last page of a region.
  assert.deepEqual(locate({ op: "plug", gpa: 18 * GiB - 4096, size: 4096, line: 1 }, REGIONS), {
    region: REGIONS[1],
    offset: 14 * GiB - 4096,
  });
});

Deno.test("locate: to-shared in an MMIO hole is ignored; anything else there is out of range", () => {
  assert.equal(locate(convert(0xfee00000, 0x1000, "shared"), REGIONS), "ignored");
  assert.deepEqual(locate(convert(0xfee00000, 0x1000, "private"), REGIONS), {
    error: "out of range: [0xfee00000, 0xfee01000) is in no region",
  });
  assert.deepEqual(locate({ op: "plug", gpa: 3 * GiB, size: 0x200000, line: 1 }, REGIONS), {
    error: "out of range: [0xc0000000, 0xc0200000) is in no region",
  });
  assert.deepEqual(locate({ op: "unplug", gpa: 20 * GiB, size: 4096, line: 1 }, REGIONS), {
    error: "out of range: [0x500000000, 0x500001000) is in no region",
  });
});

Deno.test("locate: partly outside a region, or spanning two regions, is an error naming them", () => {
  assert.deepEqual(locate(convert(2 * GiB - 4096, 8192, "shared"), REGIONS), {
    error: 'partly out of range: [0x7ffff000, 0x80001000) extends beyond region "ram-below-4g" ' +
      "[0x0, 0x80000000)",
  });
  const adjacent = [
    { name: "a", base: 0, size: 0x10000, pageSize: 4096 },
    { name: "b", base: 0x10000, size: 0x10000, pageSize: 4096 },
  ];
  assert.deepEqual(locate(convert(0xf000, 0x2000, "private"), adjacent), {
    error: 'spans two regions: [0xf000, 0x11000) covers parts of "a" [0x0, 0x10000) and ' +
      '"b" [0x10000, 0x20000)',
  });
  // Listed in any order; still named by address order.
  assert.deepEqual(
    locate(convert(0xf000, 0x2000, "shared"), [adjacent[1], adjacent[0]]),
    locate(convert(0xf000, 0x2000, "shared"), adjacent),
  );
});

Deno.test("locate: misaligned to the region's page size is an error", () => {
  assert.deepEqual(locate(convert(0x1800, 0x1000, "shared"), REGIONS), {
    error:
      'misaligned: gpa 0x1800 is not a multiple of the page size 4096 of region "ram-below-4g"',
  });
  assert.deepEqual(locate(convert(0x1000, 0x800, "shared"), REGIONS), {
    error:
      'misaligned: size 0x800 is not a multiple of the page size 4096 of region "ram-below-4g"',
  });
  const huge = [{ name: "huge", base: 0, size: 1 * GiB, pageSize: 0x200000 }];
  assert.deepEqual(locate(convert(0x1000, 0x1000, "shared"), huge), {
    error: 'misaligned: gpa 0x1000 is not a multiple of the page size 2097152 of region "huge"',
  });
  assert.deepEqual(locate(convert(0x200000, 0x400000, "shared"), huge), {
    region: huge[0],
    offset: 0x200000,
  });
});
