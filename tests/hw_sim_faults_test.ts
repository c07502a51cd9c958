// Fault injection: the n-th call, seeded probability, counters, and a sweep
// over every simulated operation checking that an injected failure changes nothing.
import assert from "node:assert/strict";
import { type Errno, HwError } from "../src/hw/errors.ts";
import { errno } from "./helpers/errno.ts";
import {
  FALLOC_FL_KEEP_SIZE,
  GUEST_MEMFD_FLAG_INIT_SHARED,
  GUEST_MEMFD_FLAG_MMAP,
  KVM_MEM_GUEST_MEMFD,
  KVM_MEMORY_ATTRIBUTE_PRIVATE,
} from "../src/hw/backend.ts";
import {
  FaultInjector,
  SIM_OPERATIONS,
  SimIoas,
  SimKvm,
  type SimOperation,
  SimType1Container,
} from "../src/hw/sim/mod.ts";
import { seedFromEnv } from "../src/util/prng.ts";

const MiB = 2 ** 20;

function injected(code: Errno) {
  return errno(code, { injected: true });
}

Deno.test("faults: failNth fails exactly the n-th call of the op counted from now, once", () => {
  const faults = new FaultInjector();
  const type1 = new SimType1Container({ faults });
  type1.map(0, 0, 4096); // a call before the rule does not count towards it
  faults.failNth("type1.map", 2, "ENOMEM");
  type1.map(4096, 4096, 4096);
  assert.throws(() => type1.map(8192, 8192, 4096), injected("ENOMEM"));
  assert.equal(type1.mappingCount, 2);
  type1.map(8192, 8192, 4096); // one-shot: the retry succeeds
  assert.equal(faults.calls("type1.map"), 4);
  assert.equal(faults.injectedCount, 1);
});

Deno.test("faults: failNth counts only its own op; '*' counts every op", () => {
  const faults = new FaultInjector();
  const type1 = new SimType1Container({ faults });
  faults.failNth("type1.unmap", 1);
  type1.map(0, 0, 4096);
  assert.throws(() => type1.unmap(0, 4096), injected("EIO"));
  faults.failNth("*", 2, "EBUSY");
  type1.map(4096, 4096, 4096);
  assert.throws(() => type1.unmap(0, 4096), injected("EBUSY"));
  assert.equal(type1.mappingCount, 2);
  assert.equal(faults.calls("*"), 4);
});

Deno.test("faults: probability with a seed is reproducible and independent of wall clock", () => {
  const seed = seedFromEnv();
  console.log("seed", seed);
  const pattern = () => {
    const faults = new FaultInjector();
    faults.failWithProbability("*", 0.3, seed);
    const type1 = new SimType1Container({ faults });
    const outcome: boolean[] = [];
    for (let i = 0; i < 200; i++) {
      try {
        type1.map(i * 4096, i * 4096, 4096);
        outcome.push(true);
      } catch (e) {
        assert.ok(e instanceof HwError && e.injected);
        outcome.push(false);
      }
    }
    assert.equal(type1.mappingCount, outcome.filter((x) => x).length);
    return outcome;
  };
  const a = pattern();
  assert.deepEqual(pattern(), a);
  const failures = a.filter((x) => !x).length;
  assert.ok(failures > 20 && failures < 110, `failures ${failures} out of 200 at p = 0.3`);
});

Deno.test("faults: probability 0 never fails, 1 always fails, and only the named op", () => {
  const faults = new FaultInjector();
  faults.failWithProbability("type1.map", 0, 1);
  faults.failWithProbability("type1.unmap", 1, 1, "EINTR");
  const type1 = new SimType1Container({ faults });
  for (let i = 0; i < 50; i++) type1.map(i * 4096, 0, 4096);
  assert.throws(() => type1.unmap(0, 4096), injected("EINTR"));
  assert.equal(type1.mappingCount, 50);
});

Deno.test("faults: clear removes every rule and resets the counters", () => {
  const faults = new FaultInjector();
  faults.failWithProbability("*", 1, 7);
  faults.failNth("type1.map", 1);
  const type1 = new SimType1Container({ faults });
  assert.throws(() => type1.map(0, 0, 4096), injected("EIO"));
  faults.clear();
  assert.equal(faults.calls("type1.map"), 0);
  type1.map(0, 0, 4096);
  assert.equal(faults.calls("type1.map"), 1);
});

Deno.test("faults: bad rules are refused with a message naming the argument", () => {
  const faults = new FaultInjector();
  assert.throws(() => faults.failNth("type1.mapp" as SimOperation, 1), /op: .*"type1.mapp"/);
  assert.throws(() => faults.failNth("type1.map", 0), /n must be an integer >= 1, got 0/);
  assert.throws(() => faults.failWithProbability("*", 1.5, 1), /p must be in \[0, 1\], got 1.5/);
  assert.throws(() => faults.calls("nope" as SimOperation), RangeError);
});

/** Everything the sweep inspects, as plain data. */
function snapshot(env: Env): unknown {
  return {
    attributes: [...env.kvm.attributes.runs()],
    memslots: env.kvm.memslots().map((s) => ({ ...s, guestMemfd: s.guestMemfd?.name })),
    files: [...env.kvm.guestMemfds(), ...env.kvm.sharedFiles()].map((f) => ({
      name: f.name,
      allocated: f.allocatedBytes(),
      punched: f.punchedBytes,
    })),
    fileAttributes: env.kvm.guestMemfds().map((f) => [...f.attributeRuns()]),
    type1: env.type1.mappings(),
    ioas: env.ioas.areas(),
    tablePages: env.ioas.tablePages,
    entries: env.ioas.entryCounts(),
    pinned: env.kvm.host.pinnedBytes(),
  };
}

interface Env {
  faults: FaultInjector;
  kvm: SimKvm;
  type1: SimType1Container;
  ioas: SimIoas;
}

function makeEnv(): Env {
  const faults = new FaultInjector();
  const kvm = new SimKvm({ faults, kernel: "proposed" });
  const type1 = new SimType1Container({ faults, host: kvm.host });
  const ioas = new SimIoas({ faults, host: kvm.host, kernel: "proposed" });
  return { faults, kvm, type1, ioas };
}

/** For every op: prepare state (faults disabled), then the call under test. */
const drivers: Record<SimOperation, (env: Env) => () => unknown> = {
  "kvm.createGuestMemfd": ({ kvm }) => () => kvm.createGuestMemfd(2 * MiB, 0),
  "kvm.createSharedMemory": ({ kvm }) => () => kvm.createSharedMemory(2 * MiB),
  "kvm.setUserMemoryRegion2": ({ kvm }) => {
    const gmem = kvm.createGuestMemfd(2 * MiB, 0);
    const shared = kvm.createSharedMemory(2 * MiB);
    return () =>
      kvm.setUserMemoryRegion2({
        slot: 0,
        flags: KVM_MEM_GUEST_MEMFD,
        guestPhysAddr: 0,
        memorySize: 2 * MiB,
        userspaceAddr: shared.hostAddress,
        guestMemfd: gmem,
        guestMemfdOffset: 0,
      });
  },
  "kvm.setMemoryAttributes": ({ kvm }) => () =>
    kvm.setMemoryAttributes(0, 2 * MiB, KVM_MEMORY_ATTRIBUTE_PRIVATE),
  "gmem.fallocate": ({ kvm }) => {
    const gmem = kvm.createGuestMemfd(2 * MiB, 0);
    gmem.fallocate(FALLOC_FL_KEEP_SIZE, 0, 2 * MiB);
    return () => gmem.punchHole(0, MiB);
  },
  "gmem.setAttributes": ({ kvm }) => {
    const gmem = kvm.createGuestMemfd(
      2 * MiB,
      GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
    );
    return () => gmem.setAttributes(0, MiB, KVM_MEMORY_ATTRIBUTE_PRIVATE);
  },
  "memfd.fallocate": ({ kvm }) => {
    const shared = kvm.createSharedMemory(2 * MiB);
    shared.write(0, new Uint8Array(8192).fill(1));
    return () => shared.punchHole(0, 8192);
  },
  "type1.map": ({ kvm, type1 }) => {
    const shared = kvm.createSharedMemory(2 * MiB);
    return () => type1.map(0, shared.hostAddress, 2 * MiB);
  },
  "type1.unmap": ({ kvm, type1 }) => {
    const shared = kvm.createSharedMemory(2 * MiB);
    type1.map(0, shared.hostAddress, 2 * MiB);
    return () => type1.unmap(0, 2 * MiB);
  },
  "ioas.map": ({ kvm, ioas }) => {
    const shared = kvm.createSharedMemory(2 * MiB);
    return () => ioas.map(0, shared.hostAddress, 2 * MiB);
  },
  "ioas.unmap": ({ kvm, ioas }) => {
    const shared = kvm.createSharedMemory(2 * MiB);
    ioas.map(0, shared.hostAddress, 2 * MiB);
    return () => ioas.unmap(0, 2 * MiB);
  },
  "ioas.cutMapping": ({ kvm, ioas }) => {
    const shared = kvm.createSharedMemory(2 * MiB);
    ioas.map(0, shared.hostAddress, 2 * MiB);
    return () => ioas.cutMapping(4096);
  },
};

Deno.test("faults: every SIM_OPERATIONS entry is checked, and an injected failure changes nothing", () => {
  assert.deepEqual(Object.keys(drivers).sort(), [...SIM_OPERATIONS].sort());
  for (const op of SIM_OPERATIONS) {
    const env = makeEnv();
    const call = drivers[op](env);
    const before = snapshot(env);
    const counted = env.faults.calls(op);
    env.faults.failNth(op, 1, "ENOMEM");
    assert.throws(call, injected("ENOMEM"), op);
    assert.equal(env.faults.calls(op), counted + 1, `${op} checks its fault first`);
    assert.deepEqual(snapshot(env), before, `${op}: failed call changed state`);
    call(); // and the same call succeeds once the fault is gone
    assert.notDeepEqual(snapshot(env), before, `${op}: the successful call changed nothing`);
  }
});
