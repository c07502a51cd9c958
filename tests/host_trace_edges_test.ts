// Where trace events land, at the edges of their regions: an event may end
// exactly where its region ends but not one page later; a conversion to
// private that hits no region is an error (only to-shared is ignored, as QEMU
// ignores MMIO); a size of 0 is never an event.
import assert from "node:assert/strict";
import { locate } from "../src/host/trace/locate.ts";
import { readTrace } from "../src/host/trace/read.ts";

const PAGE = 4096;
const regions = [{ name: "ram", base: 2 ** 32, size: 16 * PAGE, pageSize: PAGE }];

Deno.test("trace edges: an event ending at its region's end lands; one page more is out of range", () => {
  const end = 2 ** 32 + 16 * PAGE;
  const last = locate(
    { op: "convert", gpa: end - PAGE, size: PAGE, to: "shared", line: 1 },
    regions,
  );
  assert.deepEqual(last, { region: regions[0], offset: 15 * PAGE });
  const past = locate(
    { op: "convert", gpa: end - PAGE, size: 2 * PAGE, to: "shared", line: 2 },
    regions,
  );
  assert.match((past as { error: string }).error, /^partly out of range/);
  const before = locate({ op: "plug", gpa: 2 ** 32 - PAGE, size: 2 * PAGE, line: 3 }, regions);
  assert.match((before as { error: string }).error, /^partly out of range/);
});

Deno.test("trace edges: outside RAM only a conversion to shared is ignored", () => {
  const hole = 0xfee00000;
  assert.equal(
    locate({ op: "convert", gpa: hole, size: PAGE, to: "shared", line: 1 }, regions),
    "ignored",
  );
  for (
    const event of [
      { op: "convert", gpa: hole, size: PAGE, to: "private", line: 2 },
      { op: "plug", gpa: hole, size: PAGE, line: 3 },
      { op: "unplug", gpa: hole, size: PAGE, line: 4 },
    ] as const
  ) {
    assert.match((locate(event, regions) as { error: string }).error, /^out of range/, event.op);
  }
});

Deno.test("trace edges: size 0 is an error in every form, and simpletrace lines are read", () => {
  const trace = [
    "kvm_convert_memory start 0x100000000 size 0x0 private_to_shared",
    '{"op":"convert","gpa":"0x100000000","size":0,"to":"shared"}',
    "kvm_convert_memory 0.000 pid=7 start=0x100000000 size=0x1000 msg=private_to_shared",
  ].join("\n");
  const { events, errors } = readTrace(trace);
  assert.deepEqual(errors.map((e) => [e.line, e.message]), [
    [1, "size: must be positive, got 0"],
    [2, "size: must be positive, got 0"],
  ]);
  assert.deepEqual(events, [{ op: "convert", gpa: 2 ** 32, size: PAGE, to: "shared", line: 3 }]);
});
