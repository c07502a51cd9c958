/**
 * The benchmark's page-fault note: a store row's repetition that got fresh
 * memory from the kernel is named in the report, so a slow median can be told
 * from a slow store.
 */

import assert from "node:assert/strict";
import {
  FAULT_NOTE_AT,
  faultNote,
  minorFaults,
  pairedMedianRatio,
  threadTimes,
} from "../bench/measurement.ts";

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
