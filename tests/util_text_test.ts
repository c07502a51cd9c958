// errorLine: how a message quotes an error thrown by a user's code (a plugin hook, a module).
import assert from "node:assert/strict";
import { runInNewContext } from "node:vm";
import { errorLine } from "../src/util/text.ts";

Deno.test("errorLine: the first non-empty line of the message, controls escaped, at most 200 characters", () => {
  assert.equal(errorLine(new Error("\n  \nfirst\nsecond")), "first");
  // A terminal acts on ESC and C1 controls: they are shown, not sent.
  assert.equal(errorLine(new Error("a\x1b[2Jb\nsecond")), "a\\u001b[2Jb");
  assert.equal(errorLine(new Error("x\u009b2Jy")), "x\\u009b2Jy");
  // An error without a message is named by its class; a thrown non-error by its string.
  assert.equal(errorLine(new TypeError("")), "TypeError");
  assert.equal(errorLine("plain"), "plain");
  assert.equal(errorLine(42), "42");
  // A thrown object is quoted by its JSON, not as [object Object]; a BigInt inside it too.
  assert.equal(errorLine({ code: 7, why: "busy" }), '{"code":7,"why":"busy"}');
  assert.equal(errorLine({ code: 1n }), '{"code":"1n"}');
  assert.equal(errorLine(7n), "7n");
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  assert.equal(errorLine(cycle), "an object");
  // An Error from another realm (not instanceof Error here) and an object's own toString.
  assert.equal(errorLine(runInNewContext("new RangeError('out of slots')")), "out of slots");
  assert.equal(errorLine(runInNewContext("new RangeError('')")), "RangeError");
  assert.equal(errorLine({ toString: () => "custom" }), "custom");
  // Nothing to call String on, or a toString that throws: its JSON, never a second error.
  assert.equal(errorLine(Object.assign(Object.create(null), { code: 3 })), '{"code":3}');
  const hostile = {
    code: 4,
    toString() {
      throw new Error("no");
    },
  };
  assert.equal(errorLine(hostile), '{"code":4}');
  const long = errorLine(new Error("z".repeat(500)));
  assert.equal(long, "z".repeat(200) + "...");
});
