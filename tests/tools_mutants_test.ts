// The planted bugs of `deno task mutate` stay plantable: every mutant names a
// file that exists, a search text found there exactly once (tools/mutate.ts
// refuses the whole list otherwise), a replacement that differs, a unique id,
// and tests that exist. Without this, renaming or editing a line a
// mutant targets would break the mutation check silently, until its next run.
import assert from "node:assert/strict";
import { MUTANTS } from "../tools/mutants.ts";

Deno.test("mutants: each names an existing file, a search text found there once, existing tests", async () => {
  const testFiles = [...Deno.readDirSync("tests")].map((e) => `tests/${e.name}`);
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const m of MUTANTS) {
    if (ids.has(m.id)) problems.push(`${m.id}: duplicate id`);
    ids.add(m.id);
    if (m.search === m.replace) problems.push(`${m.id}: replacement equals the search text`);
    let text: string;
    try {
      text = await Deno.readTextFile(m.file);
    } catch {
      problems.push(`${m.id}: cannot read ${m.file}`);
      continue;
    }
    const count = text.split(m.search).length - 1;
    if (count !== 1) problems.push(`${m.id}: search text found ${count} times in ${m.file}`);
    for (const test of m.tests ?? []) {
      // An entry is a test file or a prefix of test files (tools/mutants.ts).
      if (!testFiles.some((file) => file.startsWith(test))) {
        problems.push(`${m.id}: no test file starts with ${test}`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(MUTANTS.length >= 70, `${MUTANTS.length} mutants`);
});
