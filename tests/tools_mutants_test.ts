// The planted bugs of `deno task mutate` stay plantable: the mutation check's
// own list check (tools/mutate.ts `mutantListProblems`: unique ids, a file
// that exists, a search text found there exactly once, a replacement that
// differs, tests that exist) finds nothing. Without this, renaming or editing
// a line a mutant targets would break the mutation check silently, until its
// next run.
import assert from "node:assert/strict";
import { MUTANTS } from "../tools/mutants.ts";
import { mutantListProblems } from "../tools/mutate.ts";

Deno.test("mutants: each names an existing file, a search text found there once, existing tests", async () => {
  const { problems } = await mutantListProblems(MUTANTS, Deno.cwd());
  assert.deepEqual(problems, []);
  assert.ok(MUTANTS.length >= 70, `${MUTANTS.length} mutants`);
});
