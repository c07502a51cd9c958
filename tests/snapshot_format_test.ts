// Saved state: varints and CRC, round trips on both stores (binary and JSON),
// the mode choice, and every kind of bad input: a typed error and no change.
import assert from "node:assert/strict";
import {
  applySnapshot,
  decodeSnapshot,
  decodeSnapshots,
  KVM_VIEW,
  PLUGGED,
  Region,
  SHARED,
  SnapshotError,
  type SnapshotErrorCode,
  snapshotFromJson,
  toSnapshotJson,
} from "../src/bus/mod.ts";
import { encodeSnapshot, SNAPSHOT_SEGMENT_PAGES } from "../src/bus/snapshot_format.ts";
import { BitmapStore } from "../src/store/bitmap_store.ts";
import { crc32 } from "../src/util/_crc32.ts";
import { ByteReader, ByteReadError, ByteWriter, varintLength } from "../src/util/_varint.ts";
import { RecordingListener } from "./helpers/recording_listener.ts";

const PAGE = 4096;
const STORES = ["range-tree", "bitmap"] as const;

function runsOf(region: Region) {
  return [...region.store.runs()];
}

/** Recomputes the CRC after an edit, so that a test reaches the check behind it. */
function fixCrc(bytes: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(bytes.length - 4, crc32(bytes, 0, bytes.length - 4), true);
  return bytes;
}

function expectCode(
  fn: () => unknown,
  code: SnapshotErrorCode,
  message?: RegExp,
  note = "",
): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SnapshotError, `${note}: expected a SnapshotError, got ${e}`);
    assert.equal(e.code, code, `${note}: ${e.message}`);
    if (message) assert.match(e.message, message);
    return true;
  });
}

/** A 64 MiB region with a coarse plugged bit, a custom bit and some conversions. */
function sample(store: (typeof STORES)[number]): Region {
  const region = new Region({ name: "ram", size: 64 * 2 ** 20, base: 2 ** 32, store });
  region.addSource({ name: "vmem0", bits: PLUGGED, granularity: 2 * 2 ** 20 });
  region.change(32 * 2 ** 20, 32 * 2 ** 20, 0, PLUGGED); // upper half unplugged
  const dirty = region.bits.claim("dirty-log");
  region.convert(PAGE, 3 * PAGE, "shared");
  region.convert(8 * 2 ** 20, 2 ** 20, "shared");
  region.change(40 * 2 ** 20, 2 * 2 ** 20, dirty, 0);
  return region;
}

Deno.test("varint: boundaries round-trip and take the documented number of bytes", () => {
  const values = [
    0,
    1,
    127,
    128,
    2 ** 14 - 1,
    2 ** 14,
    2 ** 21,
    2 ** 28 - 1,
    2 ** 28,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32,
    2 ** 40 + 5,
    Number.MAX_SAFE_INTEGER,
  ];
  const w = new ByteWriter(1);
  for (const v of values) w.varint(v);
  const bytes = w.bytes();
  const r = new ByteReader(bytes);
  for (const v of values) assert.equal(r.varint(), v);
  assert.equal(r.remaining, 0);
  assert.equal(bytes.length, values.reduce((n, v) => n + varintLength(v), 0));
  assert.deepEqual([0, 127, 128, 2 ** 14, 2 ** 53 - 1].map(varintLength), [1, 1, 2, 3, 8]);
  assert.throws(() => w.varint(-1), RangeError);
  assert.throws(() => w.varint(2 ** 53), RangeError);
  // Truncated and overlong varints.
  assert.throws(
    () => new ByteReader(new Uint8Array([0x80, 0x80])).varint(),
    (e: unknown) => e instanceof ByteReadError && e.problem === "truncated",
  );
  assert.throws(
    () => new ByteReader(new Uint8Array(9).fill(0xff)).varint(),
    (e: unknown) => e instanceof ByteReadError && e.problem === "overlong",
  );
  assert.equal(crc32(new Uint8Array(0)), 0);
  assert.equal(
    crc32(new TextEncoder().encode("The quick brown fox jumps over the lazy dog")),
    0x414fa339,
  );
});

for (const store of STORES) {
  Deno.test(`snapshot: restore rebuilds the same state, bits and sources (${store})`, () => {
    const region = sample(store);
    const bytes = region.snapshot();
    for (const into of STORES) {
      const copy = Region.restore(bytes, { store: into });
      assert.deepEqual(runsOf(copy), runsOf(region), `into ${into}`);
      assert.deepEqual(copy.bits.entries(), region.bits.entries());
      assert.equal(copy.bits.granularity("plugged"), 512);
      assert.deepEqual(copy.sources(), region.sources());
      assert.equal(copy.granularity, region.granularity);
      assert.equal(copy.impliedBits, region.impliedBits);
      assert.equal(copy.base, region.base);
      // The snapshot of the copy is byte for byte the original's.
      assert.deepEqual(copy.snapshot(), bytes);
      if (into === "bitmap") {
        // The plugged bit stays one bit per 2 MiB block in a bitmap.
        assert.equal(
          copy.store.byteSize(),
          region.store instanceof BitmapStore ? region.store.byteSize() : copy.store.byteSize(),
        );
      }
    }
    // The JSON form says the same and restores the same.
    const json = region.snapshotJson();
    assert.equal(json.kind, "full");
    assert.deepEqual(json, toSnapshotJson(bytes));
    assert.deepEqual(JSON.parse(JSON.stringify(json)), json);
    assert.deepEqual(runsOf(Region.restore(JSON.stringify(json), { store })), runsOf(region));
    assert.deepEqual(json.runs, runsOf(region));
  });

  Deno.test(`snapshot: listeners attached after a restore replay the state (${store})`, () => {
    const region = sample(store);
    const copy = Region.restore(region.snapshot(), { store });
    const views = [KVM_VIEW, { mask: SHARED | PLUGGED, value: SHARED | PLUGGED }];
    for (const [i, view] of views.entries()) {
      const l = new RecordingListener(`l${i}`, i, view, copy.pages);
      copy.register(l);
      assert.deepEqual(l.populatedRuns(), RecordingListener.expected(region, view));
      assert.deepEqual(l.contractViolations, []);
    }
  });
}

Deno.test("snapshot: a region without PLUGGED restores with PLUGGED implied", () => {
  const region = new Region({ name: "r", size: 2 ** 24 });
  region.convert(0, 2 ** 20, "shared");
  const copy = Region.restore(region.snapshot(), { name: "copy" });
  assert.equal(copy.name, "copy");
  assert.equal(copy.impliedBits, PLUGGED);
  assert.equal(copy.store.bits, 1);
  assert.deepEqual(runsOf(copy), runsOf(region));
  // A store given with two bits holds PLUGGED: it is set everywhere, as it was implied.
  const given = new BitmapStore(copy.pages, { bits: 2 });
  const into = Region.restore(region.snapshot(), { store: given });
  assert.equal(into.store, given);
  assert.deepEqual(runsOf(into), runsOf(region).map((r) => ({ ...r, state: r.state | PLUGGED })));
});

Deno.test("snapshot: a 1 TiB boot-like state is kilobytes, not the bitmap's 32 MiB", () => {
  const region = new Region({ name: "ram", size: 2 ** 40 });
  let seed = 1;
  const next = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  region.convert(2 ** 32, 2 ** 30, "shared");
  for (let i = 0; i < 1000; i++) region.convert(next(2 ** 19) * 2 ** 21, 2 ** 21, "shared");
  for (let i = 0; i < 2000; i++) region.convert(next(2 ** 28) * PAGE, PAGE, "shared");
  const bytes = region.snapshot();
  assert.ok(bytes.length < 16 * 1024, `${bytes.length} bytes for ${region.store.runCount} runs`);
  assert.ok(bytes.length < 4 * region.store.runCount);
  assert.deepEqual(runsOf(Region.restore(bytes)), runsOf(region));
});

Deno.test("snapshot: a fragmented stretch is saved as bit planes, never above the bitmap", () => {
  const pages = 2 * SNAPSHOT_SEGMENT_PAGES;
  const region = new Region({ name: "frag", size: pages * PAGE, store: "bitmap" });
  // Every other page of the first 64 Ki pages shared: 32 Ki runs of one page.
  for (let p = 0; p < 65536; p += 2) region.convert(p * PAGE, PAGE, "shared");
  const bytes = region.snapshot();
  const bitmapBytes = pages / 8;
  assert.ok(bytes.length < bitmapBytes + 100, `${bytes.length} vs bitmap ${bitmapBytes}`);
  const copy = Region.restore(bytes);
  assert.deepEqual(runsOf(copy), runsOf(region));
});

Deno.test("snapshot: several regions back to back decode in order", () => {
  const a = sample("range-tree"), b = new Region({ name: "b", size: 2 ** 20 });
  const both = new Uint8Array([...a.snapshot(), ...b.snapshot()]);
  assert.deepEqual(decodeSnapshots(both).map((s) => s.name), ["ram", "b"]);
  expectCode(() => decodeSnapshot(both), "corrupt", /follow the snapshot/);
});

// ---------------------------------------------------------------- bad input

Deno.test("bad input: truncated data at every length is `truncated`", () => {
  const bytes = sample("range-tree").snapshot();
  for (let n = 0; n < bytes.length; n++) {
    expectCode(() => Region.restore(bytes.subarray(0, n)), "truncated");
  }
});

Deno.test("bad input: any damaged byte after the header is `checksum`", () => {
  const bytes = sample("bitmap").snapshot();
  for (let i = 12; i < bytes.length; i++) {
    const damaged = bytes.slice();
    damaged[i] ^= 0x10;
    expectCode(() => decodeSnapshot(damaged), "checksum");
  }
  const bad = bytes.slice();
  bad[0] = 0x58;
  expectCode(() => decodeSnapshot(bad), "magic");
});

Deno.test("bad input: an unknown version or kind is `version`", () => {
  const bytes = sample("range-tree").snapshot();
  const v2 = bytes.slice();
  v2[4] = 2;
  expectCode(() => Region.restore(v2), "version", /version 2/);
  expectCode(() => Region.restore(fixCrc(v2)), "version");
  const kind = bytes.slice();
  kind[5] = 7;
  expectCode(() => decodeSnapshot(fixCrc(kind)), "version", /kind 7/);
  const json = sample("range-tree").snapshotJson();
  expectCode(() => Region.restore({ ...json, version: 9 }), "version");
});

Deno.test("bad input: a region of another size, page size or base is `shape`", () => {
  const region = sample("range-tree");
  const bytes = region.snapshot();
  expectCode(() => Region.restore(bytes, { size: 2 ** 30 }), "shape", /size/);
  expectCode(() => Region.restore(bytes, { pageSize: 2 ** 16 }), "shape", /pageSize/);
  expectCode(() => Region.restore(bytes, { base: 0 }), "shape", /base/);
  expectCode(() => Region.restore(bytes, { store: new BitmapStore(10, { bits: 1 }) }), "shape");
  // A QEMU policy tracks 4 KiB pages only (ram_block_attributes_get_block_size): a region saved
  // with bigger pages is a shape error there, and restores under memstate's own policy.
  const big = new Region({ name: "big", size: 2 ** 22, pageSize: 2 ** 16 }).snapshot();
  expectCode(() => Region.restore(big, { vmm: "qemu-11.1" }), "shape", /pageSize: must be 4096/);
  assert.equal(Region.restore(big).pageSize, 2 ** 16);
  // Applying to a live region of another shape changes nothing.
  for (
    const other of [
      new Region({ name: "ram", size: 2 ** 30, base: 2 ** 32 }),
      new Region({ name: "ram", size: 64 * 2 ** 20, base: 2 ** 32, pageSize: 2 ** 16 }),
    ]
  ) {
    const before = runsOf(other);
    expectCode(() => applySnapshot(other, bytes), "shape");
    assert.deepEqual(runsOf(other), before);
    assert.equal(other.bits.get("plugged"), undefined);
  }
});

Deno.test("bad input: a state word wider than the store's bits is `state-bits`", () => {
  const region = sample("range-tree"); // bits 0, 1, 2
  // Into a store that holds one bit and cannot grow: refused before any write.
  const narrow = {
    length: region.pages,
    bits: 1,
    inner: new BitmapStore(region.pages, { bits: 1 }),
    get(p: number) {
      return this.inner.get(p);
    },
    set(s: number, e: number, v: number) {
      this.inner.set(s, e, v);
    },
    update(s: number, e: number, a: number, b: number) {
      this.inner.update(s, e, a, b);
    },
    runs(s?: number, e?: number) {
      return this.inner.runs(s, e);
    },
    get runCount() {
      return this.inner.runCount;
    },
    byteSize() {
      return this.inner.byteSize();
    },
  };
  narrow.set(5, 9, 1);
  const before = [...narrow.runs()];
  expectCode(() => Region.restore(region.snapshot(), { store: narrow }), "state-bits");
  assert.deepEqual([...narrow.runs()], before);
  // A run whose state has a bit no one claimed (JSON and binary).
  const json = new Region({ name: "x", size: 2 ** 20 }).snapshotJson();
  json.runs = [{ start: 0, end: 256, state: SHARED | 8 }];
  expectCode(() => snapshotFromJson(json), "state-bits", /0x9/);
  const bytes = new Region({ name: "x", size: 2 ** 20 }).snapshot();
  // The single run's state is the byte before the CRC (mode 0: count, length, state).
  const wide = bytes.slice();
  wide[wide.length - 5] = 4;
  expectCode(() => decodeSnapshot(fixCrc(wide)), "state-bits");
  // And the encoder refuses a store holding a bit the header does not claim.
  expectCode(
    () =>
      encodeSnapshot({
        version: 1,
        kind: "full",
        name: "x",
        size: PAGE * 8,
        pageSize: PAGE,
        base: 0,
        bits: [{ name: "shared", index: 0, granularity: 1 }],
        sources: [],
      }, { ranges: [{ start: 0, end: 8 }], runs: () => [{ start: 0, end: 8, state: 2 }] }),
    "state-bits",
  );
});

Deno.test("bad input: corrupt structure with a valid checksum is `corrupt`, a delta is not a region", () => {
  const json = sample("range-tree").snapshotJson();
  const cases: [string, (j: typeof json) => void][] = [
    ["a gap in a full snapshot", (j) => j.runs.splice(1, 1)],
    ["overlapping runs", (j) => j.runs[1].start -= 1],
    ["past the end", (j) => j.runs[j.runs.length - 1].end += 1],
    ["an odd page size", (j) => j.region.pageSize = 3000],
    ["plugged changing inside a block", (j) => {
      j.runs = [{ start: 0, end: 100, state: 0 }, {
        start: 100,
        end: j.runs.at(-1)!.end,
        state: 2,
      }];
    }],
    ["duplicate bit names", (j) => j.bits[2].name = "shared"],
    ["a source on no page grain", (j) => j.sources[0].granularity = 100],
  ];
  for (const [what, edit] of cases) {
    const j = structuredClone(json);
    edit(j);
    expectCode(() => Region.restore(j), "corrupt", undefined, what);
  }
  const region = new Region({ name: "d", size: 2 ** 20 });
  const mark = region.mark();
  region.convert(0, PAGE, "shared");
  expectCode(() => Region.restore(region.changesSince(mark).encode()), "kind");
});

Deno.test("bad input: applying bits that disagree is `bits` and changes nothing", () => {
  const source = new Region({ name: "s", size: 2 ** 24 });
  source.bits.claim("a");
  const b = source.bits.claim("b");
  source.change(0, 2 ** 20, b, 0);
  const dest = new Region({ name: "s", size: 2 ** 24 });
  dest.bits.claim("b"); // b is bit 2 here, bit 3 there
  const l = new RecordingListener("l", 0, KVM_VIEW, dest.pages);
  dest.register(l);
  const before = runsOf(dest);
  expectCode(
    () => applySnapshot(dest, source.snapshot()),
    "bits",
    /bit "a" would be claimed as bit 3/,
  );
  assert.deepEqual(runsOf(dest), before);
  assert.equal(l.calls, 0);
  assert.equal(dest.bits.get("a"), undefined);
});
