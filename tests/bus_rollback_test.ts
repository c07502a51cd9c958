// Transactional changes: a refusal anywhere leaves listeners and store as before.
import assert from "node:assert/strict";
import {
  ConversionError,
  DMA_VIEW,
  KVM_VIEW,
  Region,
  RegionFailedError,
  type Section,
  SHARED,
} from "../src/bus/mod.ts";
import { type Call, RecordingListener } from "./helpers/recording_listener.ts";

const MiB = 2 ** 20;
const PAGE = 4096;
const SPAN = 7 * 64 * PAGE;

/** Three participants and a fragmented state so one change makes several calls. */
function setup() {
  const region = new Region({ name: "ram", size: 8 * MiB });
  const log: Call[] = [];
  const kvm = new RecordingListener("kvm", 0, KVM_VIEW, region.pages, log);
  const dma = new RecordingListener("dma", 10, DMA_VIEW, region.pages, log);
  const audit = new RecordingListener("audit", 20, KVM_VIEW, region.pages, log);
  for (const l of [kvm, dma, audit]) region.register(l);
  // Shared islands: a change over SPAN touches four gaps (to-shared) or three islands.
  for (const p of [1, 3, 5]) region.convert(p * 64 * PAGE, 64 * PAGE, "shared");
  return { region, log, listeners: [kvm, dma, audit] };
}

function snapshot(region: Region, listeners: RecordingListener[]) {
  return {
    store: [...region.store.runs()],
    seen: listeners.map((l) => l.populatedRuns()),
  };
}

for (const to of ["shared", "private"] as const) {
  Deno.test(`a participant failing on the 3rd call of a to-${to} change rolls everything back`, () => {
    const { region, log, listeners } = setup();
    const [kvm, dma, audit] = listeners;
    const before = snapshot(region, listeners);
    // The change's third call goes to the listener notified first: kvm (lowest
    // priority) populates first, audit (highest) discards first.
    const target = to === "shared" ? kvm : audit;
    target.failOnCall = target.calls + 3;
    log.length = 0;
    assert.throws(() => region.convert(0, SPAN, to), (e) => {
      assert.ok(e instanceof ConversionError);
      assert.equal(e.listener, target.name);
      assert.equal(e.direction, to === "shared" ? "populate" : "discard");
      assert.equal(e.offset, 0);
      assert.equal(e.size, SPAN);
      assert.match(e.message, /rolled back/);
      assert.match(String((e.cause as Error).message), /refuses/);
      return true;
    });
    assert.deepEqual(snapshot(region, listeners), before);
    for (const l of [kvm, dma, audit]) assert.deepEqual(l.contractViolations, [], l.name);
    // Two calls went out, then their inverses in reverse order.
    assert.equal(log.length, 4);
    assert.deepEqual(
      log.slice(2).map((c) => c.offset),
      log.slice(0, 2).map((c) => c.offset).reverse(),
    );
    assert.equal(region.stats.refused, 1);
    // The region still works.
    target.failOnCall = undefined;
    region.convert(0, SPAN, to);
    assert.deepEqual(kvm.populatedRuns(), RecordingListener.expected(region, KVM_VIEW));
    assert.deepEqual(dma.populatedRuns(), RecordingListener.expected(region, DMA_VIEW));
  });
}

Deno.test("a refusal by a later listener undoes earlier listeners' calls in reverse order", () => {
  const { region, log, listeners } = setup();
  const [, dma] = listeners;
  dma.failOnCall = dma.calls + 1;
  log.length = 0;
  assert.throws(() => region.convert(0, SPAN, "shared"), ConversionError);
  assert.deepEqual(log.map((c) => `${c.name}.${c.kind}`), [
    ...Array(4).fill("kvm.populate"),
    ...Array(4).fill("kvm.discard"),
  ]);
});

Deno.test("a failing rollback marks the region failed; it refuses every further change", () => {
  const { region, listeners } = setup();
  const [kvm, dma] = listeners;
  dma.failOnCall = dma.calls + 1; // refuses its populate ...
  kvm.refuse = (kind) => kind === "discard"; // ... and kvm cannot undo its own
  assert.throws(() => region.convert(0, SPAN, "shared"), (e) => {
    assert.ok(e instanceof RegionFailedError);
    assert.match(e.message, /region ram has failed and refuses changes/);
    assert.match(e.message, /kvm refused the inverse call/);
    return true;
  });
  assert.ok(region.failure);
  kvm.refuse = undefined;
  assert.throws(() => region.convert(2 * MiB, PAGE, "shared"), RegionFailedError);
  assert.throws(
    () => region.register({ name: "late", populate() {}, discard() {} }),
    RegionFailedError,
  );
});

Deno.test("memstate: a listener that accepts double discards gets one discard over the span of a change's discarded runs, and a refusal after it populates exactly those runs again", () => {
  const region = new Region({ name: "ram", size: 8 * MiB });
  const log: string[] = [];
  let refuse = false;
  const listener = (name: string, priority: number, acceptsDoubleDiscard: boolean) => ({
    name,
    priority,
    view: DMA_VIEW,
    acceptsDoubleDiscard,
    populate(s: Section) {
      log.push(`${name} populate ${s.offset / PAGE}+${s.size / PAGE}`);
    },
    discard(s: Section) {
      if (refuse && name === "last") throw new Error("last refuses");
      log.push(`${name} discard ${s.offset / PAGE}+${s.size / PAGE}${s.uniform ? "" : " mixed"}`);
    },
  });
  // Discards go by descending priority: "double", then "single", then "last".
  region.register(listener("double", 30, true));
  region.register(listener("single", 20, false));
  region.register(listener("last", 10, true));
  region.convert(0, 4 * PAGE, "shared");
  region.convert(5 * PAGE, 4 * PAGE, "shared"); // shared [0,4) and [5,9); page 4 private
  log.length = 0;
  refuse = true;
  assert.throws(() => region.convert(0, 9 * PAGE, "private"), ConversionError);
  assert.deepEqual(log, [
    "double discard 0+9 mixed",
    "single discard 0+4",
    "single discard 5+4",
    // The undo, newest first: only the runs that had been populated.
    "single populate 5+4",
    "single populate 0+4",
    "double populate 5+4",
    "double populate 0+4",
  ]);
  assert.deepEqual(
    [...region.store.runs()].map((r) => [r.start, r.end, r.state & SHARED]),
    [[0, 4, SHARED], [4, 5, 0], [5, 9, SHARED], [9, region.pages, 0]],
  );
  refuse = false;
  log.length = 0;
  region.convert(0, 9 * PAGE, "private");
  assert.deepEqual(log, [
    "double discard 0+9 mixed",
    "single discard 0+4",
    "single discard 5+4",
    "last discard 0+9 mixed",
  ]);
});

Deno.test("a refusal's message gives the guest address where the region does not start at 0", () => {
  const refuse = (why: string) => () => {
    throw new Error(why);
  };
  for (const [base, gpa] of [[0, undefined], [4 * 2 ** 30, "(gpa 0x100003000)"]] as const) {
    const region = new Region({ name: "high", size: 8 * MiB, base });
    region.register({ name: "audit", populate: refuse("no room"), discard() {} });
    let e: unknown;
    try {
      region.convert(3 * PAGE, PAGE, "shared");
    } catch (thrown) {
      e = thrown;
    }
    assert.ok(e instanceof ConversionError);
    assert.equal(e.base, base);
    assert.equal(e.section.offset, 3 * PAGE, "offsets stay the region's");
    assert.match(e.message, /^region high: audit refused populate of \[0x3000, \+0x1000\)/);
    if (gpa === undefined) assert.doesNotMatch(e.message, /gpa/);
    else assert.ok(e.message.includes(`[0x3000, +0x1000) ${gpa} while changing`), e.message);
  }
});
