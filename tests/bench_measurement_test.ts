/**
 * The benchmark's page-fault note: a store row's repetition that got fresh
 * memory from the kernel is named in the report, so a slow median can be told
 * from a slow store.
 */

import assert from "node:assert/strict";
import { FAULT_NOTE_AT, faultNote, minorFaults } from "../bench/measurement.ts";

Deno.test("faultNote: silent when no repetition reached the threshold or counts are unknown", () => {
  assert.equal(faultNote([]), undefined);
  assert.equal(faultNote([0, 3, FAULT_NOTE_AT - 1]), undefined);
  assert.equal(faultNote([200, Number.NaN]), undefined);
});

Deno.test("faultNote: counts the repetitions at or past the threshold and names the largest", () => {
  assert.equal(
    faultNote([0, FAULT_NOTE_AT, 5, 200]),
    `2 of 4 repetitions took ${FAULT_NOTE_AT} page faults or more (up to 200): ` +
      "memory fresh from the kernel, slower than reused memory",
  );
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
