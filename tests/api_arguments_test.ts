// The public API's arguments from a caller's mistakes: the wrong type, null, a BigInt. Each is
// refused in one line naming the argument (never "Cannot read properties of null" or "Do not know
// how to serialize a BigInt" from inside), and the object it was given to is left as it was.
import assert from "node:assert/strict";
import {
  BitmapStore,
  iommufd,
  kvmAttributes,
  RangeTreeStore,
  Region,
  vfioType1,
  virtioMem,
} from "../mod.ts";
import { SimIoas, SimKvm, SimType1Container } from "../sim.ts";

const MiB = 2 ** 20;

/** Asserts `fn` throws `kind` with a one-line message matching `message`. */
function refused(fn: () => unknown, kind: typeof Error, message: RegExp): void {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof kind, `${e}`);
    assert.match(e.message, message);
    assert.equal(e.message.split("\n").length, 1, e.message);
    assert.doesNotMatch(e.message, /Cannot read properties|serialize a BigInt|mix BigInt/);
    return true;
  });
}

Deno.test("api: stores refuse options that are not an object", () => {
  for (const Store of [RangeTreeStore, BitmapStore]) {
    refused(
      () => new Store(1024, null as unknown as { bits: number }),
      TypeError,
      /^options: must be an object such as \{ bits: 2 \}, got null$/,
    );
    refused(
      () => new Store(1024, [] as unknown as { bits: number }),
      TypeError,
      /^options: .*got a list$/,
    );
    assert.equal(new Store(1024).length, 1024, "absent options are the defaults");
  }
});

Deno.test("api: Region and its sources name a bad argument, BigInts included", () => {
  refused(
    () => new Region({ name: 4096n as unknown as string, size: MiB }),
    TypeError,
    /^name: a region needs a non-empty name, got 4096n$/,
  );
  // A BigInt that looks valid as text is shown as the BigInt it is.
  refused(
    () => new Region({ name: "r", size: 8192n as unknown as number }),
    Error,
    /size: must be a positive multiple of 4096, got 8192n$/,
  );
  refused(
    () => new Region({ name: "r", size: 8192, hostAddress: {} as unknown as number }),
    Error,
    /hostAddress: must be a non-negative multiple of 4096, got an object$/,
  );
  const region = new Region({ name: "ram", size: 8 * MiB });
  const sources = region.sources().map((s) => s.name);
  refused(
    () => region.addSource(null as unknown as { name: string; bits: number; granularity: number }),
    TypeError,
    /^region ram: addSource needs \{ name, bits, granularity \}, got null$/,
  );
  refused(
    () => region.addSource({ name: "", bits: 2, granularity: 4096 }),
    Error,
    /source\.name: must be a non-empty name/,
  );
  refused(
    () => region.addSource({ name: "x", bits: 2n as unknown as number, granularity: 4096 }),
    Error,
    /source\.bits: must be a positive bit mask, got 2n$/,
  );
  refused(
    () => region.addSource({ name: "x", bits: 0, granularity: 4096 }),
    Error,
    /source\.bits: must be a positive bit mask, got 0/,
  );
  assert.deepEqual(region.sources().map((s) => s.name), sources, "no source was added");
});

Deno.test("api: plugins name a bad option or a missing region", () => {
  const region = new Region({ name: "ram", size: 8 * MiB });
  refused(
    () => vfioType1({ name: 1n as unknown as string, container: new SimType1Container() }),
    TypeError,
    /^vfioType1: name must be a non-empty string, got 1n$/,
  );
  refused(
    () => kvmAttributes({ vm: new SimKvm(), mode: 1n as unknown as "separate" }),
    TypeError,
    /mode must be "separate" or "in-place", got 1n$/,
  );
  // KVM numbers memslots below KVM_USER_MEM_SLOTS (32764 on x86-64).
  for (const firstSlot of [4096n as unknown as number, -1, 32764, 0.5]) {
    refused(
      () => kvmAttributes({ vm: new SimKvm(), firstSlot }),
      RangeError,
      /^kvmAttributes kvm: firstSlot must be an integer from 0 to 32763, got /,
    );
  }
  assert.equal(kvmAttributes({ vm: new SimKvm(), firstSlot: 32763 }).name, "kvm");
  const nic = vfioType1({ name: "nic0", container: new SimType1Container() });
  refused(
    () => nic.attach(null as unknown as Region),
    TypeError,
    /^vfio-type1 nic0: attach needs a Region, got null$/,
  );
  refused(
    () => kvmAttributes({ vm: new SimKvm() }).attach(undefined as unknown as Region),
    TypeError,
    /^kvmAttributes kvm: attach needs a Region, got nothing$/,
  );
  refused(
    () => virtioMem({ region: null as unknown as Region, blockSize: 2 * MiB, requestedSize: 0 }),
    TypeError,
    /^virtioMem virtio-mem: region must be a Region, got null$/,
  );
  // A BigInt is named as one, never subtracted from (the default size is region.size - offset).
  const big = (n: bigint) => n as unknown as number;
  const device = { region, blockSize: 2 * MiB, requestedSize: 0 };
  for (
    const [options, message] of [
      [
        { offset: big(4096n) },
        /^virtioMem virtio-mem: offset must be a non-negative integer, got 4096n$/,
      ],
      [
        { blockSize: big(2097152n) },
        /blockSize must be a power of two multiple of 4096, got 2097152n$/,
      ],
      [
        { size: big(4194304n) },
        /size must be a positive multiple of blockSize 2097152 inside region ram, got 4194304n$/,
      ],
    ] as const
  ) refused(() => virtioMem({ ...device, ...options }), RangeError, message);
  assert.equal(region.bits.get("plugged"), undefined, "no virtio-mem device claimed the bit");
});

Deno.test("api: iommufd refuses a granularity it would ignore (cut_mapping maps extents)", () => {
  const ioas = new SimIoas({ kernel: "proposed" });
  for (const granularity of [NaN, -1, 4096]) {
    refused(
      () => iommufd({ ioas, cut: true, granularity }),
      RangeError,
      /^iommufd iommufd: granularity is for cut: false .*; give cut: false to map granules$/,
    );
  }
  // A granularity asks for granules: cut then defaults to false, on a kernel that could cut too,
  // so the same options map alike on both kernels.
  const region = new Region({ name: "ram", size: 8 * MiB });
  const granules = iommufd({ ioas, granularity: 8192 });
  granules.attach(region);
  region.convert(0, 4 * 8192, "shared");
  assert.equal(ioas.areas().length, 4, "one area per granule, not one per extent");
  refused(
    () => iommufd({ ioas: null as unknown as SimIoas }),
    TypeError,
    /^iommufd iommufd: ioas must be an IommufdIoas, got null$/,
  );
});
