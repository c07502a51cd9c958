/**
 * The benchmark's page-fault note: a store row's repetition that got fresh
 * memory from the kernel is named in the report, so a slow median can be told
 * from a slow store; and the store rows' collection of young garbage before
 * each build, which keeps their repetitions out of fresh memory.
 */

import assert from "node:assert/strict";
import {
  collectYoungGarbage,
  FAULT_NOTE_AT,
  faultNote,
  minorFaults,
  pairedMedianRatio,
  threadTimes,
} from "../bench/measurement.ts";
import {
  measureConversions,
  resetBitmap,
  reusedBitmapStore,
  UNCOLLECTED_NOTE,
  warmRepsFor,
} from "../bench/store_rows.ts";
import { REPORT_FLAGS } from "../bench/report.ts";
import { boot, dmaScatter, pagesOf } from "../bench/workloads.ts";
import { BitmapStore } from "../src/store/bitmap_store.ts";

Deno.test("collectYoungGarbage: collects only where V8's gc is exposed, and says whether it did", async () => {
  // measurement.ts collectYoungGarbage: `--v8-flags=--expose-gc` puts gc on the global object.
  // Run without --expose-gc (as `task test` runs) it cannot collect; with it, it can.
  assert.equal(collectYoungGarbage(), "gc" in globalThis);
  const module = new URL("../bench/measurement.ts", import.meta.url).href;
  const code = `const m = await import(${
    JSON.stringify(module)
  }); console.log(m.collectYoungGarbage());`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--expose-gc", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(new TextDecoder().decode(out.stderr), "");
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "true");
});

Deno.test("store rows: young garbage is collected before every build, or the row says it was not", () => {
  // store_rows.ts measureConversions: `collect` runs before each store is built, the untimed
  // warm-up's builds included, for both stores; a `collect` that cannot collect is named in
  // every measurement's note, so a row timed in fresh memory does not pass for a clean one.
  const workload = dmaScatter(200, 9);
  let calls = 0;
  const measured = measureConversions(workload, 3, 2, () => {
    calls++;
    return true;
  });
  assert.equal(calls, (2 + 3) * 2, "one collection per build: (warm + timed) x two stores");
  assert.deepEqual(measured.map((m) => m.store), ["bitmap", "range-tree"]);
  for (const m of measured) assert.ok(!(m.note ?? "").includes(UNCOLLECTED_NOTE), m.note);
  const blind = measureConversions(workload, 3, 0, () => false);
  for (const m of blind) assert.ok(m.note?.startsWith(UNCOLLECTED_NOTE), `${m.store}: ${m.note}`);
});

Deno.test("store rows: the collection before a build is outside its timed part", () => {
  // store_rows.ts measureConversions: each timed build reads the clock when it starts and when it
  // ends; the collection comes before the first reading, never between the two. The clock is a
  // stand-in that logs its readings beside the collections.
  const events: string[] = [];
  Object.defineProperty(performance, "now", {
    value: () => {
      events.push("clock");
      return events.length;
    },
    configurable: true,
    writable: true,
  });
  try {
    measureConversions(dmaScatter(50, 9), 2, 1, () => {
      events.push("collect");
      return true;
    });
  } finally {
    delete (performance as { now?: unknown }).now;
  }
  const warm = ["collect", "collect"]; // one untimed build per store
  const timed = ["collect", "clock", "clock"]; // per timed build: collect, then start and end
  assert.deepEqual(events, [...warm, ...timed, ...timed, ...timed, ...timed]);
  assert.ok(!Object.hasOwn(performance, "now"), "the stand-in is gone");
  assert.equal(performance.now, Performance.prototype.now, "the real clock is back");
});

Deno.test("store rows: the 16 TiB boot row warms up as long as the 64 GiB and 1 TiB ones", () => {
  // store_rows.ts warmRepsFor: every row gets its untimed repetitions' worth of conversions,
  // however big its bitmap; with one, the 16 TiB tree was timed before V8 had compiled again the
  // code its page numbers (past 2^30) had made it drop.
  const reps = [2 ** 36, 2 ** 40, 2 ** 44].map((bytes) => warmRepsFor(boot(pagesOf(bytes))));
  assert.deepEqual(reps, [98, 98, 98]);
});

Deno.test("resetBitmap: writes back the pages a workload converted, or all of them when unknown", () => {
  // store_rows.ts resetBitmap: a bitmap that was all `initial` and took `held`'s conversions is
  // all `initial` again; held undefined, or of another initial state, writes every page.
  const workload = boot(2 ** 22, 5);
  const store = new BitmapStore(workload.pages, { bits: workload.bits, initial: workload.initial });
  const { starts, ends, toShared } = workload.conversions;
  for (let i = 0; i < workload.conversions.length; i++) {
    store.update(starts[i], ends[i], toShared[i] ? 1 : 0, toShared[i] ? 0 : 1);
  }
  assert.ok(store.runCount > 1000, `the workload left ${store.runCount} runs`);
  resetBitmap(store, workload, workload.initial);
  assert.deepEqual([...store.runs()], [{ start: 0, end: workload.pages, state: workload.initial }]);
  // A page no conversion covers is left alone by a write-back, but not by a whole reset.
  const outside = workload.pages - 1;
  assert.ok(![...Array(workload.conversions.length).keys()].some((i) => ends[i] > outside));
  store.set(outside, outside + 1, 1);
  resetBitmap(store, workload, workload.initial);
  assert.equal(store.get(outside), 1, "written back: only the converted pages");
  resetBitmap(store, undefined, workload.initial);
  assert.equal(store.get(outside), workload.initial, "not known: every page");
  store.set(outside, outside + 1, 1);
  resetBitmap(store, { ...workload, initial: 1 }, workload.initial);
  assert.equal(store.get(outside), workload.initial, "another initial state: every page");
});

Deno.test("store rows: a warm-up build writes back the converted pages, a timed one every page", () => {
  // store_rows.ts the bitmap's `make`: untimed builds reset cheaply (resetBitmap); a timed build
  // writes every word, since a write-back would leave the lines its conversions touch in the
  // cache. The collection before each build marks a page no conversion covers, and the next
  // collection sees whether the build in between wrote it back. Builds alternate: bitmap, tree.
  const workload = boot(2 ** 22 + 4096, 6);
  const outside = workload.pages - 1;
  const wiped: boolean[] = [];
  let calls = 0;
  measureConversions(workload, 3, 2, () => {
    const store = reusedBitmapStore();
    if (calls++ % 2 === 1 && store?.length === workload.pages) {
      wiped.push(store.get(outside) === workload.initial); // after this rep's bitmap build
    }
    if (store?.length === workload.pages) store.set(outside, outside + 1, 1);
    return true;
  });
  // The first build makes the bitmap (written whole); then one warm-up, then three timed.
  assert.deepEqual(wiped, [true, false, true, true, true]);
});

Deno.test("bench:report and bench:runs run the report with V8's gc exposed", () => {
  // deno.json's task and report.ts REPORT_FLAGS (what report_runs.ts runs each report with): the
  // same flags, --expose-gc among them.
  const config = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url)));
  const task: string = config.tasks["bench:report"];
  const flags = task.split(" ").filter((word) => word.startsWith("--"));
  assert.deepEqual([...flags].sort(), [...REPORT_FLAGS].sort());
  assert.ok(REPORT_FLAGS.includes("--v8-flags=--expose-gc"));
});

Deno.test("faultNote: silent when no repetition reached the threshold or counts are unknown", () => {
  assert.equal(faultNote([]), undefined);
  assert.equal(faultNote([0, 3, FAULT_NOTE_AT - 1]), undefined);
  assert.equal(faultNote([200, Number.NaN]), undefined);
  // Every repetition faulting alike (an end-to-end loop's tables) is no news.
  assert.equal(faultNote([5000, 5010, 5000 + FAULT_NOTE_AT - 1]), undefined);
});

Deno.test("faultNote: counts the repetitions at or past the threshold beyond the fewest", () => {
  assert.equal(
    faultNote([0, FAULT_NOTE_AT, 5, 200]),
    `2 of 4 repetitions took ${FAULT_NOTE_AT} page faults or more beyond the fewest (0; up to ` +
      "200): memory fresh from the kernel, slower than reused memory",
  );
  assert.match(faultNote([300, 300 + FAULT_NOTE_AT, 12000])!, /^2 of 3 .*\(300; up to 12000\)/);
});

Deno.test("minorFaults: grows when fresh memory is first written", () => {
  const before = minorFaults();
  assert.ok(Number.isInteger(before) && before >= 0, `a count, got ${before}`);
  // 64 MiB is past glibc's largest mmap threshold: always fresh pages, one
  // fault each on first write (or one per 2 MiB where huge pages are on).
  const fresh = new Uint8Array(64 * 2 ** 20);
  for (let i = 0; i < fresh.length; i += 4096) fresh[i] = 1;
  assert.ok(minorFaults() - before >= 32, `faults grew by ${minorFaults() - before}`);
});

Deno.test("threadTimes: this thread's time on a core grows by the time it spins; undefined without Linux's schedstat", () => {
  const before = threadTimes();
  let readable = true;
  try {
    Deno.statSync("/proc/thread-self/schedstat");
  } catch {
    readable = false;
  }
  if (!readable) {
    assert.equal(before, undefined);
    console.log("threadTimes: no /proc/thread-self/schedstat here; only its absence is checked");
    return;
  }
  assert.ok(before !== undefined && before.cpuMs >= 0 && before.waitMs >= 0);
  const until = performance.now() + 100;
  while (performance.now() < until) { /* 100 ms on a core (or waiting for one) */ }
  const after = threadTimes()!;
  const grew = after.cpuMs - before.cpuMs + (after.waitMs - before.waitMs);
  // The spin is on a core or in the run queue for all of its 100 ms, less up to a scheduler
  // tick at either end (the counters move at ticks and switches) and any time the hypervisor
  // stole from this virtual CPU (counted in neither); both only grow.
  assert.ok(grew >= 50 && grew < 5000, `grew by ${grew} ms`);
  assert.ok(after.cpuMs >= before.cpuMs && after.waitMs >= before.waitMs);
});

Deno.test("pairedMedianRatio: the median of each repetition's ratio, not the ratio of medians", () => {
  // Ratios 3, 0.5 and 2/3: their median is 2/3, where the medians' ratio (2 / 2) would say 1.
  assert.equal(pairedMedianRatio([3, 1, 2], [1, 2, 3]), 2 / 3);
  // An even count takes the upper middle, as median does.
  assert.equal(pairedMedianRatio([1, 2, 3, 4], [1, 1, 1, 1]), 3);
});
