// register replays populates, unregister discards, replay helpers stop early.
import assert from "node:assert/strict";
import {
  ConversionError,
  DMA_VIEW,
  InvalidChangeError,
  KVM_VIEW,
  Region,
  type Section,
} from "../src/bus/mod.ts";
import { type Call, RecordingListener } from "./helpers/recording_listener.ts";

const MiB = 2 ** 20;

function shapedRegion() {
  const region = new Region({ name: "ram", size: 16 * MiB });
  region.convert(0, MiB, "shared");
  region.convert(4 * MiB, 2 * MiB, "shared");
  region.convert(10 * MiB, 4096, "shared");
  return region;
}

Deno.test("register replays populate for every populated run inside its range", () => {
  const region = shapedRegion();
  const log: Call[] = [];
  const dma = new RecordingListener("dma", 10, DMA_VIEW, region.pages, log);
  region.register(dma, { offset: 512 * 1024, size: 8 * MiB });
  assert.deepEqual(log.map((c) => [c.offset, c.size]), [
    [512 * 1024, 512 * 1024], // clipped to the registered range
    [4 * MiB, 2 * MiB],
  ]);
  // A later change outside the registered range is not its business.
  log.length = 0;
  region.convert(12 * MiB, MiB, "shared");
  assert.deepEqual(log, []);
});

Deno.test("unregister discards exactly what is populated", () => {
  const region = shapedRegion();
  const log: Call[] = [];
  const dma = new RecordingListener("dma", 10, DMA_VIEW, region.pages, log);
  region.register(dma);
  log.length = 0;
  region.unregister(dma);
  assert.deepEqual(log.map((c) => `${c.kind} ${c.offset} ${c.size}`), [
    `discard ${10 * MiB} 4096`,
    `discard ${4 * MiB} ${2 * MiB}`,
    `discard 0 ${MiB}`,
  ]);
  assert.deepEqual(dma.populatedRuns(), []);
  assert.deepEqual(dma.contractViolations, []);
  assert.throws(() => region.unregister(dma), /"dma" is not registered on region ram/);
});

Deno.test("a listener accepting double discards gets one discard of its whole range", () => {
  const region = shapedRegion();
  const calls: string[] = [];
  const listener = {
    name: "lazy",
    acceptsDoubleDiscard: true,
    populate: () => {},
    discard: (s: Section) => calls.push(`${s.offset}+${s.size}`),
  };
  region.register(listener, { offset: 0, size: 8 * MiB });
  region.unregister(listener);
  assert.deepEqual(calls, [`0+${8 * MiB}`]);
});

Deno.test("a refused replay at registration unwinds what it populated", () => {
  const region = shapedRegion();
  const dma = new RecordingListener("dma", 10, DMA_VIEW, region.pages);
  dma.failOnCall = 3;
  assert.throws(() => region.register(dma), (e) => {
    assert.ok(e instanceof ConversionError);
    assert.equal(e.listener, "dma");
    assert.equal(e.direction, "populate");
    return true;
  });
  assert.deepEqual(dma.populatedRuns(), []);
  assert.deepEqual(region.listeners, []);
});

Deno.test("replayPopulated and replayDiscarded walk maximal runs and stop at the first error", () => {
  const region = shapedRegion();
  const seen: [number, number][] = [];
  const none = region.replayPopulated({ offset: 0, size: 16 * MiB }, KVM_VIEW, (s) => {
    seen.push([s.offset, s.size]);
  });
  assert.equal(none, undefined);
  assert.deepEqual(seen, [[0, MiB], [4 * MiB, 2 * MiB], [10 * MiB, 4096]]);

  const stop = new Error("stop here");
  let calls = 0;
  const returned = region.replayPopulated({ offset: 0, size: 16 * MiB }, KVM_VIEW, () => {
    if (++calls === 2) throw stop;
  });
  assert.equal(returned, stop);
  assert.equal(calls, 2);

  const holes: [number, number][] = [];
  region.replayDiscarded({ offset: 100, size: 5 * MiB }, KVM_VIEW, (s) => {
    holes.push([s.offset, s.size]);
  });
  assert.deepEqual(holes, [[MiB, 3 * MiB]]); // unaligned query ranges are clipped, not rounded
});

Deno.test("registration checks the listener and its range, naming what is wrong", () => {
  const region = new Region({ name: "ram", size: 4 * MiB });
  const ok = { name: "x", populate() {}, discard() {} };
  assert.throws(() => region.register({ ...ok, name: "" }), /listener.name: must be a non-empty/);
  assert.throws(
    () => region.register({ ...ok, populate: 5 } as unknown as typeof ok),
    /listener x: populate must be a function/,
  );
  assert.throws(
    () => region.register({ ...ok, view: { mask: 1, value: 2 } }),
    /listener x: view: value 0x2 has bits outside mask 0x1/,
  );
  assert.throws(
    () => region.register({ ...ok, granularity: 1000 }),
    (e) =>
      e instanceof InvalidChangeError &&
      /granularity.*multiple of the page size 4096/.test(e.message),
  );
  assert.throws(
    () => region.register({ ...ok, granularity: 2 * MiB }, { offset: MiB, size: 2 * MiB }),
    /range: must be aligned to listener x's granularity 0x200000/,
  );
  assert.throws(
    () => region.register(ok, { offset: 0, size: 8 * MiB }),
    /range: must be a non-empty byte range/,
  );
  region.register(ok);
  assert.throws(() => region.register(ok), /already registered/);
  // Results and errors name listeners: a second listener of one name is refused, unheard.
  const notified: string[] = [];
  const twin = { ...ok, populate: () => void notified.push("twin") };
  assert.throws(
    () => region.register(twin),
    /listener x: another listener of that name is registered on region ram/,
  );
  region.convert(0, 4096, "shared");
  assert.deepEqual(notified, []);
  region.register({ ...twin, name: "y" }); // replays page 0, shared while it was refused
  region.convert(4096, 4096, "shared");
  assert.deepEqual(notified, ["twin", "twin"]);
});

Deno.test("a change that would tell a coarse listener an unaligned range is refused before anyone hears", () => {
  const region = new Region({ name: "ram", size: 8 * MiB });
  const log: Call[] = [];
  const kvm = new RecordingListener("kvm", 0, KVM_VIEW, region.pages, log);
  const coarse = new RecordingListener("coarse", 10, DMA_VIEW, region.pages, log, 2 * MiB);
  region.register(kvm);
  region.register(coarse);
  assert.throws(() => region.convert(0, 4096, "shared"), /coarse \(granularity 0x200000\)/);
  assert.deepEqual(log, []);
  assert.equal(region.stateAt(0) & 1, 0);
  region.convert(0, 2 * MiB, "shared");
  assert.deepEqual(coarse.populatedRuns(), [[0, 512]]);
});
