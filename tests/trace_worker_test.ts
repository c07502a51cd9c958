// A trace file read on a worker thread gives exactly what the in-thread reader
// gives: the same items in the same batches and the same counts, for every
// format (text of every line kind with LF or CRLF, memslots, virtio-mem JSON
// events, overlong lines, a missing last newline, gzip, corrupt gzip, QEMU
// simpletrace) and for random mixes (a property, seed printed). Stopping early
// or on a signal ends the worker; a file gone before the worker opens it is a
// TraceInputError naming it.
import assert from "node:assert/strict";
import fc from "fast-check";
import type { TraceItem } from "../src/host/trace/event.ts";
import { TraceInputError } from "../src/host/trace/event.ts";
import { emptyTraceStats, type TraceStats } from "../src/host/trace/stats.ts";
import { MAX_LINE_LENGTH, openTraceStream, runnerBatches } from "../src/host/trace/stream.ts";
import { buildHost } from "../src/host/build.ts";
import { parseHostConfig } from "../src/host/config/load.ts";
import { runBatchStream } from "../src/host/event_runner.ts";
import type { Report } from "../src/host/report/report.ts";
import { runSession } from "../src/host/session.ts";
import {
  CREDIT_STEP,
  readOnWorker,
  WORKER_CREDIT,
  WORKER_MIN_BYTES,
  workerCanStart,
  type WorkerReadOptions,
} from "../src/host/trace/_read_on_worker.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";
import { SimpletraceWriter } from "./helpers/simpletrace.ts";
import { convertLine, LINE_KINDS, traceText } from "./helpers/trace_lines.ts";

/** How long a read of a test file may take before it counts as stalled. */
const READ_DEADLINE_MS = 30_000;

/**
 * Runs `consume`, ending it with `close` when it takes longer than
 * {@link READ_DEADLINE_MS}; true when it did. A read that stalls (a worker
 * left without credit) then fails its test instead of hanging the suite.
 */
async function stalls(close: () => void, consume: () => Promise<void>): Promise<boolean> {
  let stalled = false;
  const deadline = setTimeout(() => {
    stalled = true;
    close();
  }, READ_DEADLINE_MS);
  try {
    await consume();
  } finally {
    clearTimeout(deadline);
  }
  return stalled;
}

/** Every batch a stream yields, the counts as they stood after each, and at the end. */
async function read(
  path: string,
  worker: boolean,
  chunkSize?: number,
): Promise<{ batches: TraceItem[][]; counts: TraceStats[]; stats: TraceStats }> {
  const stream = await openTraceStream(path, { worker, ...(chunkSize ? { chunkSize } : {}) });
  assert.equal(stream.worker, worker, "read where it was asked to");
  const batches: TraceItem[][] = [];
  const counts: TraceStats[] = [];
  const stalled = await stalls(() => stream.close(), async () => {
    for await (const batch of stream.batches()) {
      batches.push(batch);
      counts.push({ ...stream.stats }); // what a progress bar reads between batches
    }
  });
  assert.ok(!stalled, `${path}: the read stalled after ${batches.length} batches`);
  return { batches, counts, stats: { ...stream.stats } };
}

/**
 * Asserts that the worker and the in-thread reader agree on `path`. For gzip
 * the compressed bytes read by a given batch are not a property of the file
 * (the decompressor pulls input ahead as its stream's timing allows, in-thread
 * too), so with `gzip` the per-batch counts are compared without `bytes`.
 */
async function assertSameOnWorker(path: string, chunkSize?: number, gzip = false): Promise<number> {
  const inThread = await read(path, false, chunkSize);
  const onWorker = await read(path, true, chunkSize);
  assert.deepEqual(onWorker.batches, inThread.batches, path);
  const counts = (c: TraceStats[]) => gzip ? c.map(({ bytes: _, ...rest }) => rest) : c;
  assert.deepEqual(
    counts(onWorker.counts),
    counts(inThread.counts),
    `${path}: counts after each batch`,
  );
  assert.deepEqual(onWorker.stats, inThread.stats, path);
  return inThread.batches.length;
}

async function tempFile(name: string, data: string | Uint8Array): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "memstate_worker_" });
  const path = `${dir}/${name}`;
  if (typeof data === "string") await Deno.writeTextFile(path, data);
  else await Deno.writeFile(path, data);
  return path;
}

const MEMSLOT = "kvm_set_user_memory AddrSpace#0 Slot#0 flags=0x4 gpa=0x0 size=0x4000000 " +
  "ua=0x7f0000000000 guest_memfd=27 guest_memfd_offset=0x0 ret=0";

/** Every kind of line, one after another. */
function everyKind(eol: string): string {
  const lines = [MEMSLOT];
  for (let n = 0; n < 400; n++) lines.push(LINE_KINDS[n % LINE_KINDS.length](n));
  lines.push('{"op":"plug","gpa":"0x200000","size":"0x200000"}');
  lines.push('{"op":"unplug","gpa":"0x200000","size":"0x200000"}');
  lines.push('{"op":"unplug-all"}');
  lines.push("kvm_convert_memory start 0x" + "1".repeat(MAX_LINE_LENGTH + 10)); // overlong
  lines.push(convertLine(7, true));
  return lines.join(eol); // no newline after the last line
}

Deno.test("worker: every line kind, LF or CRLF, any chunk size: the same batches and counts", async () => {
  for (const eol of ["\n", "\r\n"]) {
    const path = await tempFile("every.log", everyKind(eol));
    for (const chunkSize of [97, 4096, undefined]) {
      const batches = await assertSameOnWorker(path, chunkSize);
      if (chunkSize === 97) assert.ok(batches > 100, `many batches: ${batches}`);
    }
  }
});

Deno.test("worker: gzip, corrupt gzip and simpletrace read as in-thread", async () => {
  const text = await Deno.readTextFile("examples/traces/tdx-boot.log");
  const gz = new Uint8Array(
    await new Response(
      new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  await assertSameOnWorker(await tempFile("boot.log.gz", gz), 512, true);
  const broken = gz.slice();
  broken.fill(0x55, 40, 80);
  const brokenPath = await tempFile("bad.gz", broken);
  await assertSameOnWorker(brokenPath, undefined, true);
  const last = (await read(brokenPath, true)).batches.flat().at(-1);
  assert.match((last as { message: string }).message, /gzip data is corrupt/);
  const w = new SimpletraceWriter(["kvm_set_user_memory", "kvm_convert_memory"]);
  w.event("kvm_set_user_memory", [0, 0, 4, 0, 64 * 2 ** 20, 0x7f0000000000, 27, 0, 0]);
  for (let i = 0; i < 300; i++) {
    w.event("kvm_convert_memory", [i * 4096, 4096, i % 3 ? "private_to_shared" : "sideways"]);
  }
  await assertSameOnWorker(await tempFile("trace-1", w.bytes()), 256);
});

Deno.test("worker: any mix of lines reads as in-thread (property)", async () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  const dir = await Deno.makeTempDir({ prefix: "memstate_worker_" });
  let file = 0;
  await fc.assert(
    fc.asyncProperty(
      traceText(300),
      fc.integer({ min: 1, max: 400 }),
      async (text, chunkSize) => {
        const path = `${dir}/${file++}.log`;
        await Deno.writeTextFile(path, text);
        await assertSameOnWorker(path, chunkSize);
      },
    ),
    { seed, numRuns: 15 },
  );
});

Deno.test("worker: a consumer that stops early, or a signal, ends the worker", async () => {
  const lines = Array.from({ length: 5000 }, (_, n) => convertLine(n, n % 2 === 0));
  const path = await tempFile("long.log", lines.join("\n") + "\n");
  // Stopping after the first batch: the generator's return ends the worker (a worker left
  // running would keep the process alive: see the next test).
  const early = await openTraceStream(path, { worker: true, chunkSize: 1024 });
  for await (const batch of early.batches()) {
    assert.ok(batch.length > 0);
    break;
  }
  early.close();
  const controller = new AbortController();
  const stopped = await openTraceStream(path, {
    worker: true,
    chunkSize: 1024,
    signal: controller.signal,
  });
  let items = 0;
  for await (const batch of stopped.batches()) {
    items += batch.length;
    controller.abort();
  }
  assert.ok(items > 0 && items < lines.length, `stopped after ${items} items`);
});

Deno.test("worker: a process that read a trace on a worker exits (the worker is ended)", async () => {
  const lines = Array.from({ length: 3000 }, (_, n) => convertLine(n, n % 2 === 0));
  const path = await tempFile("exit.log", lines.join("\n") + "\n");
  for (const mode of ["all", "early"]) {
    // A worker left running keeps the process alive: it would be killed at the time limit.
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "tests/helpers/read_on_worker.ts", path, mode],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.signal, null, `${mode}: did not exit by itself; ${stderr}`);
    assert.equal(out.code, 0, stderr);
    const { items, worker } = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(worker, true);
    assert.ok(mode === "all" ? items === 3000 : items > 0 && items < 3000, `${mode}: ${items}`);
  }
});

Deno.test("worker: a trace gone before it is read is a TraceInputError naming it", async () => {
  // The worker opens the file again by its path (a file descriptor cannot cross to a worker).
  const path = await tempFile("gone.log", convertLine(1, true) + "\n");
  const stream = await openTraceStream(path, { worker: true });
  await Deno.remove(path);
  await assert.rejects(
    async () => {
      for await (const _ of stream.batches()) { /* read it all */ }
    },
    (e: unknown) => e instanceof TraceInputError && /gone\.log: file not found/.test(e.message),
  );
  stream.close();
});

Deno.test("worker: by default for regular files of 16 MiB and more; never for stdin or a followed file", async () => {
  const line = convertLine(1, true) + "\n";
  const big = await tempFile("big.log", line.repeat(Math.ceil(WORKER_MIN_BYTES / line.length)));
  const small = await tempFile("small.log", line);
  const opened = [
    await openTraceStream(big),
    await openTraceStream(small),
    await openTraceStream(big, { worker: false }),
    await openTraceStream(small, { worker: true }),
    await openTraceStream(big, { follow: true, signal: AbortSignal.abort() }),
    await openTraceStream("-", { stdin: new Blob([line]).stream(), worker: true }),
  ];
  assert.deepEqual(opened.map((s) => s.worker), [true, false, false, true, false, false]);
  for (const stream of opened) stream.close();
});

Deno.test("worker: without read permission on memstate's files the trace is read in-thread", async () => {
  const lines = Array.from({ length: 2000 }, (_, n) => convertLine(n, n % 2 === 0));
  const path = await tempFile("narrow.log", lines.join("\n") + "\n");
  assert.equal(workerCanStart(), true, "this test runs with read permission");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", `--allow-read=${path}`, "tests/helpers/read_on_worker.ts", path, "all"],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(stderr, "", "no worker error printed");
  assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), {
    items: 2000,
    worker: false,
  });
});

/** A worker module of a test's own, written to a temporary file. */
async function fakeWorker(source: string): Promise<URL> {
  return new URL(`file://${await tempFile("worker.ts", source)}`);
}

/** `readOnWorker` on `path` in chunks of 1 KiB, falling back to {@link inThread}; `extra` overrides. */
function workerRead(path: string, extra: Partial<WorkerReadOptions> = {}) {
  return readOnWorker(path, {
    chunkSize: 1024,
    stats: emptyTraceStats(),
    fallback: inThread(path),
    ...extra,
  });
}

/** The in-thread read of `path`, as `readOnWorker`'s fallback. */
function inThread(path: string): () => AsyncGenerator<TraceItem[]> {
  return async function* () {
    const stream = await openTraceStream(path, { worker: false });
    yield* stream.batches();
  };
}

Deno.test("worker: one that fails to start hands over to the in-thread reader", async () => {
  const lines = Array.from({ length: 500 }, (_, n) => convertLine(n, n % 3 === 0));
  const path = await tempFile("fallback.log", lines.join("\n") + "\n");
  const read = workerRead(path, { module: await fakeWorker('throw new Error("cannot start");\n') });
  const items = (await Array.fromAsync(read.batches)).flat();
  assert.deepEqual(items, (await Array.fromAsync(inThread(path)())).flat());
});

Deno.test("worker: its errors arrive as TraceInputError (bad input) or Error (anything else)", async () => {
  const path = await tempFile("any.log", convertLine(1, true) + "\n");
  for (const input of [true, false]) {
    const read = workerRead(path, {
      module: await fakeWorker(
        `self.onmessage = () => self.postMessage({ kind: "error", message: "boom", input: ${input} });\n`,
      ),
    });
    await assert.rejects(
      () => Array.fromAsync(read.batches),
      (e: unknown) =>
        (e instanceof TraceInputError) === input &&
        (e as Error).message === (input ? "boom" : `${path}: the trace reader failed: boom`),
    );
  }
});

Deno.test("worker: close() or an abort wakes a consumer waiting for a batch; the queue stays bounded", async () => {
  const path = await tempFile("wait.log", convertLine(1, true) + "\n");
  // A worker that never answers: the consumer waits until close() or the signal ends it.
  const silent = await fakeWorker("self.onmessage = () => {};\n");
  const closing = workerRead(path, { module: silent });
  const waiting = closing.batches.next();
  closing.close();
  assert.deepEqual(await waiting, { done: true, value: undefined });
  const controller = new AbortController();
  const aborting = workerRead(path, { signal: controller.signal, module: silent });
  const pending = aborting.batches.next();
  controller.abort();
  assert.deepEqual(await pending, { done: true, value: undefined });
  // A slow consumer: the worker never gets more than its credit ahead.
  const lines = Array.from({ length: 3000 }, (_, n) => convertLine(n, n % 2 === 0));
  const long = await tempFile("slow.log", lines.join("\n") + "\n");
  const slow = workerRead(long);
  let batches = 0;
  const stalled = await stalls(() => slow.close(), async () => {
    for await (const _ of slow.batches) {
      batches++;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  });
  assert.ok(!stalled, `the slow read stalled after ${batches} batches`);
  assert.ok(batches > 50, `${batches} batches`);
  assert.ok(slow.maxQueued <= WORKER_CREDIT, `queued ${slow.maxQueued}`);
  // close() in the middle of a read ends the batches.
  const stream = await openTraceStream(long, { worker: true, chunkSize: 1024 });
  let seen = 0;
  for await (const batch of stream.batches()) {
    seen += batch.length;
    stream.close();
  }
  assert.ok(seen > 0 && seen < lines.length, `${seen} items before close`);
});

Deno.test("worker: credit goes back in one message per CREDIT_STEP batches taken, never more than taken", async () => {
  // _read_on_worker.ts readOnWorker: the worker starts with WORKER_CREDIT and is given
  // CREDIT_STEP more each time CREDIT_STEP of its batches have been taken. Each credit message
  // is recorded here as it is posted, with the batches taken by then; the worker posts empty
  // batches while it has credit, and left without credit for 10 s reports that instead of
  // waiting for ever.
  const total = 3 * WORKER_CREDIT + 2;
  const module = await fakeWorker(`
    let credit = ${WORKER_CREDIT}, posted = 0, timer: ReturnType<typeof setTimeout> | undefined;
    const batch = () => ({
      kind: "batch", count: 0, gpa: new Float64Array(0), size: new Float64Array(0),
      shared: new Uint8Array(0), line: new Float64Array(0), others: [], stats: { lines: posted },
    });
    const run = () => {
      clearTimeout(timer);
      while (credit > 0 && posted < ${total}) { credit--; posted++; self.postMessage(batch()); }
      if (posted === ${total}) self.postMessage({ kind: "end", stats: { lines: posted } });
      else timer = setTimeout(() => self.postMessage({ kind: "error", message: "no credit", input: false }), 10_000);
    };
    self.onmessage = (e: MessageEvent) => {
      if (typeof e.data === "number") credit += e.data;
      run();
    };
  `);
  const path = await tempFile("credit.log", "\n");
  let taken = 0;
  const grants: { credit: unknown; taken: number }[] = [];
  const post = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (this: Worker, message: unknown, ...rest: never[]) {
    // The batch that made this grant due is counted here only once it is handed out.
    if (typeof message === "number") grants.push({ credit: message, taken: taken + 1 });
    return post.call(this, message, ...rest);
  } as typeof post;
  try {
    const read = workerRead(path, { module });
    for await (const _ of read.batches) {
      taken++;
      // Taken slowly, so that the worker is always waiting for credit.
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.equal(taken, total);
    assert.ok(read.maxQueued <= WORKER_CREDIT, `queued ${read.maxQueued}`);
  } finally {
    Worker.prototype.postMessage = post;
  }
  // One grant of CREDIT_STEP when each CREDIT_STEP-th batch is taken, none early or late.
  assert.deepEqual(
    grants,
    Array.from({ length: Math.floor(total / CREDIT_STEP) }, (_, k) => ({
      credit: CREDIT_STEP,
      taken: (k + 1) * CREDIT_STEP,
    })),
  );
});

Deno.test("the runner applies a worker's batches from their columns exactly as it applies items", async () => {
  // event_runner.ts runBatchStream (the column loop, #stepColumns) against step on items: the
  // same counts, problems with the same lines, the same state, the same probe calls (each
  // conversion timed, and afterEvent at the events a probe asks for with nextEvent), strict or
  // not, under memstate's policy and QEMU 11.1's (whose first misaligned conversion stops the
  // VM), with a device timed to attach and detach at event numbers (the one-by-one way), with
  // conversions that are applied, no-ops, misaligned, out of range (ignored to shared, rejected
  // to private) and lines of every other kind between them.
  const seed = seedFromEnv();
  console.log(`runner on columns: seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  const rng = new Prng(seed);
  const lines: string[] = [];
  // First only lines that go through (conversions inside the region, lines of no event), so that
  // a run that stops (strict, QEMU's VM stop) stops in the middle of a stretch of conversions.
  for (let n = 0; n < 1500; n++) {
    if (rng.chance(0.6)) lines.push(convertLine(rng.int(16384), rng.chance(0.5)));
    else lines.push(LINE_KINDS[rng.int(6)](n)); // 6 and 7 are bad lines
  }
  for (let n = 1500; n < 4000; n++) {
    const pick = rng.int(10);
    if (pick < 6) lines.push(convertLine(rng.int(20_000), rng.chance(0.5))); // past 64 MiB: no region
    else if (pick === 6) {
      lines.push(
        `kvm_convert_memory start 0x${(rng.int(16384) * 4096 + 512).toString(16)} ` +
          "size 0x1000 private_to_shared",
      ); // misaligned
    } else lines.push(LINE_KINDS[rng.int(LINE_KINDS.length)](n));
  }
  const path = await tempFile("columns.log", lines.join("\n") + "\n");
  const hosts = {
    plain: parseHostConfig({
      name: "columns",
      regions: [{ name: "low", size: "64MiB", base: 0 }],
      devices: [{ type: "iommufd", name: "nic0" }],
      workload: { name: "boot" },
    }, "columns.json"),
    timed: parseHostConfig({
      name: "columns-timed",
      regions: [{ name: "low", size: "64MiB", base: 0 }],
      devices: [
        { type: "iommufd", name: "nic0" },
        { type: "iommufd", name: "nic1", attachAt: 700, detachAt: 1900 },
      ],
      workload: { name: "boot" },
    }, "columns-timed.json"),
  };
  // `sampled`: the probe asks for events now and then (nextEvent); otherwise it is told after
  // every event, so that a run that stops shows whether the probe heard of the stopping one.
  const variants = [
    { host: "plain", strict: false, vmm: "memstate", sampled: true, progress: false },
    { host: "plain", strict: true, vmm: "memstate", sampled: false, progress: false },
    { host: "plain", strict: false, vmm: "qemu-11.1", sampled: false, progress: false },
    { host: "timed", strict: false, vmm: "memstate", sampled: true, progress: false },
    { host: "plain", strict: false, vmm: "memstate", sampled: false, progress: true },
  ] as const;
  for (const { host: hostName, strict, vmm, sampled, progress } of variants) {
    const config = hosts[hostName];
    const outcome = async (worker: boolean) => {
      const stream = await openTraceStream(path, { worker, chunkSize: 4096 });
      assert.equal(stream.worker, worker);
      using host = buildHost(config, { vmm });
      const calls = { times: [] as number[], events: [] as number[], progress: [] as number[] };
      let due = 0;
      const probe = {
        conversionTime: (_ms: number, weight: number) => void calls.times.push(weight),
        afterEvent: (events: number) => {
          calls.events.push(events);
          due = events + 1 + (events % 7); // now and then, unevenly
        },
        ...(sampled ? { nextEvent: () => due } : {}),
      };
      const { elapsedMs: _, ...result } = await runBatchStream(host, runnerBatches(stream), {
        strict,
        probe,
        ...(progress
          ? { onProgress: (done: number) => void calls.progress.push(done), progressEvery: 97 }
          : {}),
      });
      stream.close();
      return { result, calls, runs: [...host.regions[0].store.runs()] };
    };
    const columns = await outcome(true);
    const items = await outcome(false);
    const variant =
      `${hostName}, strict ${strict}, ${vmm}, sampled ${sampled}, progress ${progress}`;
    assert.deepEqual(columns, items, variant);
    const c = items.result.conversions;
    if (strict || vmm !== "memstate") {
      assert.ok(items.result.stoppedAt !== undefined, `${variant}: stops at the first problem`);
      assert.ok(c.applied > 0, `${variant}: ${JSON.stringify(c)}`);
    } else assert.ok(c.applied > 100 && c.rejected > 10 && c.ignored > 10, JSON.stringify(c));
    if (hostName === "timed") assert.equal(items.result.hotplug, 2, "nic1 attached and detached");
    assert.ok(items.calls.events.length > 20 && items.calls.times.length > 100, variant);
    if (progress) assert.ok(items.calls.progress.length > 20, `${variant}: progress reported`);
  }
});

Deno.test("a session replays a trace file on the worker exactly as the same bytes read in-thread", async () => {
  // session.ts: runnerBatches + runBatchStream for a file of WORKER_MIN_BYTES and more, with the
  // regions taken from the trace (scanMemoryMap unpacks the first column batches) and progress
  // reported between batches; standard input is always read in-thread. Same report either way.
  const { traceChunks } = await import("../bench/trace_stream.ts");
  const parts: Uint8Array[] = [];
  let bytes = 0;
  for (const chunk of traceChunks(WORKER_MIN_BYTES + 2 ** 20, 7)) {
    parts.push(chunk);
    bytes += chunk.length;
  }
  const tail = new TextEncoder().encode(
    "kvm_convert_memory start 0x100000200 size 0x1000 private_to_shared\n" + // misaligned
      "a line that is not an event\n" +
      convertLine(3, true) + "\n",
  );
  parts.push(tail);
  const file = new Uint8Array(bytes + tail.length);
  let at = 0;
  for (const p of parts) {
    file.set(p, at);
    at += p.length;
  }
  const path = await tempFile("session.log", file);
  // The runner gets this file's batches from the worker, conversions in columns (not items).
  const probe = await openTraceStream(path);
  assert.equal(probe.worker, true, "a file this size is read on the worker");
  let columns = 0;
  for await (const batch of runnerBatches(probe)) if (!Array.isArray(batch)) columns++;
  assert.ok(columns > 10, `${columns} column batches`);
  const config = parseHostConfig({
    name: "from-trace",
    regions: "from-trace",
    devices: [{ type: "iommufd", name: "nic0" }],
    workload: { trace: path },
  }, "session.json");
  const progress: number[] = [];
  const onWorker = await runSession(config, { onProgress: (done) => void progress.push(done) });
  const inThread = await runSession(config, {
    trace: "-",
    stdin: ReadableStream.from([file]),
  });
  const same = (r: Report) => ({
    conversions: r.conversions,
    events: r.events,
    errors: r.errors,
    regions: r.regions,
    plugins: r.plugins,
    invariants: r.invariants,
    lines: r.trace?.lines,
    // How many conversions were timed and how many they stand for (not their times, which vary).
    timed: r.latency?.count,
    represents: r.latency?.represents,
    samples: r.timeline?.events,
  });
  assert.deepEqual(same(onWorker.report), same(inThread.report));
  // Past the conversions timed in full, one in SAMPLE_EVERY stands for SAMPLE_EVERY.
  const timed = onWorker.report.latency!;
  assert.ok(timed.count < timed.represents, `${timed.count} timed for ${timed.represents}`);
  assert.ok(
    onWorker.report.conversions.applied > 10_000,
    JSON.stringify(onWorker.report.conversions),
  );
  // The misaligned conversion near the end is a problem with its line number, found after the
  // worker's batches (other lines a real log mixes are not problems).
  const last = onWorker.report.errors.at(-1)!;
  assert.equal(last.line, onWorker.report.trace!.lines - 2);
  assert.match(last.message, /misaligned/);
  assert.ok(progress.length > 10 && progress.at(-1) === file.length, `${progress.length} reports`);
});
