// Every bad argument throws a RangeError/TypeError naming it, and changes nothing.
import assert from "node:assert/strict";
import { BitmapStore, RangeTreeStore, type StateStore } from "../src/store/mod.ts";

const makers: [string, (n: number, o?: { initial?: number; bits?: number }) => StateStore][] = [
  ["range-tree", (n, o) => new RangeTreeStore(n, o)],
  ["bitmap", (n, o) => new BitmapStore(n, o)],
];

for (const [kind, make] of makers) {
  Deno.test(`${kind}: constructor rejects bad length, bits and initial`, () => {
    assert.throws(() => make(0), /length: must be in \[1, /);
    assert.throws(() => make(-5), /length: must be in \[1, .*got -5/);
    assert.throws(
      () => make(1.5),
      (e) => e instanceof TypeError && /length: .*1\.5/.test(e.message),
    );
    assert.throws(
      () => make(NaN),
      (e) => e instanceof TypeError && /length: .*NaN/.test(e.message),
    );
    assert.throws(() => make(8, { bits: 0 }), /bits: must be in \[1, 31\], got 0/);
    assert.throws(() => make(8, { bits: 32 }), /bits: must be in \[1, 31\], got 32/);
    assert.throws(() => make(8, { bits: 2, initial: 4 }), /initial: must be in \[0, 3\], got 4/);
  });

  const cases: [string, (s: StateStore) => unknown, RegExp, "RangeError" | "TypeError"][] = [
    ["get negative", (s) => s.get(-1), /page: must be in \[0, 99\], got -1/, "RangeError"],
    ["get beyond length", (s) => s.get(100), /page: .*got 100/, "RangeError"],
    ["get fraction", (s) => s.get(0.5), /page: must be an integer, got 0\.5/, "TypeError"],
    ["get NaN", (s) => s.get(NaN), /page: must be an integer, got NaN/, "TypeError"],
    ["get string", (s) => s.get("3" as unknown as number), /page: .*"3"/, "TypeError"],
    [
      "set start > end",
      (s) => s.set(20, 10, 1),
      /start: must not exceed end.*20 > end 10/,
      "RangeError",
    ],
    [
      "set end beyond length",
      (s) => s.set(0, 101, 1),
      /end: must be in \[0, 100\], got 101/,
      "RangeError",
    ],
    ["set negative start", (s) => s.set(-1, 5, 1), /start: .*got -1/, "RangeError"],
    [
      "set state too wide",
      (s) => s.set(0, 5, 4),
      /state: must be in \[0, 3\], got 4/,
      "RangeError",
    ],
    ["set state negative", (s) => s.set(0, 5, -1), /state: .*got -1/, "RangeError"],
    ["set state fraction", (s) => s.set(0, 5, 1.5), /state: must be an integer/, "TypeError"],
    ["update setBits too wide", (s) => s.update(0, 5, 8, 0), /setBits: .*got 8/, "RangeError"],
    ["update clearBits NaN", (s) => s.update(0, 5, 0, NaN), /clearBits: .*NaN/, "TypeError"],
    ["update start > end", (s) => s.update(6, 5, 1, 0), /start: must not exceed end/, "RangeError"],
    ["runs beyond length", (s) => [...s.runs(0, 101)], /end: .*got 101/, "RangeError"],
    ["runs start > end", (s) => [...s.runs(50, 40)], /start: must not exceed end/, "RangeError"],
  ];
  for (const [what, call, message, type] of cases) {
    Deno.test(`${kind}: ${what} throws ${type} naming the argument and changes nothing`, () => {
      const s = make(100, { bits: 2 });
      s.set(10, 20, 1);
      const before = [...s.runs()];
      assert.throws(() => call(s), (e: unknown) => {
        assert.equal((e as Error).name, type);
        assert.match((e as Error).message, message);
        return true;
      });
      assert.deepEqual([...s.runs()], before);
    });
  }
}

Deno.test("bitmap: refuses a length it could never allocate, naming it", () => {
  assert.throws(
    () => new BitmapStore(2 ** 40),
    /length: must be in \[1, 68719476736\], got 1099511627776/,
  );
});

for (const [kind, make] of makers) {
  Deno.test(`${kind}: uniformState refuses an empty or outside range, naming it`, () => {
    const store = make(100, { bits: 2 });
    store.set(10, 20, 1);
    assert.throws(
      () => store.uniformState!(5, 5),
      /end: must exceed start, got an empty range at 5/,
    );
    assert.throws(() => store.uniformState!(0, 101), /end: must be in \[0, 100\], got 101/);
    assert.throws(() => store.uniformState!(30, 20), /start: must not exceed end/);
    assert.throws(
      () => store.uniformState!(0.5, 2),
      (e) => e instanceof TypeError && /start: must be an integer, got 0\.5/.test(e.message),
    );
    assert.equal(store.uniformState!(10, 20), 1);
    assert.equal(store.uniformState!(9, 20), -1);
    assert.equal(store.uniformState!(20, 100), 0);
  });
}
