// Traces read as a stream: a trace many times the chunk size replays exactly
// as the in-memory reader reads it (a fast-check property over random line
// mixes and chunk sizes), gzip, standard input, QEMU simpletrace files, long
// lines, following a growing log, and the regions a trace's memslots give.
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseHostConfig } from "../src/host/config/load.ts";
import { ConfigError } from "../src/host/config/errors.ts";
import { runSession } from "../src/host/session.ts";
import type { TraceItem } from "../src/host/trace/event.ts";
import { TraceInputError } from "../src/host/trace/event.ts";
import { memoryMapFromMemslots } from "../src/host/trace/memory_map.ts";
import { parseQemuMemslotLine } from "../src/host/trace/qemu.ts";
import { readTrace } from "../src/host/trace/read.ts";
import { MAX_LINE_LENGTH, openTraceStream, TRACE_CHUNK_SIZE } from "../src/host/trace/stream.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";
import { SimpletraceWriter } from "./helpers/simpletrace.ts";
import { convertLine, LINE_KINDS, traceText } from "./helpers/trace_lines.ts";

const MiB = 2 ** 20;
const CONFIG = {
  name: "stream",
  regions: [
    { name: "low", size: "64MiB", base: 0 },
    { name: "high", size: "64MiB", base: "0x100000000" },
  ],
  devices: [{ type: "iommufd", name: "nic0" }],
  workload: { name: "boot" },
};
const config = () => parseHostConfig(CONFIG, "stream.json");

/** Every item a stream yields, in order. */
async function streamItems(
  path: string,
  options: Parameters<typeof openTraceStream>[1] = {},
): Promise<TraceItem[]> {
  const stream = await openTraceStream(path, options);
  const items: TraceItem[] = [];
  for await (const batch of stream.batches()) items.push(...batch);
  return items;
}

async function tempFile(name: string, data: string | Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "memstate_stream_" });
  const path = `${dir}/${name}`;
  if (typeof data === "string") await Deno.writeTextFile(path, data);
  else await Deno.writeFile(path, data);
  return path;
}

/** The events and problems of an item list, for comparing readers. */
function summary(items: TraceItem[]) {
  return {
    events: items.filter((i) => i.op !== "bad-line" && i.op !== "memslot"),
    errors: items.filter((i) => i.op === "bad-line").map((i) => ({
      line: i.line,
      message: (i as { message: string }).message,
    })),
  };
}

Deno.test("stream: a trace several times the chunk size reads exactly as the whole-text reader", async () => {
  const lines: string[] = [];
  let bytes = 0;
  for (let n = 0; bytes < 5 * TRACE_CHUNK_SIZE; n++) {
    const line = LINE_KINDS[n % LINE_KINDS.length](n);
    lines.push(line);
    bytes += line.length + 2;
  }
  // A BOM, CRLF line ends and no final newline: all of it as a file would have it.
  const text = "\uFEFF" + lines.join("\r\n");
  const path = await tempFile("big.log", text);
  const expected = readTrace(text.slice(1));
  for (const chunkSize of [TRACE_CHUNK_SIZE, 4093, 61]) {
    const got = summary(await streamItems(path, { chunkSize }));
    assert.deepEqual(got.events, expected.events, `chunk size ${chunkSize}`);
    assert.deepEqual(got.errors, expected.errors, `chunk size ${chunkSize}`);
  }
  assert.ok(expected.events.length > 1000 && expected.errors.length > 100);
  // Replayed end to end: every event applied or a no-op, every bad line reported.
  const { report } = await runSession(config(), { trace: path });
  const c = report.conversions;
  assert.equal(c.requested, expected.events.length);
  assert.equal(c.applied + c.noop, c.requested);
  assert.equal(report.errors.length + (report.errorsOmitted ?? 0), expected.errors.length);
  assert.equal(report.errors.length, 1000, "the report keeps the first 1000 problems");
  assert.equal(report.trace!.lines, lines.length);
  assert.equal(report.trace!.bytes, new TextEncoder().encode(text).length);
  assert.deepEqual(report.invariants.violations, []);
});

Deno.test("stream: any mix of lines and any chunk size reads as readTrace does (property)", async () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  const dir = await Deno.makeTempDir({ prefix: "memstate_stream_" });
  let file = 0;
  await fc.assert(
    fc.asyncProperty(
      traceText(200),
      fc.integer({ min: 1, max: 300 }),
      async (text, chunkSize) => {
        const path = `${dir}/${file++}.log`;
        await Deno.writeTextFile(path, text);
        const expected = readTrace(text);
        const got = summary(await streamItems(path, { chunkSize }));
        assert.deepEqual(got.events, expected.events);
        assert.deepEqual(got.errors, expected.errors);
      },
    ),
    { seed, numRuns: 60 },
  );
});

Deno.test("stream: gzip and standard input replay like the plain file", async () => {
  const text = await Deno.readTextFile("examples/traces/tdx-boot.log");
  const plain = (await runSession(
    parseHostConfig(
      { ...CONFIG, regions: "from-trace" },
      "x.json",
    ),
    { trace: "examples/traces/tdx-boot.log" },
  )).report;
  const gz = new Uint8Array(
    await new Response(
      new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  const path = await tempFile("tdx-boot.log.gz", gz);
  const fromTrace = parseHostConfig({ ...CONFIG, regions: "from-trace" }, "x.json");
  const zipped = (await runSession(fromTrace, { trace: path })).report;
  assert.equal(zipped.trace!.compressed, true);
  assert.deepEqual(zipped.conversions, plain.conversions);
  assert.deepEqual(zipped.regions, plain.regions);
  const stdin = (await runSession(fromTrace, {
    trace: "-",
    stdin: new Blob([text]).stream(),
  })).report;
  assert.deepEqual(stdin.conversions, plain.conversions);
  assert.deepEqual(stdin.regions, plain.regions);
  // Corrupt gzip data ends the trace with a bad line, after what could be read.
  const broken = gz.slice();
  broken.fill(0x55, 40, 80);
  const bad = await streamItems(await tempFile("bad.gz", broken));
  assert.equal(bad.at(-1)?.op, "bad-line");
  assert.match((bad.at(-1) as { message: string }).message, /gzip data is corrupt/);
});

Deno.test("stream: a line longer than the limit is one bounded bad line; the next lines read", async () => {
  const huge = "kvm_convert_memory start 0x" + "1".repeat(MAX_LINE_LENGTH + 10);
  const text = [convertLine(1, true), huge, convertLine(2, true), "x".repeat(10 << 20)].join("\n");
  const path = await tempFile("long.log", text);
  const { report } = await runSession(config(), { trace: path, strict: false });
  assert.equal(report.conversions.applied, 2);
  assert.deepEqual(report.errors.map((e) => e.line), [2, 4]);
  for (const e of report.errors) {
    assert.ok(e.message.length < 200, e.message);
    assert.match(e.message, /^line is \d+ characters long, more than 1048576; not read$/);
  }
  // A long malformed event that fits the limit is quoted as a bounded excerpt.
  const long = `kvm_convert_memory start 0x1000 size ${"9".repeat(100_000)} private_to_shared`;
  const one = (await runSession(config(), { trace: await tempFile("l.log", long + "\n") }).catch(
    (e) => e,
  )) as TraceInputError;
  assert.ok(one instanceof TraceInputError);
  assert.ok(one.message.length < 400, one.message);
  assert.match(one.message, /\(\d+ characters\)/);
});

Deno.test("stream: a conversion line over the limit is a bad line, also when one chunk holds it whole", async () => {
  // stream.ts readTextLines reads a conversion line inside a chunk where it lies (qemu.ts
  // quickConvertAt); the length limit holds there as for every other line: trailing blanks
  // that quickConvert would accept make the line too long, not a conversion.
  const padded = convertLine(3, true) + " ".repeat(MAX_LINE_LENGTH);
  const text = [convertLine(1, true), padded, convertLine(2, false)].join("\n") + "\n";
  const path = await tempFile("padded.log", text);
  for (const chunkSize of [TRACE_CHUNK_SIZE, 4 * MiB]) {
    const items = await streamItems(path, { chunkSize });
    assert.deepEqual(items.map((i) => [i.op, i.line]), [
      ["convert", 1],
      ["bad-line", 2],
      ["convert", 3],
    ], `chunk size ${chunkSize}`);
    assert.match(
      (items[1] as { message: string }).message,
      new RegExp(`^line is ${padded.length} characters long`),
    );
  }
});

Deno.test("stream: the end of an overlong line is not read as a line, even where it is a conversion", async () => {
  // readTextLines: once a line is over the limit, the rest of it up to its newline is skipped,
  // also when that rest, whole in the next chunk, is a conversion line the quick path would read.
  const long = "x".repeat(MAX_LINE_LENGTH + 1);
  const conversion = "kvm_convert_memory start 0x1000 size 0x1000 shared_to_private";
  const path = await tempFile("tail.log", `${long}${conversion}\n${conversion}\n`);
  const stream = await openTraceStream(path, { worker: false, chunkSize: long.length });
  const items: TraceItem[] = [];
  for await (const batch of stream.batches()) items.push(...batch);
  assert.deepEqual(items.map((i) => [i.op, i.line]), [["bad-line", 1], ["convert", 2]]);
  assert.equal(stream.stats.unreadable, 1);
  assert.equal(stream.stats.events, 1);
});

function simpletrace(little = true): Uint8Array {
  const w = new SimpletraceWriter(
    ["kvm_run_exit", "kvm_set_user_memory", "kvm_convert_memory", "vfio_region_write"],
    { little },
  );
  // as, slot, flags, gpa, size, ua, fd, fd_offset, ret
  w.event("kvm_set_user_memory", [0, 0, 4, 0, 64 * MiB, 0x7f0000000000, 27, 0, 0]);
  w.event("kvm_set_user_memory", [0, 1, 4, 0x100000000, 64 * MiB, 0x7f1000000000, 27, 0, 0]);
  w.event("kvm_set_user_memory", [1, 0, 4, 0, 64 * MiB, 0x7f0000000000, 27, 0, 0]); // SMM
  w.event("kvm_run_exit", [0, 3]);
  w.event("kvm_convert_memory", [0x200000, 0x200000, "private_to_shared"]);
  w.event("vfio_region_write", ["0000:00:01.0:region0", 0x10, 0xff, 4]);
  w.event("kvm_convert_memory", [0x100001000, 0x1000, "private_to_shared"]);
  w.event("kvm_convert_memory", [0x201000, 0x1000, "shared_to_private"]);
  w.event("kvm_convert_memory", [0x1000, 0x1000, "sideways"]); // bad direction
  w.raw(0xfffffffffffffffen, [3]); // QEMU dropped three events
  return w.bytes();
}

Deno.test("simpletrace: QEMU's binary trace replays with its memslots, in either byte order", async () => {
  for (const little of [true, false]) {
    const path = await tempFile("trace-4242", simpletrace(little));
    const { report } = await runSession(
      parseHostConfig({ ...CONFIG, regions: "from-trace" }, "x.json"),
      { trace: path },
    );
    assert.equal(report.trace!.format, "simpletrace");
    assert.equal(report.trace!.unit, "record");
    assert.deepEqual(report.regions.map((r) => [r.name, r.base, r.size]), [
      ["slot0", 0, 64 * MiB],
      ["slot1", 0x100000000, 64 * MiB],
    ]);
    assert.deepEqual(report.regionsFromTrace!.skipped.map((s) => [s.as, s.slot]), [[1, 0]]);
    assert.deepEqual(report.conversions, {
      requested: 3,
      applied: 3,
      noop: 0,
      ignored: 0,
      failed: 0,
      rejected: 0,
    });
    assert.deepEqual(report.errors.map((e) => e.line), [9, 10]);
    assert.match(report.errors[0].message, /unknown direction "sideways"/);
    assert.match(report.errors[1].message, /QEMU dropped 3 trace events/);
    assert.equal(report.regions[0].sharedBytes, 2 * MiB - 4096);
  }
});

Deno.test("simpletrace: any chunk size reads as the whole file in one chunk (reads share a buffer)", async () => {
  // stream.ts fileChunks reads a simpletrace file into one shared buffer once the format is
  // known: readSimpletrace must copy what it keeps of a chunk before it asks for the next.
  const files = [
    await tempFile("little.simple", simpletrace(true)),
    await tempFile("big.simple", simpletrace(false)),
    new URL("../examples/traces/tdx-boot.simple", import.meta.url).pathname,
  ];
  const items = async (path: string, chunkSize: number) => {
    const stream = await openTraceStream(path, { worker: false, chunkSize });
    const all: TraceItem[] = [];
    for await (const batch of stream.batches()) all.push(...batch);
    return { all, stats: { ...stream.stats } };
  };
  for (const path of files) {
    const whole = await items(path, (await Deno.stat(path)).size);
    assert.ok(whole.all.length > 0, path);
    for (const chunkSize of [1, 2, 7, 23, 24, 25, 64, 4096]) {
      assert.deepEqual(await items(path, chunkSize), whole, `${path}, chunks of ${chunkSize}`);
    }
  }
});

Deno.test("simpletrace: a truncated or corrupt file says where, and what was read stays", async () => {
  const whole = simpletrace();
  const cut = await streamItems(await tempFile("cut", whole.subarray(0, whole.length - 5)));
  assert.match((cut.at(-1) as { message: string }).message, /ends inside a record/);
  assert.equal(cut.filter((i) => i.op === "convert").length, 3);
  const old = new SimpletraceWriter(["kvm_convert_memory"], { version: 3 }).bytes();
  const items = await streamItems(await tempFile("old", old));
  assert.match((items[0] as { message: string }).message, /version 3 is not supported/);
  const corrupt = whole.slice();
  new DataView(corrupt.buffer).setUint32(24 + 30 * 8, 9, true); // garbage in the records
  const c = await streamItems(await tempFile("corrupt", corrupt));
  assert.equal(c.at(-1)?.op, "bad-line");
});

Deno.test("follow: a growing log is read until the signal, then to its end at that moment", async () => {
  const path = await tempFile(
    "growing.log",
    [convertLine(1, true), convertLine(2, true)].join("\n") + "\n",
  );
  const controller = new AbortController();
  const done = runSession(config(), {
    trace: path,
    follow: true,
    signal: controller.signal,
  });
  // The reader reaches the end of the file and waits; then QEMU writes more.
  await new Promise((r) => setTimeout(r, 300));
  await Deno.writeTextFile(path, [convertLine(3, true), convertLine(3, false)].join("\n") + "\n", {
    append: true,
  });
  await new Promise((r) => setTimeout(r, 300));
  await Deno.writeTextFile(path, convertLine(4, true) + "\n", { append: true });
  controller.abort();
  const { report } = await done;
  assert.equal(report.conversions.requested, 5);
  assert.equal(report.conversions.applied, 5);
  assert.equal(report.interrupted, true);
  assert.equal(report.regions[0].sharedBytes, 3 * 4096);
});

Deno.test("follow: a gzip file cannot be followed; a directory or missing trace is refused", async () => {
  const gz = new Uint8Array(
    await new Response(
      new Blob(["x\n"]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  const path = await tempFile("x.gz", gz);
  await assert.rejects(openTraceStream(path, { follow: true }), /gzip-compressed; --follow/);
  await assert.rejects(openTraceStream("/tmp"), /is a directory/);
  await assert.rejects(openTraceStream("/no/such.log"), /file not found/);
});

Deno.test("memslots: kvm_set_user_memory in the log, ftrace and simpletrace.py forms", () => {
  const expected = { op: "memslot", as: 0, slot: 1, flags: 4, gpa: 0x100000000, size: 0x380000000 };
  for (
    const text of [
      "48211@1700000000.100251:kvm_set_user_memory AddrSpace#0 Slot#1 flags=0x4 gpa=0x100000000 " +
      "size=0x380000000 ua=0x7f3ac0000000 guest_memfd=27 guest_memfd_offset=0x80000000 ret=0",
      "kvm_set_user_memory AddrSpace#0 Slot#1 flags=0x4 gpa=0x100000000 size=0x380000000 " +
      "ua=0x7f3ac0000000 ret=0",
      "kvm_set_user_memory 0.000 pid=1 as=0x0 slot=0x1 flags=0x4 guest_phys_addr=0x100000000 " +
      "memory_size=0x380000000 userspace_addr=0x7f3ac0000000 fd=0x1b fd_offset=0x80000000 ret=0x0",
    ]
  ) {
    assert.deepEqual(parseQemuMemslotLine(text, 5), { ...expected, ret: 0, line: 5 }, text);
  }
  assert.equal(
    parseQemuMemslotLine(
      "kvm_set_user_memory 0.000 pid=1 as=0x0 slot=0x1 flags=0x4 guest_phys_addr=0x0 " +
        "memory_size=0x1000 userspace_addr=0x0 fd=0x1b fd_offset=0x0 ret=0xffffffffffffffea",
      1,
    )!.ret,
    -22,
  );
  assert.throws(
    () => parseQemuMemslotLine("kvm_set_user_memory Slot#1", 3),
    /malformed kvm_set_user_memory/,
  );
});

Deno.test("memslots: deleted, replaced, failed, SMM and non-guest_memfd slots make the memory map", () => {
  const slot = (
    line: number,
    s: number,
    gpa: number,
    size: number,
    flags = 4,
    as = 0,
    ret = 0,
  ) => ({
    op: "memslot" as const,
    as,
    slot: s,
    flags,
    gpa,
    size,
    ret,
    line,
  });
  const map = memoryMapFromMemslots([
    slot(1, 0, 0, 2 * MiB),
    slot(2, 1, 0x100000000, 4 * MiB),
    slot(3, 2, 0xffc00000, 4 * MiB, 2), // flash: no guest_memfd
    slot(4, 0, 0, 2 * MiB, 4, 1), // SMM alias
    slot(5, 1, 0x100000000, 0), // deleted...
    slot(6, 1, 0x100000000, 8 * MiB), // ...and set again larger
    slot(7, 3, 0x200000000, 4096, 4, 0, -22), // the ioctl failed
  ]);
  assert.deepEqual(map.regions.map((r) => [r.name, r.base, r.size, r.line]), [
    ["slot0", 0, 2 * MiB, 1],
    ["slot1", 0x100000000, 8 * MiB, 6],
  ]);
  assert.deepEqual(map.skipped.map((s) => [s.as, s.slot, s.line]), [[0, 2, 3], [0, 3, 7], [
    1,
    0,
    4,
  ]]);
  assert.match(map.skipped[0].reason, /no guest_memfd \(flags 0x2\)/);
});

Deno.test("from-trace: the shipped log gives two regions; devices may name them; no memslots is refused", async () => {
  const fromTrace = {
    name: "ft",
    regions: "from-trace",
    devices: [{ type: "iommufd", name: "nic0", region: ["slot0", "slot1"] }],
    workload: { trace: "traces/tdx-boot.log" },
  };
  const cfg = parseHostConfig(fromTrace, "examples/ft.json");
  assert.equal(cfg.regionsFrom, "trace");
  const { report } = await runSession(cfg);
  assert.deepEqual(report.regions.map((r) => r.name), ["slot0", "slot1"]);
  assert.deepEqual(report.regionsFromTrace!.skipped.map((s) => s.slot), [2]);
  assert.equal(report.conversions.ignored, 1);
  assert.deepEqual(report.invariants.violations, []);
  // A device naming a region the trace does not have: one line naming the field.
  const wrong = parseHostConfig(
    { ...fromTrace, devices: [{ type: "iommufd", name: "nic0", region: "ram" }] },
    "examples/ft.json",
  );
  await assert.rejects(runSession(wrong), (e) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /devices\[0\]\.region: unknown region "ram" \(regions: slot0, slot1\)/);
    return true;
  });
  const bare = await tempFile("bare.log", convertLine(1, true) + "\n");
  await assert.rejects(
    runSession(parseHostConfig({ ...fromTrace, workload: { trace: bare } }, "x.json")),
    /no regions to take from the trace: it has no kvm_set_user_memory event/,
  );
  await assert.rejects(
    runSession(parseHostConfig({ ...fromTrace, workload: { name: "boot" } }, "x.json")),
    /"regions": "from-trace" takes the regions from a trace/,
  );
});

function randomBytes(n: number): Uint8Array {
  const rng = new Prng(7);
  return Uint8Array.from({ length: n }, () => rng.int(256));
}

Deno.test("empty and garbage traces are refused, also with --strict", async () => {
  const cases: [string, string | Uint8Array, RegExp][] = [
    ["empty.log", "", /no events to replay: the trace is empty/],
    ["blank.log", "\n\n# nothing\n", /3 lines read \(3 blank or comments\)/],
    ["other.log", "qemu-system-x86_64: warning: x\nkvm_run_exit\n", /2 other trace output/],
    ["bad.log", "kvm_convert_memory start 0x0 size 0x0 private_to_shared\n", /line 1: size/],
    ["bin.dat", randomBytes(100_000), /no events to replay/],
  ];
  for (const [name, data, message] of cases) {
    const path = await tempFile(name, data);
    for (const strict of [false, true]) {
      await assert.rejects(runSession(config(), { trace: path, strict }), (e) => {
        assert.ok(e instanceof TraceInputError, String(e));
        assert.match(e.message, message);
        assert.ok(!e.message.includes("\n"));
        return true;
      }, `${name} strict=${strict}`);
    }
  }
});
