// A one-page change takes its own path in Region.change (#changePage) unless a
// hook, an observer or a coarse listener needs the general one. The rule under
// test: both paths make the same calls, in the same order, with the same
// sections, results, errors, stats and rollbacks. Each test runs the same
// steps on a region that can take the one-page path and on one that an
// observer keeps on the general path, and compares everything.
// MEMSTATE_SEED replays the random test.
import assert from "node:assert/strict";
import {
  type ChangeResult,
  DMA_VIEW,
  KVM_VIEW,
  type Listener,
  PLUGGED,
  Region,
  type Section,
  type View,
} from "../src/bus/mod.ts";
import { Prng, seedFromEnv } from "../src/util/prng.ts";

const PAGE = 4096;
const PAGES = 64;

interface Step {
  name: string;
  kind: string;
  offset: number;
  size: number;
  uniform: boolean | undefined;
}

/** A listener that logs every call (section included) and refuses the calls it is told to. */
class Logged implements Listener {
  /** Calls to refuse, counted across this listener from 1. */
  refuse = new Set<number>();
  calls = 0;
  constructor(
    readonly name: string,
    readonly priority: number,
    readonly view: View,
    readonly log: Step[],
    readonly onCall?: (s: Section) => void,
  ) {}
  populate(s: Section): void {
    this.#call("populate", s);
  }
  discard(s: Section): void {
    this.#call("discard", s);
  }
  #call(kind: string, s: Section): void {
    this.calls++;
    this.log.push({ name: this.name, kind, offset: s.offset, size: s.size, uniform: s.uniform });
    if (this.refuse.has(this.calls)) throw new Error(`${this.name} refuses ${kind} #${this.calls}`);
    this.onCall?.(s);
  }
}

/**
 * A region that takes the one-page path, or (`general`) one that keeps to the
 * general path: an observer needs the planned calls.
 */
function regionOn(general: boolean): Region {
  const region = new Region({ name: "ram", size: PAGES * PAGE });
  if (general) region.observe(() => {});
  return region;
}

/** One of the two regions, with its listeners and everything they were told. */
function subject(general: boolean) {
  const region = regionOn(general);
  region.bits.claim("plugged");
  const log: Step[] = [];
  const views: View[] = [KVM_VIEW, DMA_VIEW, { mask: PLUGGED, value: PLUGGED }, KVM_VIEW];
  const names = ["kvm", "dma", "plug", "audit"];
  const listeners = [0, 10, -5, 10].map((priority, i) =>
    new Logged(names[i], priority, views[i], log)
  );
  for (const [i, l] of listeners.entries()) {
    // One listener hears of a part of the region only.
    region.register(l, i === 2 ? { offset: 16 * PAGE, size: 32 * PAGE } : undefined);
  }
  return { region, log, listeners };
}

type Outcome = { result: unknown } | { error: string; cause: string };

function attempt(region: Region, page: number, setBits: number, clearBits: number): Outcome {
  try {
    return { result: region.change(page * PAGE, PAGE, setBits, clearBits) };
  } catch (e) {
    const error = e as Error;
    return {
      error: `${error.name}: ${error.message}`,
      cause: String((error.cause as Error)?.message ?? error.cause),
    };
  }
}

Deno.test("one-page changes: the same calls, results, errors and stats as the general path", () => {
  const seed = seedFromEnv();
  console.log(`seed ${seed} (set MEMSTATE_SEED to reproduce)`);
  const rng = new Prng(seed);
  const fast = subject(false), general = subject(true);
  let refused = 0, noops = 0, several = 0;
  for (let step = 0; step < 3000; step++) {
    const page = rng.int(PAGES);
    const setBits = rng.int(4), clearBits = rng.int(4);
    // Sometimes one listener refuses its next call, or the one after.
    const victim = rng.chance(0.25) ? rng.int(4) : -1;
    const nth = 1 + rng.int(2);
    for (const s of [fast, general]) {
      if (victim >= 0) s.listeners[victim].refuse.add(s.listeners[victim].calls + nth);
    }
    const before = fast.log.length;
    const got = attempt(fast.region, page, setBits, clearBits);
    const want = attempt(general.region, page, setBits, clearBits);
    const note = `seed ${seed} step ${step}: page ${page} set ${setBits} clear ${clearBits}`;
    assert.deepEqual(got, want, note);
    assert.deepEqual(fast.log, general.log, note);
    assert.deepEqual(fast.region.stats, general.region.stats, note);
    assert.deepEqual([...fast.region.store.runs()], [...general.region.store.runs()], note);
    for (const s of [fast, general]) for (const l of s.listeners) l.refuse.clear();
    if ("error" in got) refused++;
    else {
      // Each listener named once, in the order of the calls (two share a name).
      const told = fast.log.slice(before).map((s) => s.name);
      assert.deepEqual((got.result as ChangeResult).notified, [...new Set(told)], note);
      if ((got.result as ChangeResult).noop) noops++;
    }
    if (fast.log.length - before > 1) several++;
    // A failed rollback fails the region: start both again.
    if (fast.region.failure) {
      assert.equal(fast.region.failure.message, general.region.failure?.message, note);
      Object.assign(fast, subject(false));
      Object.assign(general, subject(true));
    }
  }
  // The steps covered refusals, no-ops and changes that call several listeners.
  assert.ok(refused > 50 && noops > 50 && several > 50, `${refused} ${noops} ${several}`);
});

Deno.test("one-page changes: a listener registered during a change is not called by it", () => {
  for (const general of [false, true]) {
    const region = regionOn(general);
    const log: Step[] = [];
    // Registered on the whole region, after the first in populate order.
    const late = new Logged("late", 10, KVM_VIEW, log);
    let registered = false;
    const first = new Logged("first", 0, KVM_VIEW, log, () => {
      if (!registered) region.register(late);
      registered = true;
    });
    region.register(first);
    const result = region.convert(0, PAGE, "shared");
    // Page 0 was not populated yet when the late listener registered: its
    // replay told it nothing, and this change did not call it either.
    assert.deepEqual(result.notified, ["first"], `general ${general}`);
    assert.deepEqual(log.map((s) => [s.name, s.offset]), [["first", 0]], `general ${general}`);
    region.convert(8 * PAGE, PAGE, "shared");
    assert.deepEqual(log.map((s) => [s.name, s.offset]), [["first", 0], ["first", 8 * PAGE], [
      "late",
      8 * PAGE,
    ]]);
  }
});

Deno.test("one-page changes: a listener unregistered during a change keeps the change whole", () => {
  for (const general of [false, true]) {
    const region = regionOn(general);
    const log: Step[] = [];
    const second = new Logged("second", 10, KVM_VIEW, log);
    const first = new Logged("first", 0, KVM_VIEW, log, () => region.unregister(second));
    region.register(first);
    region.register(second);
    const result = region.convert(0, PAGE, "shared");
    // Both were planned when the change began; the unregistered one is still told.
    assert.deepEqual(result.notified, ["first", "second"], `general ${general}`);
    assert.deepEqual(region.listeners, [first]);
  }
});

Deno.test("one-page changes: an observer hears of each applied one, with its notifications", () => {
  const region = new Region({ name: "ram", size: PAGES * PAGE });
  const log: Step[] = [];
  region.register(new Logged("kvm", 0, KVM_VIEW, log));
  const events: string[] = [];
  region.observe((e) =>
    events.push(e.notifications.map((n) => `${n.listener} ${n.kind} ${n.offset}`).join())
  );
  region.convert(PAGE, PAGE, "shared");
  region.convert(PAGE, PAGE, "shared"); // a no-op: no event
  region.convert(PAGE, PAGE, "private");
  assert.deepEqual(events, [`kvm populate ${PAGE}`, `kvm discard ${PAGE}`]);
});

/** What a region's refused change left: the error, its cause, the log, stats and store. */
function refusal(general: boolean, scenario: (region: Region, log: Step[]) => void) {
  const region = regionOn(general);
  const log: Step[] = [];
  let error = "";
  try {
    scenario(region, log);
  } catch (e) {
    error = `${(e as Error).name}: ${(e as Error).message}`;
  }
  return { error, log, stats: { ...region.stats }, runs: [...region.store.runs()] };
}

/**
 * Runs `scenario` on a region that takes the one-page path and on one an
 * observer keeps on the general path: the same refusal (its error matching
 * `error`), log, stats and store.
 */
function assertSameRefusal(scenario: (region: Region, log: Step[]) => void, error: RegExp) {
  const fast = refusal(false, scenario), general = refusal(true, scenario);
  assert.match(fast.error, error);
  assert.deepEqual(fast, general);
}

Deno.test("one-page changes: a listener that converts the page again, then refuses", () => {
  // The refusal is reported and rolled back from the calls the change chose,
  // not from the state the listener left.
  const scenario = (region: Region, log: Step[]) => {
    let again = true;
    const k = new Logged("k", 0, KVM_VIEW, log, () => {
      if (!again) return;
      again = false;
      region.convert(0, PAGE, "shared"); // re-entrant: the same change, made first
      throw new Error("k refuses after converting the page itself");
    });
    region.register(k);
    region.register(new Logged("d", 5, KVM_VIEW, log));
    region.convert(0, PAGE, "shared");
  };
  assertSameRefusal(scenario, /^ConversionError: .*k refused populate/);
});

Deno.test("one-page changes: a listener that plugs the page before it refuses", () => {
  const scenario = (region: Region, log: Step[]) => {
    region.bits.claim("plugged");
    region.change(0, PAGE, 0, PLUGGED); // unplugged: DMA does not see it shared
    region.register(new Logged("d", 0, DMA_VIEW, log));
    region.register(
      new Logged("k", 1, KVM_VIEW, log, () => {
        region.change(0, PAGE, PLUGGED, 0);
        throw new Error("k refuses after plugging the page");
      }),
    );
    region.convert(0, PAGE, "shared");
  };
  assertSameRefusal(scenario, /^ConversionError: .*k refused populate/);
});

Deno.test("one-page changes: a listener that claims a bit and clears it before it refuses", () => {
  // The bits implied when the change began decide its calls, and their rollback.
  const scenario = (region: Region, log: Step[]) => {
    region.register(new Logged("d", 0, DMA_VIEW, log));
    region.register(
      new Logged("k", 1, KVM_VIEW, log, () => {
        region.bits.claim("plugged");
        region.change(0, PAGE, 0, PLUGGED);
        throw new Error("k refuses after unplugging the page");
      }),
    );
    region.convert(0, PAGE, "shared");
  };
  assertSameRefusal(scenario, /^ConversionError: .*k refused populate/);
});

for (const vmm of ["memstate", "qemu-11.1", "qemu-10.1"] as const) {
  Deno.test(`observers added or removed during a change count from the next one (${vmm})`, () => {
    for (const pages of [1, 2]) {
      const region = new Region({ name: "ram", size: PAGES * PAGE, vmm });
      const added: number[] = [], removed: number[] = [];
      const stop = region.observe((e) => removed.push(e.offset));
      let first = true;
      region.register(
        new Logged("k", 0, KVM_VIEW, [], () => {
          if (!first) return;
          first = false;
          region.observe((e) => added.push(e.offset));
          stop();
        }),
      );
      region.convert(0, pages * PAGE, "shared");
      region.convert(8 * PAGE, pages * PAGE, "shared");
      // The observers present when a change began hear of it, whatever its size and policy.
      assert.deepEqual(added, [8 * PAGE], `${pages} pages`);
      assert.deepEqual(removed, [0], `${pages} pages`);
    }
  });
}
