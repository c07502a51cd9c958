// A listener's calls are synchronous: the bus never awaits them. An async populate or discard
// is refused at registration; a call that returns a promise anyway is a refusal, rolled back as
// the policy says, on every path (one page, several runs, a replay, a rollback, QEMU's rounds),
// and its rejection is handled: it never ends the process as an unhandled one.
import assert from "node:assert/strict";
import {
  ConversionError,
  DMA_VIEW,
  type Listener,
  Region,
  RegionFailedError,
  ReplayError,
  type Section,
} from "../src/bus/mod.ts";
import { VMM_POLICIES, type VmmPolicy } from "../src/settings/vmm.ts";

const PAGE = 4096;
const MiB = 2 ** 20;

/** Lets a rejection nobody handled reach the test runner (which fails the test on one). */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}

/** True when `e` or an error it wraps has a message matching `re`. */
function causedBy(e: unknown, re: RegExp): boolean {
  for (let c = e, i = 0; c instanceof Error && i < 8; c = c.cause, i++) {
    if (re.test(c.message)) return true;
  }
  return false;
}

/** A listener that logs its calls and, when `late` says so, returns a rejected promise. */
function listener(name: string, priority: number, log: string[]) {
  const late = { populate: false, discard: false };
  const reply = (kind: "populate" | "discard", s: Section) => {
    log.push(`${name} ${kind} ${s.offset / PAGE}+${s.size / PAGE}`);
    return late[kind] ? Promise.reject(new Error(`${name} fails later`)) : undefined;
  };
  const l: Listener = {
    name,
    priority,
    view: DMA_VIEW,
    populate: (s) => reply("populate", s) as unknown as void,
    discard: (s) => reply("discard", s) as unknown as void,
  };
  return { listener: l, late };
}

Deno.test("listener: an async populate or discard is refused at registration, naming it and the hook", async () => {
  const region = new Region({ name: "ram", size: MiB });
  let calls = 0;
  const kinds: [string, Listener["populate"]][] = [
    ["an async function", async () => {
      await 0;
      calls++;
    }],
    [
      "an async generator function",
      async function* () {
        yield calls++;
      } as unknown as Listener["populate"],
    ],
    [
      "a generator function",
      function* () {
        yield calls++;
      } as unknown as Listener["populate"],
    ],
  ];
  for (const [how, fn] of kinds) {
    for (const hook of ["populate", "discard"] as const) {
      const l: Listener = { name: "late", populate() {}, discard() {}, [hook]: fn };
      assert.throws(
        () => region.register(l),
        (e) =>
          e instanceof TypeError &&
          e.message === `listener late: ${hook} must be synchronous; it is ${how}`,
        `${hook}: ${how}`,
      );
    }
  }
  assert.deepEqual(region.listeners, []);
  region.convert(0, 2 * PAGE, "shared");
  assert.equal(calls, 0);
  await settle();
});

for (const vmm of VMM_POLICIES) {
  Deno.test(`listener: a populate that returns a promise refuses the change under ${vmm}, on one page and on several runs`, async () => {
    for (const pages of [1, 3]) {
      const log: string[] = [];
      const region = new Region({ name: "ram", size: MiB, vmm });
      const first = listener("first", 0, log);
      const late = listener("late", 10, log);
      region.register(first.listener);
      region.register(late.listener);
      // Three pages with the middle one shared already: two runs flip.
      if (pages === 3) region.convert(PAGE, PAGE, "shared");
      late.late.populate = true;
      log.length = 0;
      assert.throws(() => region.convert(0, pages * PAGE, "shared"), (e) => {
        assert.ok(e instanceof ConversionError, String(e));
        assert.equal(e.listener, "late");
        assert.equal(e.direction, "populate");
        assert.match(
          e.message,
          /late refused populate .*: populate returned a Promise; populate must be synchronous/,
        );
        return true;
      });
      assert.equal(log.filter((l) => l.startsWith("late populate")).length, 1, log.join(", "));
      if (vmm === "memstate") {
        // Everything rolled back: the first listener heard the inverse, the store is as before.
        assert.deepEqual(
          log,
          pages === 1 ? ["first populate 0+1", "late populate 0+1", "first discard 0+1"] : [
            "first populate 0+1",
            "first populate 2+1",
            "late populate 0+1",
            "first discard 2+1",
            "first discard 0+1",
          ],
        );
        assert.equal(region.isPopulated({ offset: 0, size: PAGE }), false);
        assert.equal(region.isPopulated({ offset: 2 * PAGE, size: PAGE }), false);
      } else if (vmm === "qemu-11.1") {
        // QEMU 11.1 discards every listener notified, the failing one included.
        assert.ok(log.includes("late discard 0+1"), `${log}`);
      }
    }
    await settle();
  });

  Deno.test(`listener: a discard that returns a promise is a refusal under ${vmm} (ignored where QEMU cannot refuse one)`, async () => {
    const log: string[] = [];
    const region = new Region({ name: "ram", size: MiB, vmm });
    const late = listener("late", 10, log);
    region.register(late.listener);
    region.convert(0, 4 * PAGE, "shared");
    late.late.discard = true;
    for (const size of [PAGE, 2 * PAGE]) {
      if (vmm === "memstate") {
        assert.throws(
          () => region.convert(0, size, "private"),
          (e) =>
            e instanceof ConversionError && e.direction === "discard" &&
            /discard returned a Promise; discard must be synchronous/.test(e.message),
        );
        assert.equal(region.isPopulated({ offset: 0, size: 4 * PAGE }), true, "rolled back");
      } else {
        const result = region.convert(0, size, "private");
        assert.match(result.ignoredErrors?.[0] ?? "", /discard returned a Promise.*\(ignored/);
      }
    }
    await settle();
  });

  Deno.test(`listener: a replayed populate that returns a promise is a refused replay under ${vmm}`, async () => {
    const log: string[] = [];
    const region = new Region({ name: "ram", size: MiB, vmm });
    region.convert(0, 2 * PAGE, "shared");
    const late = listener("late", 10, log);
    late.late.populate = true;
    const expected: Record<VmmPolicy, new (...a: never[]) => Error> = {
      "memstate": ConversionError,
      "qemu-11.1": ReplayError,
      "qemu-10.1": RegionFailedError,
    };
    assert.throws(() => region.register(late.listener), (e) => {
      assert.ok(e instanceof expected[vmm], String(e));
      assert.ok(causedBy(e, /^populate returned a Promise; populate must be synchronous/), `${e}`);
      return true;
    });
    if (vmm === "memstate") assert.deepEqual(region.listeners, []);
    if (vmm === "qemu-11.1") assert.deepEqual(region.listeners, [late.listener]);
    if (vmm === "qemu-10.1") {
      assert.throws(() => region.convert(0, PAGE, "private"), RegionFailedError);
    }
    await settle();
  });
}

Deno.test("listener: an inverse call that returns a promise fails the rollback, and the region", async () => {
  const log: string[] = [];
  const region = new Region({ name: "ram", size: MiB });
  const first = listener("first", 0, log);
  const refuses: Listener = {
    name: "refuses",
    priority: 10,
    populate() {
      throw new Error("no");
    },
    discard() {},
  };
  region.register(first.listener);
  region.register(refuses);
  first.late.discard = true; // its inverse call, a discard, returns a promise
  assert.throws(
    () => region.convert(0, PAGE, "shared"),
    (e) => e instanceof RegionFailedError && causedBy(e, /discard returned a Promise/),
  );
  assert.throws(() => region.convert(PAGE, PAGE, "shared"), RegionFailedError);
  await settle();
});

Deno.test("conversion hook: an async before or after is refused where given; a returned promise fails the conversion", async () => {
  // region.ts setConversionHook and #hookStep: the hook makes kvm_convert_memory's KVM calls
  // around the change, and memstate never awaits it.
  const region = new Region({ name: "ram", size: MiB });
  const step = async () => {
    await 0;
  };
  for (const which of ["before", "after"] as const) {
    const hook = { name: "kvm", before() {}, after() {}, [which]: step };
    assert.throws(
      () => region.setConversionHook(hook),
      new RegExp(`hook kvm: ${which} must be synchronous; it is an async function`),
    );
  }
  assert.equal(region.conversionHook, undefined, "nothing installed");
  let late = false;
  region.setConversionHook({
    name: "kvm",
    before: () => (late ? Promise.reject(new Error("later")) : undefined) as unknown as void,
    after() {},
  });
  late = true;
  assert.throws(
    () => region.convert(0, PAGE, "shared"),
    (e) => e instanceof ConversionError && causedBy(e, /before returned a Promise/),
  );
  assert.equal(region.store.get(0), 0, "the conversion did not happen");
  await settle();
});

Deno.test("observer: an async observer is refused where given; one that returns a promise is counted as failing", async () => {
  // region.ts observe and #emit: observers hear of applied changes and cannot refuse them; a
  // failing one is counted in stats.observerErrors, a returned promise included.
  const region = new Region({ name: "ram", size: MiB });
  assert.throws(
    () => region.observe(async () => {}),
    /observer: must be synchronous; it is an async function/,
  );
  region.observe(() => Promise.reject(new Error("later")) as unknown as void);
  region.convert(0, PAGE, "shared");
  assert.equal(region.store.get(0), 1, "the change stands");
  assert.equal(region.stats.observerErrors, 1);
  await settle();
});
